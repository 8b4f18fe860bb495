"""Notebook 04's recognisers and statistics on tiny synthetic data (fast)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from analysis import recognition, recognition_features, recognition_stats
from csnet import corpus
from csnet.degrade import degrade


def _synthetic(tasks, per_task, size=32, offset=0):
    """Dead-leaves patches degraded by each task: (N, 3, P, P) tensor and the labels."""
    images, labels = [], []
    for k in range(per_task):
        clean = corpus.dead_leaves(size, offset + k)
        for task in tasks:
            degraded, _ = degrade(clean, task, offset + k)
            images.append(torch.from_numpy(np.ascontiguousarray(degraded.transpose(2, 0, 1))))
            labels.append(recognition.labels_of([task])[0])
    return torch.stack(images), np.array(labels)


# ----------------------------------------------------------------------------- frequency cues


def test_frequency_features_shape_names_and_finiteness():
    images, _ = _synthetic(["denoise_25", "dehaze"], 2)
    features = recognition_features.frequency_features(images)
    assert features.shape == (4, len(recognition_features.frequency_feature_names()))
    assert np.isfinite(features).all()
    flat = recognition_features.frequency_features(torch.full((1, 3, 16, 16), 0.5))  # no AC energy at all
    assert np.isfinite(flat).all()
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        recognition_features.frequency_features(np.zeros((2, 16, 16)))


def test_frequency_cues_separate_noise_from_haze_above_chance():
    train_x, train_y = _synthetic(["denoise_25", "dehaze"], 12)
    test_x, test_y = _synthetic(["denoise_25", "dehaze"], 12, offset=500)
    readout = recognition_features.fit_readout(recognition_features.frequency_features(train_x), train_y, seed=0)
    accuracy = float((readout.predict(recognition_features.frequency_features(test_x)) == test_y).mean())
    assert accuracy > 0.8  # chance is 0.5


def test_noise_flattens_the_spectrum_and_haze_steepens_it():
    clean, _ = _synthetic(["denoise_15"], 1)
    noisy, _ = _synthetic(["denoise_50"], 1)
    names = recognition_features.frequency_feature_names()
    slope = names.index("spectral_slope")
    assert recognition_features.frequency_features(noisy)[0, slope] > recognition_features.frequency_features(clean)[0, slope]


# ----------------------------------------------------------------------------- linear readout


def test_linear_readout_recovers_separable_classes_and_refuses_one_class():
    rng = np.random.default_rng(0)
    centres = {"a": [0, 0, 0], "b": [4, 0, 0], "c": [0, 4, 0]}
    x = np.concatenate([rng.normal(c, 0.5, size=(20, 3)) for c in centres.values()])
    y = np.repeat(list(centres), 20)
    readout = recognition_features.fit_readout(x, y, seed=0)
    assert (readout.predict(x) == y).mean() > 0.95
    tiny = recognition_features.fit_readout(x[[0, 20, 40]], y[[0, 20, 40]])  # one example per class: no CV possible
    assert set(tiny.predict(x)) <= set(centres)
    with pytest.raises(ValueError, match="two classes"):
        recognition_features.fit_readout(x[:5], ["a"] * 5)


def test_implicit_prompt_weights_are_one_softmax_per_site_and_hooks_are_removed():
    from csnet.models import ModelConfig, build_model

    model = build_model(ModelConfig(dim=8, num_blocks=(1, 1, 1, 1), heads=(1, 1, 1, 1), num_refinement_blocks=1,
                                    fusion="implicit_prompt"))
    images = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    weights, columns = recognition_features.implicit_prompt_weights(model, images, batch_size=2)
    sites = recognition_features.implicit_sites(model)
    prompt_len = model.config.implicit_prompt_len
    assert weights.shape == (5, len(sites) * prompt_len) and len(columns) == weights.shape[1]
    np.testing.assert_allclose(weights.reshape(5, len(sites), prompt_len).sum(axis=2), 1.0, rtol=1e-5)
    assert all(not fusion.component_weights._forward_hooks for fusion in sites.values())
    again, _ = recognition_features.implicit_prompt_weights(model, images)
    np.testing.assert_allclose(weights, again, rtol=1e-5)
    plain = build_model(ModelConfig(dim=8, num_blocks=(1, 1, 1, 1), heads=(1, 1, 1, 1), num_refinement_blocks=1,
                                    fusion="none"))
    with pytest.raises(ValueError, match="implicit_prompt"):
        recognition_features.implicit_prompt_weights(plain, images)


# ----------------------------------------------------------------------------- accuracy with CI


def test_accuracy_table_resamples_seeds_and_photos():
    rows = pd.DataFrame({"recogniser": "r", "patch": [0, 1, 2, 3] * 2, "photo": ["a", "a", "b", "b"] * 2,
                         "seed": [0] * 4 + [1] * 4, "label": "noise",
                         "correct": [True, False, True, True, True, True, True, True]})
    table = recognition_stats.accuracy_table(rows, ["recogniser"], n_boot=500)
    assert table.loc[0, "n"] == 4 and table.loc[0, "n_seeds"] == 2 and table.loc[0, "n_photos"] == 2
    assert table.loc[0, "accuracy"] == pytest.approx((0.75 + 1.0) / 2)
    assert table.loc[0, "lo"] <= table.loc[0, "accuracy"] <= table.loc[0, "hi"] <= 1


def test_confusion_rows_sum_to_one_and_keep_empty_columns():
    rows = pd.DataFrame({"label": ["a", "a", "b"], "predicted": ["a", "b", "b"]})
    matrix = recognition_stats.confusion(rows, ["a", "b"], ["a", "b", "c"])
    assert list(matrix.columns) == ["a", "b", "c"]
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    assert matrix.loc["a", "a"] == pytest.approx(0.5)


def test_recogniser_comparison_and_verdict_work_at_seed_level():
    rng = np.random.default_rng(0)
    frames = []
    for recogniser, p in (("text anchors: t", 0.9), (recognition.FREQUENCY, 0.5), (recognition.IMPLICIT, 0.6)):
        for task_set, n_classes in (("3 types", 3), ("5 types + 1 composites", 6)):
            for seed in range(5):
                frames.append(pd.DataFrame({
                    "recogniser": recogniser, "task_set": task_set, "n_classes": n_classes, "evaluation": "closed",
                    "seed": seed, "patch": np.arange(60), "photo": [f"photo{i % 6}" for i in range(60)],
                    "kind": ["single"] * 40 + ["composite"] * 20, "label": "x", "correct": rng.random(60) < p}))
    predictions = pd.concat(frames, ignore_index=True)
    diff = recognition_stats.recogniser_comparison(predictions[predictions["task_set"] == "3 types"],
                                             "text anchors: t", recognition.FREQUENCY, n_boot=500, mixed=False)
    assert diff["n_seeds"] == 5 and diff["n_images"] == 6 and diff["estimate"] > 0.3
    assert diff["test"] == "paired t over seeds" and diff["p_value"] < 0.001
    growth = recognition_stats.accuracy_table(predictions, ["recogniser", "task_set", "n_classes"], n_boot=200)
    sentence = recognition_stats.verdict(predictions, growth, None, None, "text anchors: t", "5 types + 1 composites",
                                   n_boot=200, mixed=False)
    assert sentence.startswith("On the 5 types + 1 composites set, text anchors: t recognises") and sentence.endswith(".")
    assert "text anchors: t − frequency cues on composites: +" in sentence
    assert "5 of 5 seeds agree, paired t over 5 seeds" in sentence and "): different" in sentence
    assert "points or more are detected with 80% power" in sentence
    table = recognition_stats.recogniser_comparisons(predictions, "text anchors: t", "5 types + 1 composites",
                                                     n_boot=200, mixed=False)
    assert list(zip(table["baseline"], table["scope"])) == [
        (recognition.FREQUENCY, "all classes"), (recognition.FREQUENCY, "composites"),
        (recognition.IMPLICIT, "all classes"), (recognition.IMPLICIT, "composites")]
    assert (table["unit"] == "points").all() and (table["family_size"] == 4).all()
    largest = predictions[predictions["task_set"] == "5 types + 1 composites"]
    fraction = recognition_stats.recogniser_comparison(largest, "text anchors: t", recognition.FREQUENCY,
                                                       n_boot=200, mixed=False)
    first = table.iloc[0]
    for key in ("estimate", "lo", "hi", "seed_sd"):  # the same test in points: × 100, the same resamples
        assert first[key] == pytest.approx(100 * fraction[key])
    assert first["p_value"] == pytest.approx(fraction["p_value"])
    assert first["margin"] == pytest.approx(100 * recognition_stats.HEADLINE_MARGIN)
    assert f"frequency cues on all classes: {first['estimate']:+.1f} points" in sentence  # the sentence is the table


def test_downstream_summary_pairs_prompts_within_a_run():
    rng = np.random.default_rng(1)
    rows = [{"run": f"r{s}", "seed": s, "task": task, "label": task, "image": f"i{i}",
             "psnr_text_prompt": 30 + i + 0.5 * s, "psnr_image_prompt": 30 + i + 0.5 * s - 0.4 + rng.normal(0, 0.02),
             "correct": True} for s in range(4) for task in ("derain", "dehaze") for i in range(5)]
    summary = recognition_stats.downstream_summary(pd.DataFrame(rows), n_boot=300, mixed=False)
    assert list(summary["task"]) == ["derain", "dehaze"]
    np.testing.assert_allclose(summary["delta_psnr"], -0.4, atol=0.02)
    assert (summary["verdict"] == "different").all() and (summary["n_seeds"] == 4).all()


# ----------------------------------------------------------------------------- conditions and patches


def test_task_sets_grow_and_held_out_composites_stay_out():
    sets = recognition.task_sets(["denoise_25", "derain", "dehaze"], ["deblur", "lowlight"],
                                 ["rain+haze", "noise+rain"], ["noise+rain"])
    assert [len(recognition.labels_of(t)) for t in sets.values()] == [3, 5, 6]
    assert "noise+rain" not in list(sets.values())[-1]
    with pytest.raises(ValueError, match="must be listed in composites"):
        recognition.task_sets(["derain"], ["dehaze"], ["rain+haze"], ["noise+rain"])
    with pytest.raises(ValueError, match="also training labels"):
        recognition.task_sets(["derain"], ["dehaze"], ["rain+haze", "derain+dehaze"], ["derain+dehaze"])


def test_severity_conditions_name_their_parameter_and_refuse_unknown_ones():
    conditions = recognition.severity_conditions({"noise": {"sigma": [15, 50]}, "haze": {"beta": [0.6]}})
    assert [c.name for c in conditions] == ["noise σ=15", "noise σ=50", "haze β=0.6"]
    assert {c.label for c in conditions} == {"noise", "haze"} and {c.kind for c in conditions} == {"severity"}
    with pytest.raises(ValueError, match="not one of rain's"):
        recognition.severity_conditions({"rain": {"sigma": [15]}})


def test_test_patches_are_deterministic_balanced_and_apply_overrides():
    photos = {"a": corpus.dead_leaves(64, 1), "b": corpus.dead_leaves(64, 2)}
    conditions = (recognition.standard_conditions(["denoise_15", "denoise_50", "dehaze"], ["rain+haze"])
                  + recognition.severity_conditions({"noise": {"sigma": [50]}}))
    first = recognition.make_test_patches(conditions, 4, 16, seed=3, photos=photos)
    second = recognition.make_test_patches(conditions, 4, 16, seed=3, photos=photos)
    assert torch.equal(first.images, second.images)
    counts = first.meta.groupby("label").size().to_dict()
    assert counts == {"noise": 8, "haze": 4, "rain_haze": 4}  # 2+2 keys of noise, plus σ=50's severity 4
    assert set(first.meta["kind"]) == {"single", "held-out composite", "severity"}
    assert first.images.shape == (16, 3, 16, 16) and first.meta["patch"].is_unique
    with pytest.raises(ValueError, match="exceeds test photo"):
        recognition.make_test_patches(conditions, 1, 128, photos=photos)


def test_label_balanced_weights_share_a_label_between_its_keys():
    assert recognition.label_balanced_weights(["denoise_15", "denoise_25", "denoise_50", "derain"]) == [1, 1, 1, 3]


def test_encoder_display_name_says_random_init_loudly():
    name = recognition.encoder_display_name("open_clip:ViT-B-32", {"model": "ViT-B-32", "pretrained": False})
    assert "random init" in name and "no weights offline" in name
    assert "pretrained" in recognition.encoder_display_name("open_clip:ViT-B-32:/w.pt", {"model": "ViT-B-32",
                                                                                         "pretrained": True})


# ----------------------------------------------------------------------------- text-anchored encoder


def _tiny_config(**overrides):
    config = dict(steps=2, batch_size=2, patch_size=32, lr=1e-3, temperature=0.05, seed=0, data_source="dead_leaves")
    config.update(overrides)
    return recognition.recogniser_config("onehot", ["denoise_25", "derain", "dehaze"], **config)


def test_recogniser_trains_caches_and_reuses():
    pytest.importorskip("csnet.prompts")
    config = _tiny_config()
    trained = recognition.train_recogniser(config)
    assert not trained.reused and trained.labels == ["noise", "rain", "haze"]
    reused = recognition.train_recogniser(config)
    assert reused.reused
    for a, b in zip(trained.encoder.state_dict().values(), reused.encoder.state_dict().values()):
        assert torch.equal(a, b)
    assert recognition.config_key(config) != recognition.config_key(_tiny_config(seed=1))


def test_zero_shot_path_predicts_over_the_held_out_labels():
    pytest.importorskip("csnet.prompts")
    recogniser = recognition.train_recogniser(_tiny_config())
    photos = {"a": corpus.dead_leaves(48, 1)}
    conditions = recognition.standard_conditions(["denoise_25", "derain", "dehaze"], ["rain+haze", "haze+rain+noise"])
    test = recognition.make_test_patches(conditions, 2, 32, photos=photos)
    held = ["rain_haze", "haze_rain_noise"]
    rows = recognition.zero_shot_predictions(test, recogniser, "text anchors: onehot", seed=0, set_name="3 types",
                                             held_labels=held)
    only = rows[rows["evaluation"] == "held-out only"]
    assert len(only) == 4 and set(only["predicted"]) <= set(held)
    general = rows[rows["evaluation"] == "generalised"]
    assert set(general["predicted"]) <= {"noise", "rain", "haze", *held} and len(general) == len(test)
    summary = recognition_stats.zero_shot_summary(rows, n_boot=200)
    assert {"seen accuracy", "held-out accuracy", "held-out among held-out accuracy"} <= set(summary.columns)


def test_synthesis_source_keeps_keyword_sources_and_replaces_a_benchmark_folder(tmp_path):
    assert recognition.synthesis_source("corpus") == "corpus"
    assert recognition.synthesis_source("dead_leaves") == "dead_leaves"
    assert recognition.synthesis_source(str(tmp_path)) == "mixed"


def test_a_corrupt_recogniser_cache_is_retrained_not_trusted():
    pytest.importorskip("csnet.prompts")
    from csnet import paths

    config = _tiny_config(seed=7)
    trained = recognition.train_recogniser(config)
    (paths.cache_dir("recognisers") / f"{trained.cache_key}.pt").write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="unreadable"):
        again = recognition.train_recogniser(config)
    assert not again.reused
    for a, b in zip(trained.encoder.state_dict().values(), again.encoder.state_dict().values()):
        assert torch.equal(a, b)  # deterministic given the config


def test_write_csv_gzips_deterministically_when_asked(tmp_path):
    import time

    import pandas as pd

    from analysis.outputs import write_csv

    df = pd.DataFrame({"patch": [0, 1], "predicted": ["noise", "rain"], "correct": [True, False]})
    write_csv(df, tmp_path / "a.csv.gz")
    time.sleep(1.1)  # gzip headers carry a timestamp unless it is pinned
    write_csv(df, tmp_path / "b.csv.gz")
    write_csv(df, tmp_path / "plain.csv")
    assert (tmp_path / "a.csv.gz").read_bytes()[:2] == b"\x1f\x8b"  # gzip magic
    assert (tmp_path / "a.csv.gz").read_bytes() == (tmp_path / "b.csv.gz").read_bytes()
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a.csv.gz"), df)
    assert (tmp_path / "plain.csv").read_text().splitlines()[0] == "patch,predicted,correct"
