"""analysis.fusion_comparison and analysis.cost on synthetic score tables and tiny networks."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import cost
from analysis import fusion_comparison as fc
from analysis.classical import REFERENCE_KIND

TASKS = ["denoise_25", "derain", "dehaze"]
LABEL = {"denoise_25": "noise", "derain": "rain", "dehaze": "haze"}
BASE = {"denoise_25": 28.0, "derain": 30.0, "dehaze": 25.0}


def synthetic_scores(effects: dict[str, float], seeds=(0, 1), images=8, noise=0.05, seed=0) -> pd.DataFrame:
    """Per-image scores: PSNR = task base + method effect + image offset + small noise, both prompt sources."""
    rng = np.random.default_rng(seed)
    rows = []
    for source in ("image", "text"):
        for method, effect in effects.items():
            for s in seeds:
                for task in TASKS:
                    for i in range(images):
                        psnr = BASE[task] + effect + 0.3 * i + noise * rng.standard_normal()
                        rows.append({"method": method, "mechanism": method, "kind": fc.LEARNED, "seed": s,
                                     "task": task, "label": LABEL[task], "image": f"img{i}", "psnr": psnr,
                                     "ssim": 0.8 + effect / 100, "prompt_source": source,
                                     "correct": i % 4 != 0, "study": "main"})
    return pd.DataFrame(rows)


EFFECTS = {"none": 0.0, "channel_attention": 0.2, "hard_select": 1.0}


# ----------------------------------------------------------------------------- configurations


def test_configure_shares_runs_with_notebook01():
    from csnet.profiles import config_hash, get_profile, run_config

    prof = get_profile("smoke")
    kwargs = dict(tasks=prof.tasks, text_encoder=prof.text_encoder, kappa=2.0, omega=0.5)
    # notebook 01's construction
    nb01_hard = run_config(prof, "hard_select", 0, tasks=tuple(prof.tasks), text_encoder=prof.text_encoder,
                           model={"kappa": 2.0, "omega": 0.5})
    nb01_none = run_config(prof, "none", 0, tasks=tuple(prof.tasks), text_encoder=prof.text_encoder)
    assert config_hash(fc.configure(prof, "hard_select", 0, **kwargs)) == config_hash(nb01_hard)
    assert config_hash(fc.configure(prof, "none", 0, **kwargs)) == config_hash(nb01_none)
    # the default estimator is the same run; gumbel is another
    same = fc.configure(prof, "hard_select", 0, estimator="straight_through", **kwargs)
    other = fc.configure(prof, "hard_select", 0, estimator="gumbel", **kwargs)
    assert config_hash(same) == config_hash(nb01_hard)
    assert config_hash(other) != config_hash(nb01_hard)
    assert other.model["estimator"] == "gumbel"


def test_single_task_groups_put_noise_levels_together():
    groups = fc.single_task_groups(("denoise_15", "denoise_25", "denoise_50", "derain", "dehaze"))
    assert groups == {"noise": ("denoise_15", "denoise_25", "denoise_50"), "rain": ("derain",),
                      "haze": ("dehaze",)}


def test_check_mechanisms():
    assert fc.check_mechanisms(["none", "hard_select", "none"]) == ["none", "hard_select"]
    with pytest.raises(ValueError, match="unknown mechanism"):
        fc.check_mechanisms(["hard_select", "moe"])
    with pytest.raises(ValueError, match="must include 'hard_select'"):
        fc.check_mechanisms(["none"])


def test_sweep_points_mark_the_shared_default():
    points = fc.sweep_points([0.25, 0.5, 0.75], [1.0, 2.0, 4.0], ["straight_through", "gumbel"],
                             kappa=2.0, omega=0.5)
    assert list(points.groupby("sweep", sort=False).size()) == [3, 3, 2]
    assert points["default"].sum() == 3  # the default point in each sweep
    assert points.loc[points["default"], "variant"].nunique() == 1
    assert set(points["variant"]) >= {"κ=2, ω=0.25, straight_through", "κ=2, ω=0.5, gumbel"}


# ----------------------------------------------------------------------------- tables


def test_summary_means_and_average():
    scores = synthetic_scores(EFFECTS, noise=0.0)
    table = fc.summary(scores, TASKS, "image")
    assert list(table["method"]) == list(EFFECTS)
    row = table.set_index("method").loc["hard_select"]
    expected = BASE["derain"] + 1.0 + 0.3 * np.arange(8).mean()
    assert row["derain_psnr"] == pytest.approx(expected)
    assert row["derain_psnr_std"] == pytest.approx(0.0, abs=1e-9)
    assert row["average_psnr"] == pytest.approx(np.mean([BASE[t] for t in TASKS]) + 1.0 + 0.3 * 3.5)
    assert row["n_seeds"] == 2


def test_summary_without_every_task_has_no_average():
    scores = synthetic_scores({"none": 0.0}, seeds=(0,))
    ref = scores[scores["task"] == "denoise_25"].assign(method="NL-means", kind=REFERENCE_KIND)
    table = fc.summary(pd.concat([scores, ref]), TASKS, "image").set_index("method")
    assert np.isnan(table.loc["NL-means", "average_psnr"])
    assert np.isnan(table.loc["NL-means", "derain_psnr"])
    assert np.isfinite(table.loc["NL-means", "denoise_25_psnr"])


def test_table2_layout_orders_rows_and_columns_and_labels_published():
    scores = synthetic_scores(EFFECTS, seeds=(0,))
    ref = scores[(scores["method"] == "none")].assign(method="degraded input", kind=REFERENCE_KIND)
    summary = fc.summary(pd.concat([ref, scores]), TASKS, "image")  # reference first on purpose
    numeric = fc.table2(summary, TASKS, params_m={"hard_select": 0.5}, profile_label="smoke")
    sources = list(numeric["source"])
    n_ours, n_pub = len(EFFECTS), len(fc.PUBLISHED_TABLE2)
    assert sources[:n_ours] == ["ours, measured (smoke)"] * n_ours
    assert sources[n_ours] == REFERENCE_KIND
    assert sources[-n_pub:] == [fc.PUBLISHED] * n_pub
    assert "not comparable" in fc.PUBLISHED
    psnr_columns = [c for c in numeric.columns if c.endswith("_psnr")]
    assert psnr_columns == ["dehaze_psnr", "derain_psnr", "denoise_25_psnr", "average_psnr"]
    assert "CSNet (anchor of hard_select)" in set(numeric["method"])
    csnet = numeric[numeric["method"].str.startswith("CSNet")].iloc[0]
    assert csnet["dehaze_psnr"] == 31.94 and csnet["average_psnr"] == 32.79 and csnet["params_m"] == 30.06
    shown = fc.formatted_table2(numeric, TASKS)
    assert list(shown.columns) == ["method", "source", "dehaze", "derain", "denoise_25", "average", "params (M)"]
    assert shown.loc[shown["method"] == "hard_select (CSNet)", "params (M)"].iloc[0] == "0.5"
    assert shown.loc[shown["method"] == "none (Restormer)", "params (M)"].iloc[0] == "—"
    assert shown.loc[shown["method"] == "degraded input", "params (M)"].iloc[0] == "—"
    assert " / " in shown.loc[0, "dehaze"]


def test_published_averages_recompute_from_their_columns():
    table = fc.PUBLISHED_TABLE2
    columns = [f"{t}_psnr" for t in fc.TABLE2_TASKS]
    np.testing.assert_allclose(table[columns].mean(axis=1), table["average_psnr"], atol=0.006)


def test_oracle_gap():
    scores = synthetic_scores(EFFECTS, noise=0.0)
    scores.loc[scores["prompt_source"] == "text", "psnr"] += 0.5
    gap = fc.oracle_gap(scores)
    assert len(gap) == len(EFFECTS) * len(TASKS)
    np.testing.assert_allclose(gap["text_minus_image"], 0.5)
    np.testing.assert_allclose(gap["recognition_accuracy"], 0.75)


# ----------------------------------------------------------------------------- statistics


def test_oracle_tests_pair_the_prompts_of_one_model():
    scores = synthetic_scores(EFFECTS, seeds=range(5))
    scores.loc[scores["prompt_source"] == "text", "psnr"] += 0.5
    tests = fc.oracle_tests(scores, mixed=False)
    assert len(tests) == len(EFFECTS) * len(TASKS)
    assert (tests["test"] == "paired t over seeds").all() and (tests["verdict"] == "different").all()
    np.testing.assert_allclose(tests["estimate"], 0.5, atol=0.05)


def test_paired_tests_and_verdict_count_from_the_data():
    scores = synthetic_scores(EFFECTS, seeds=range(5))
    tests = fc.paired_tests(scores, "image", mixed=False)
    psnr = tests[tests["metric"] == "psnr"]
    assert set(psnr["other"]) == {"none", "channel_attention"}
    assert set(psnr["task"]) == set(TASKS) | {"all tasks"}
    assert (psnr["n_seeds"] == 5).all() and (psnr["test"] == "Welch t over seeds").all()
    assert set(psnr.loc[psnr["other"] == "none", "family"]) == {"headline"}
    assert (psnr.loc[psnr["task"] == "all tasks", "n_images"] == 24).all()  # 3 tasks × 8 photos pooled
    per_task = psnr[psnr["task"] != "all tasks"]
    np.testing.assert_allclose(per_task.loc[per_task["other"] == "none", "estimate"], 1.0, atol=0.1)
    assert (psnr["p_holm"] >= psnr["p_value"]).all() and (psnr["verdict"] == "different").all()
    summary = fc.summary(scores, TASKS, "image")
    sentence = fc.verdict(tests, summary, TASKS)
    assert sentence.startswith("The best mean PSNR of the 3 mechanisms is hard_select's (descriptive) in 3 of 3 tasks;")
    assert "hard_select − none per task: different in 3 of 3 tasks (higher in 3, lower in 0)" in sentence
    assert "hard_select − none pooled over tasks: +0.99 dB" in sentence and "5 of 5 seeds agree" in sentence
    assert "Welch t over 5 seeds" in sentence and "detected with 80% power" in sentence
    assert sentence.endswith(".")


def test_verdict_when_reference_loses_and_when_seeds_are_too_few():
    scores = synthetic_scores({"none": 0.0, "hard_select": -1.0}, seeds=range(4))
    tests = fc.paired_tests(scores, "text", mixed=False)
    sentence = fc.verdict(tests, fc.summary(scores, TASKS, "text"), TASKS)
    assert "in 0 of 3 tasks" in sentence and "(higher in 0, lower in 3)" in sentence
    one_seed = fc.paired_tests(synthetic_scores({"none": 0.0, "hard_select": 1.0}, seeds=(0,)), "image", mixed=False)
    assert one_seed["verdict"].str.startswith("inconclusive (underpowered: 1 seed").all()


def test_interference_gap_sign():
    shared = synthetic_scores({"none": 0.0, "hard_select": 0.5}, seeds=range(3))
    specialist = synthetic_scores({"single-task": 1.5}, seeds=range(3), seed=1)
    specialist = specialist[specialist["prompt_source"] == "text"]
    gaps = fc.interference(shared, specialist, "image", mixed=False)
    assert len(gaps) == 2 * len(TASKS)
    assert (gaps["gap_psnr"] < 0).all() and (gaps["test"] == "Welch t over seeds").all()
    np.testing.assert_allclose(gaps.loc[gaps["method"] == "none", "gap_psnr"], -1.5, atol=0.1)
    ranked = fc.interference_by_method(gaps)
    assert list(ranked["method"]) == ["hard_select", "none"]
    sentence = fc.interference_verdict(gaps)
    assert "All-in-one − single-task model: different in 6 of 6 (mechanism, task) cells (higher in 0, lower in 6)" in sentence
    assert "rank 1 of 2" in sentence and "the single-task models have 3 seeds" in sentence
    # a specialist that is worse gives positive gaps
    worse = specialist.assign(psnr=specialist["psnr"] - 3.0)
    assert (fc.interference(shared, worse, "image", mixed=False)["gap_psnr"] > 0).all()


# ----------------------------------------------------------------------------- sweeps and figures


def test_sweep_summary_and_figures(tmp_path):
    from analysis.outputs import OutputDir

    points = fc.sweep_points([0.25, 0.5], [2.0], ["straight_through", "gumbel"], kappa=2.0, omega=0.5)
    frames = []
    for n, variant in enumerate(dict.fromkeys(points["variant"])):
        frames.append(synthetic_scores({"hard_select": 0.1 * n}, seeds=(0,)).assign(variant=variant))
    scores = pd.concat(frames)
    scores = scores[scores["prompt_source"] == "image"]
    table = fc.sweep_summary(scores, points, n_boot=500)
    assert len(table) == len(points) * len(TASKS) and (table["n_seeds"] == 1).all()
    tests = fc.sweep_tests(scores, points, mixed=False)
    assert set(tests["sweep"]) == {"omega", "estimator"}  # κ has only its default point here
    assert tests["verdict"].str.contains("underpowered: 1 seed").all()  # one seed: no test over seeds
    assert fc.sweep_verdict(tests).startswith("Omega against its default, pooled over tasks: different in 0 of 1 values")
    assert (table["psnr_lo"] <= table["psnr"]).all() and (table["psnr"] <= table["psnr_hi"]).all()
    out = OutputDir(tmp_path)
    for sweep in ("omega", "kappa", "estimator"):
        out.figure(fc.sweep_figure(table, sweep, TASKS, title=sweep), f"sweep_{sweep}")
    bars = fc.bar_table(synthetic_scores(EFFECTS), TASKS, "image", list(EFFECTS), n_boot=500)
    assert len(bars) == len(EFFECTS) * len(TASKS)
    floor = pd.DataFrame({"task": TASKS, "psnr": [20.0, 22.0, 15.0]})
    out.figure(fc.bar_figure(bars, TASKS, list(EFFECTS), floor=floor, title="t"), "bars")
    for name in ("sweep_omega", "sweep_kappa", "sweep_estimator", "bars"):
        assert (tmp_path / f"{name}.pdf").stat().st_size > 0
        assert (tmp_path / f"{name}.png").stat().st_size > 0


# ----------------------------------------------------------------------------- cost


def tiny(fusion: str):
    from csnet.models import ModelConfig

    return ModelConfig(dim=8, num_blocks=(1, 1, 1, 1), heads=(1, 1, 1, 1), num_refinement_blocks=1, fusion=fusion)


def test_fusion_parameter_count():
    from csnet.models import build_model
    from csnet.models.summary import parameter_count

    none, hard = build_model(tiny("none")), build_model(tiny("hard_select"))
    assert cost.fusion_parameter_count(none) == 0
    assert parameter_count(hard) - parameter_count(none) == cost.fusion_parameter_count(hard) > 0


def test_medians():
    out = cost.medians({"a": [1.0, 2.0, 3.0, 10.0], "b": [5.0]})
    assert out["a"] == {"median": 2.5, "iqr": pytest.approx(4.75 - 1.75)}
    assert out["b"] == {"median": 5.0, "iqr": 0.0}


def test_cost_table_on_tiny_networks():
    import torch

    from csnet.models import build_model

    encoder = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    configs = {name: tiny(name) for name in ("none", "hard_select")}
    before = {k: v.clone() for k, v in build_model(configs["hard_select"]).state_dict().items()}
    table = cost.cost_table(configs, patch_size=16, batch_size=2, image_side=32, image_encoder=encoder,
                            train_rounds=1, inference_rounds=1, warmup=0)
    assert list(table["mechanism"]) == ["none", "hard_select"]
    for column in ("params", "gflops_forward", "train_gflops_per_step", "train_patches_per_s", "latency_ms",
                   "latency_with_prompt_ms"):
        assert (table[column] > 0).all(), column
    assert table.loc[0, "prompt_ms"] == 0.0 and table.loc[1, "prompt_ms"] > 0
    assert (table["prompt_encoder_params"] == sum(p.numel() for p in encoder.parameters())).all()
    assert table.loc[0, "gflops_forward"] < table.loc[1, "gflops_forward"]
    # a step (forward + backward ≈ 3 forwards) on 2 × 16² pixels outweighs one forward on 32²
    assert (table["train_gflops_per_step"] > table["gflops_forward"]).all()
    # building fresh from the config: the same weights as before, untouched by the timed steps
    after = build_model(configs["hard_select"]).state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
