"""analysis.sensitivity: captum attributions checked against values computed by hand on a tiny model,
the findings' statistics on hand-made tables, and the linear readout on separable data."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from analysis import sensitivity as sens

OFFSETS = (0.1, 0.2, 0.3)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These tensors are tiny: one thread is faster, and immune to a busy machine's oversubscription."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)  # per-image error of the degraded input (clean is 0.5 everywhere)


class CopyModel(nn.Module):
    """Features [x, 5x] (6 channels) pass one probe; the output copies channels 0–2 and ignores 3–5."""

    def __init__(self, silent_channel: int | None = None):
        super().__init__()
        self.probe = nn.Identity()
        self.unused = nn.Parameter(torch.zeros(()))  # gives the model a device
        self.silent_channel = silent_channel

    def forward(self, x: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        features = torch.cat([x, 5 * x], dim=1)  # (B, 6, H, W)
        if self.silent_channel is not None:
            keep = torch.ones(6)
            keep[self.silent_channel] = 0
            features = features * keep[None, :, None, None]
        return self.probe(features)[:, :3]


def batch(size: int = 4):
    clean = torch.full((len(OFFSETS), 3, size, size), 0.5)
    degraded = clean + torch.tensor(OFFSETS)[:, None, None, None]
    prompt = torch.arange(len(OFFSETS) * 2, dtype=torch.float32).view(len(OFFSETS), 2)
    return degraded, clean, prompt


def expected_psnr_drop(d: float) -> float:
    # intact: MSE d²; channel 0 zeroed: that channel's error becomes 0.5, so MSE (0.25 + 2d²) / 3
    return 10 * math.log10((0.25 + 2 * d * d) / 3 / (d * d))


@pytest.mark.parametrize("perturbations_per_eval, batch_size", [(1, None), (4, 2), (6, 1)])
def test_ablation_drop_is_zero_for_unused_channels_and_exact_for_copied_ones(perturbations_per_eval, batch_size):
    degraded, clean, prompt = batch()
    model = CopyModel()
    drop = sens.channel_ablation(sens.RestorationScore(model, "psnr"), model.probe, degraded, clean, prompt,
                                 perturbations_per_eval=perturbations_per_eval, batch_size=batch_size)
    assert drop.shape == (3, 6)
    assert np.all(drop[:, 3:] == 0)
    expected = np.array([expected_psnr_drop(d) for d in OFFSETS])
    np.testing.assert_allclose(drop[:, :3], np.repeat(expected[:, None], 3, axis=1), rtol=1e-4)


def test_ablation_with_l1_gives_the_rise_in_l1():
    degraded, clean, prompt = batch()
    model = CopyModel()
    rise = sens.channel_ablation(sens.RestorationScore(model, "l1"), model.probe, degraded, clean, prompt,
                                 perturbations_per_eval=3)
    # L1 intact: d; channel 0 zeroed: (0.5 + 2d) / 3
    expected = np.array([(0.5 + 2 * d) / 3 - d for d in OFFSETS])
    np.testing.assert_allclose(rise[:, :3], np.repeat(expected[:, None], 3, axis=1), rtol=1e-4)
    assert np.all(rise[:, 3:] == 0)


def test_silent_channels_are_ablated_as_one_group_with_the_same_result():
    degraded, clean, prompt = batch()
    model = CopyModel(silent_channel=1)
    score = sens.RestorationScore(model, "psnr")
    grouped = sens.channel_ablation(score, model.probe, degraded, clean, prompt, perturbations_per_eval=2)
    separate = sens.channel_ablation(score, model.probe, degraded, clean, prompt, group_silent=False)
    np.testing.assert_allclose(grouped, separate, atol=1e-6)
    assert np.all(grouped[:, 1] == 0) and np.all(grouped[:, 0] > 0)
    mask = sens.channel_layer_mask(np.array([False, True, False, True]))
    assert mask.shape == (1, 4, 1, 1) and mask.flatten().tolist() == [0, 2, 1, 2]
    assert sens.channel_layer_mask(np.zeros(3, bool)).flatten().tolist() == [0, 1, 2]  # arange(C)


def test_a_probe_called_twice_is_refused():
    class Twice(CopyModel):
        def forward(self, x, prompt):
            return self.probe(self.probe(x))

    degraded, clean, prompt = batch()
    model = Twice()
    with pytest.raises(ValueError, match="own probe"):
        sens.channel_ablation(sens.RestorationScore(model), model.probe, degraded, clean, prompt)


@pytest.mark.parametrize("metric", ["l1", "psnr"])
def test_gradient_x_activation_matches_the_analytic_value(metric):
    size = 4
    degraded, clean, prompt = batch(size)
    model = CopyModel()
    (values,) = sens.gradient_importance(sens.RestorationScore(model, metric), [model.probe], degraded, clean,
                                         prompt, batch_size=2)
    d = np.array(OFFSETS)
    # per pixel: |∂score/∂out| · activation (0.5 + d), summed over H·W; the score averages 3·H·W values
    if metric == "l1":
        expected = (0.5 + d) / 3
    else:  # ∂(−10 log10 mse)/∂out = −10 / (ln 10 · mse) · 2 d / (3 H W), mse = d²
        expected = 20 * (0.5 + d) / (3 * math.log(10) * d)
    np.testing.assert_allclose(values[:, :3], np.repeat(expected[:, None], 3, axis=1), rtol=1e-4)
    assert np.all(values[:, 3:] == 0)


def test_conductance_is_zero_for_unused_channels():
    degraded, clean, prompt = batch()
    model = CopyModel()
    (values,) = sens.gradient_importance(sens.RestorationScore(model, "l1"), [model.probe], degraded, clean, prompt,
                                         method="conductance", n_steps=4, internal_batch_size=5)
    assert np.all(values[:, 3:] == 0) and np.all(values[:, :3] > 0)
    with pytest.raises(ValueError, match="gradient method"):
        sens.gradient_importance(sens.RestorationScore(model), [model.probe], degraded, clean, prompt,
                                 method="saliency")


def test_channel_importance_on_a_tiny_csnet_covers_every_site_and_space():
    from csnet.models import SITES, ModelConfig, build_model

    model = build_model(ModelConfig.tiny(dim=4, heads=(1, 1, 1, 1), fusion="hard_select")).eval()
    generator = torch.Generator().manual_seed(0)
    clean = torch.rand(4, 3, 16, 16, generator=generator)
    patches = sens.Patches(clean + 0.05 * torch.randn(4, 3, 16, 16, generator=generator), clean,
                           ["derain", "derain", "dehaze", "dehaze"], ["rain", "rain", "haze", "haze"], ["a"] * 4)
    prompts = torch.randn(4, 512, generator=generator)
    prompts[1], prompts[3] = prompts[0], prompts[2]  # one prompt per task, as text prompts are
    table = sens.channel_importance(model, patches, prompts, perturbations_per_eval=16, batch_size=2)
    assert list(table.columns) == sens.IMPORTANCE_COLUMNS
    assert set(table["site"]) == set(SITES) and set(table["method"]) == set(sens.METHODS)
    output = table[(table["space"] == "output") & (table["method"] == "ablation") & (table["task"] == "derain")]
    assert output.groupby("site")["channel"].count().to_dict() == {s: 4 * 2**i for i, s in enumerate(SITES)}
    # hard selection zeroes the discarded expanded channels: ablation, gradient and activation all give 0
    kept = model.selected_channels(prompts[:1])
    for site in SITES:
        rows = table[(table["space"] == "selection") & (table["site"] == site) & (table["task"] == "derain")]
        discarded = ~rows["channel"].isin(kept[site][0].tolist())
        assert discarded.sum() == rows["channel"].nunique() // 2 * 3  # 3 methods × (κĈ − K)
        assert np.all(rows.loc[discarded, "importance"] == 0)


# ----------------------------------------------------------------------------- findings


def test_chance_jaccard_small_case_and_top_k():
    # two random 2-subsets of 4: overlap 0, 1, 2 with p 1/6, 4/6, 1/6 → J 0, 1/3, 1
    assert sens.chance_jaccard(4, 2) == pytest.approx(7 / 18)
    assert sens.chance_jaccard(10, 10) == pytest.approx(1.0)
    assert sens.top_k(np.array([1.0, 3.0, 3.0, 0.0]), 2).tolist() == [1, 2]
    assert sens.top_k(np.array([0.0, 0.0, 0.0]), 2).tolist() == [0, 1]  # ties to the lower index
    assert sens.top_k_count(60, 0.25) == 15 and sens.top_k_count(3, 0.1) == 1
    with pytest.raises(ValueError):
        sens.top_k_count(8, 0)


def test_specificity_index_and_top_k_share():
    assert sens.specificity_index(np.eye(3)) == pytest.approx(1.0)
    assert sens.specificity_index(np.ones((3, 5))) == pytest.approx(0.0)
    assert np.isnan(sens.specificity_index(np.zeros((3, 5))))
    assert sens.specificity_index(np.array([[2.0, -1.0], [0.0, 0.0]])) == pytest.approx(1.0)  # negatives clipped
    assert sens.top_k_share(np.array([3.0, 1.0, 0.0, -2.0]), 1) == pytest.approx(0.75)


def importance_frame(values: dict[str, list[float]], mechanism="hard_select", seed=0, site="s1", space="output",
                     method="ablation") -> pd.DataFrame:
    frames = [pd.DataFrame({"site": site, "space": space, "task": task, "label": task, "method": method,
                            "channel": np.arange(len(v)), "importance": v, "n_images": 1})
              for task, v in values.items()]
    return pd.concat(frames, ignore_index=True).assign(mechanism=mechanism, seed=seed)


def test_overlap_correlations_and_rank_statistics():
    specific = importance_frame({"a": [4, 3, 0, 0], "b": [0, 0, 4, 3]})
    shared = importance_frame({"a": [4, 3, 0, 0], "b": [3, 4, 0, 0]}, mechanism="none")
    both = pd.concat([specific, shared], ignore_index=True)
    overlap = sens.task_overlap(both, 0.5)
    assert overlap.set_index("mechanism")["jaccard"].to_dict() == {"hard_select": 0.0, "none": 1.0}
    assert overlap["chance"].iloc[0] == pytest.approx(sens.chance_jaccard(4, 2))
    ranks = sens.rank_statistics(both, 0.5).set_index("mechanism")
    assert ranks.loc["hard_select", "specificity"] == pytest.approx(1.0)
    assert ranks.loc["none", "specificity"] == pytest.approx((4 / 7 - 0.5) / 0.5)
    assert ranks.loc["hard_select", "top_k_share"] == pytest.approx(1.0)
    methods = pd.concat([specific, specific.assign(method="gradient", importance=specific["importance"] * 2),
                         specific.assign(method="activation", importance=-specific["importance"])])
    rho = sens.method_correlations(methods).set_index(["task", "pair"])["spearman"]
    assert rho.loc[("a", "ablation vs gradient")] == pytest.approx(1.0)
    assert rho.loc[("a", "ablation vs activation")] == pytest.approx(-1.0)


def test_selection_agreement_counts_kept_channels_among_the_top_k():
    frame = importance_frame({"rain": [5, 0, 4, 0, 3, 0]}, space="selection")
    kept = {("hard_select", 0): {"rain": {"s1": np.array([0, 2, 5])}}}
    row = sens.selection_agreement(frame, kept).iloc[0]
    assert (row["K"], row["hits"], row["chance"]) == (3, 2, 0.5)
    assert row["precision"] == pytest.approx(2 / 3)


def test_mechanism_summary_and_verdict_work_at_seed_level_above_chance():
    frames = []
    for seed in range(4):
        for site in ("s1", "s2", "s3"):
            frames.append(importance_frame({"a": [4, 3, 0, 0], "b": [0, 0, 4, 3]}, site=site).assign(seed=seed))
            frames.append(importance_frame({"a": [4, 3, 0, 0], "b": [3, 4, 0, 0]}, mechanism="none",
                                           site=site).assign(seed=seed))
    ranks = sens.rank_statistics(pd.concat(frames, ignore_index=True), 0.5)
    chance = sens.chance_jaccard(4, 2)
    np.testing.assert_allclose(ranks["jaccard_above_chance"], ranks["between_task_jaccard"] - chance)
    readout = pd.DataFrame({"mechanism": ["hard_select", "none"], "seed": 0, "site": "s1",
                            "accuracy": [1.0, 0.5], "chance": 0.5})
    summary, comparisons = sens.mechanism_summary(ranks, readout, n_boot=200, mixed=False)
    table = summary.set_index("mechanism")
    assert table.loc["hard_select", "between_task_jaccard"] == 0 and table.loc["none", "between_task_jaccard"] == 1
    assert table.loc["none", "jaccard_above_chance"] == pytest.approx(1 - chance)
    assert table.loc["none", "readout_accuracy"] == 0.5 and table.loc["hard_select", "units"] == 12
    assert table.loc["hard_select", "n_seeds"] == 4
    jaccard_row = comparisons[comparisons["measure"] == "jaccard_above_chance"].iloc[0]
    assert jaccard_row["estimate"] == pytest.approx(-1.0) and jaccard_row["other"] == "none"
    assert jaccard_row["n_seeds"] == 4 and jaccard_row["n_images"] == 3 and jaccard_row["test"] == "Welch t over seeds"
    sentence = sens.verdict(summary, comparisons, pd.DataFrame(), pd.DataFrame(), top_k_fraction=0.5)
    assert "overlap above chance, hard_select − none: -1.000" in sentence
    assert "readout" in sentence and sentence.endswith(".")


def test_a_non_significant_difference_is_not_called_no_difference():
    rng = np.random.default_rng(0)
    rows = [{"mechanism": m, "seed": seed, "site": site, "space": "output", "method": "ablation",
             "between_task_jaccard": 0.5 + rng.normal(0, 0.2), "chance": 0.3, "specificity": 0.5}
            for m in ("hard_select", "none") for seed in range(3) for site in ("s1", "s2")]
    ranks = pd.DataFrame(rows).assign(jaccard_above_chance=lambda f: f["between_task_jaccard"] - f["chance"])
    _, comparisons = sens.mechanism_summary(ranks, None, n_boot=200, mixed=False)
    sentence = sens.verdict(pd.DataFrame(), comparisons, pd.DataFrame(), pd.DataFrame())
    assert "inconclusive" in sentence and "not more task-specific" not in sentence
    assert "equivalent within ±0.05" in comparisons.set_index("measure").loc["specificity", "verdict"]


# ----------------------------------------------------------------------------- readout


def test_readout_is_above_chance_on_separable_activations():
    rng = np.random.default_rng(0)
    labels = np.repeat(["noise", "rain", "haze"], 20)
    centres = {"noise": [4, 0, 0, 0], "rain": [0, 4, 0, 0], "haze": [0, 0, 4, 0]}
    features = np.array([centres[label] for label in labels]) + rng.normal(size=(60, 4))
    result = sens.readout_accuracy(features, labels, seed=0)
    assert result["folds"] == 5 and result["chance"] == pytest.approx(1 / 3)
    assert result["accuracy"] > 0.9
    single = sens.readout_accuracy(features[:5], labels[:5])
    assert np.isnan(single["accuracy"]) and single["folds"] == 0


def test_embeddings_and_readout_table_from_probes():
    rng = np.random.default_rng(1)
    labels = list(np.repeat(["rain", "haze"], 6))
    pooled = {"s1": rng.normal(size=(12, 3)) + np.repeat([[3, 0, 0], [0, 3, 0]], 6, axis=0)}
    probe = sens.RunProbe("none", 0, pd.DataFrame(), pooled)
    table = sens.readout_table([probe], labels)
    assert table.iloc[0]["accuracy"] > 0.8
    for method in ("pca", "tsne"):
        points = sens.embeddings([probe], labels, method=method)
        assert points.shape == (12, 6) and np.isfinite(points[["x", "y"]].to_numpy()).all()


def test_scale_fills_the_profile_defaults_and_checks_values():
    assert sens.scale("smoke")["patch_size"] == 16
    assert sens.scale("quick", patch_size=48, patches_per_task=None)["patch_size"] == 48
    with pytest.raises(ValueError, match="profile"):
        sens.scale("huge")
    with pytest.raises(ValueError, match="positive"):
        sens.scale("quick", patch_size=0)


def test_crop_test_patches_share_photos_and_positions_across_tasks():
    patches = sens.crop_test_patches(["derain", "dehaze"], 3, 32, seed=2, max_images=2, max_side=64)
    assert patches.degraded.shape == (6, 3, 32, 32) and len(patches) == 6
    assert patches.labels == ["rain"] * 3 + ["haze"] * 3
    assert patches.images[:3] == patches.images[3:]  # same photos, cycling
    assert torch.equal(patches.clean[:3], patches.clean[3:])  # same crops: tasks differ by degradation only
    assert not torch.equal(patches.degraded[:3], patches.degraded[3:])
    again = sens.crop_test_patches(["derain", "dehaze"], 3, 32, seed=2, max_images=2, max_side=64)
    assert torch.equal(again.degraded, patches.degraded)
    assert patches.of_task("dehaze").labels == ["haze"] * 3
    with pytest.raises(ValueError, match="no patches of task"):
        patches.of_task("deblur")
    with pytest.raises(ValueError, match="exceeds test image"):
        sens.crop_test_patches(["derain"], 1, 128, max_images=1, max_side=64)
