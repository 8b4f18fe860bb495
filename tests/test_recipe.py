"""``csnet bench --recipe``: the choice by the mean over mechanisms, time to quality on milestone curves,
the load-average refusal, and (slow) a tiny sweep at the smoke profile that trains, writes its tables,
and resumes without retraining."""
from __future__ import annotations

import math
import os

import pandas as pd
import pytest

from analysis import recipe as reading
from csnet import bench, recipe
from csnet.cli import main


def _rows(stage: str, column: str, psnr: dict) -> pd.DataFrame:
    """A synthetic recipe table: ``psnr[(value, fusion)]`` = per-seed PSNRs, two tasks each, full budget
    at step 10 (and a worse step-5 milestone that must not count)."""
    rows = []
    for (value, fusion), per_seed in psnr.items():
        for seed, score in enumerate(per_seed):
            for task, offset in (("denoise_25", 1.0), ("dehaze", -1.0)):
                base = {"stage": stage, "fusion": fusion, "seed": seed, "lr": 1e-3, "schedule": "cosine",
                        "patch": 48, "batch": 8, "selection_start": "", "task": task,
                        "run": f"{fusion}-{value}-{seed}", "cpu_seconds": 1.0}
                base[column] = value
                rows.append({**base, "step": 5, "psnr": 0.0})
                rows.append({**base, "step": 10, "psnr": score + offset})
    return pd.DataFrame(rows)


def test_the_lr_is_chosen_by_the_mean_over_mechanisms_not_by_hard_selection_alone():
    table = _rows("lr", "lr", {
        (1e-3, "none"): [28.0, 28.2], (1e-3, "hard_select"): [27.0, 27.2],  # mean 27.6
        (4e-3, "none"): [25.0, 25.2], (4e-3, "hard_select"): [27.5, 27.7],  # mean 26.35
    })
    best, means = recipe.choose(table, "lr")
    assert best == pytest.approx(1e-3)
    hard_best = means.loc[means["psnr_hard_select"].idxmax(), "value"]
    assert hard_best == pytest.approx(4e-3)  # hard selection alone would have picked the other
    row = means[means["value"] == best].iloc[0]
    assert row["mean_psnr"] == pytest.approx((28.1 + 27.1) / 2)
    assert row["seeds"] == 2


def test_a_value_not_measured_for_every_mechanism_is_not_eligible():
    table = _rows("selection_start", "selection_start", {
        ("projection", "hard_select"): [20.0], ("projection", "soft_gate"): [21.0],
        ("identity", "hard_select"): [30.0],  # soft_gate missing: not comparable
    })
    best, means = recipe.choose(table, "selection_start")
    assert best == "projection"
    assert math.isnan(means.loc[means["value"] == "identity", "mean_psnr"].iloc[0])


def test_patch_shapes_hold_pixels_per_step():
    assert recipe.equal_pixel_shapes(48, 8) == [(32, 18), (48, 8), (96, 2)]
    assert recipe.equal_pixel_shapes(32, 4) == [(16, 16), (32, 4), (64, 1)]
    assert recipe.parse_shapes("32x18, 48x8") == ((32, 18), (48, 8))
    with pytest.raises(ValueError, match="'48-8' is not SIDExBATCH"):
        recipe.parse_shapes("48-8")


def test_settings_name_bad_values():
    with pytest.raises(ValueError, match="unknown recipe stages \\['epochs'\\]"):
        recipe.Settings("smoke", stages=("lr", "epochs"))
    with pytest.raises(ValueError, match="unknown schedules \\['step'\\]"):
        recipe.Settings("smoke", schedule="step")
    assert recipe.Settings("smoke", steps=20, milestone_fractions=(0.25, 0.5)).milestones() == [5, 10, 20]


def test_crossing_interpolates_between_milestones():
    found = reading.crossing([5, 10, 20], [10.0, 20.0, 40.0], [20.0, 24.0, 26.0], target=25.0)
    assert found["reached"] and found["how"] == reading.INTERPOLATED
    assert found["step"] == pytest.approx(15.0)
    assert found["cpu_minutes"] == pytest.approx(30.0 / 60)
    first = reading.crossing([5, 10], [10.0, 20.0], [26.0, 27.0], target=25.0)
    assert first["how"] == reading.REACHED and first["step"] == 5


def test_crossing_extrapolates_log_linearly_and_says_so():
    # +2 dB per doubling of steps: 2 dB more than the last milestone needs one more doubling
    found = reading.crossing([5, 10, 20], [10.0, 20.0, 40.0], [20.0, 22.0, 24.0], target=26.0)
    assert not found["reached"] and found["how"] == reading.EXTRAPOLATED and "extrapolated" in found["how"]
    assert found["step"] == pytest.approx(40.0)
    assert found["cpu_minutes"] == pytest.approx(80.0 / 60)
    stalled = reading.crossing([5, 10, 20], [10.0, 20.0, 40.0], [20.0, 24.0, 23.0], target=26.0)
    assert stalled["how"] == reading.STALLED and math.isnan(stalled["step"])
    far = reading.crossing([2, 4], [1.0, 2.0], [20.616, 20.6172], target=27.9)  # 0.001 dB per doubling
    assert far["how"] == reading.FAR and far["step"] == math.inf


def test_time_to_quality_per_mechanism_seed_and_seed_mean():
    curves = pd.DataFrame([
        {"fusion": fusion, "seed": seed, "task": "denoise_25", "step": step, "cpu_seconds": 2.0 * step,
         "psnr": start + gain * i}
        for fusion, start, gain in (("none", 20.0, 3.0), ("hard_select", 18.0, 1.0))
        for seed in (0, 1) for i, step in enumerate((5, 10, 20))
    ])
    references = pd.DataFrame([{"task": "denoise_25", "method": "NL-means (scikit-image)", "psnr": 24.0,
                                "margin_db": 0.0, "target_psnr": 24.0, "images": 3}])
    ttq = reading.time_to_quality(curves, references)
    assert list(ttq.columns) == list(reading.TTQ_COLUMNS)
    assert len(ttq) == 2 * 3  # two mechanisms × (two seeds + the mean)
    none = ttq[(ttq["fusion"] == "none") & (ttq["seed"] == "mean")].iloc[0]
    assert none["reached"] and none["step"] == pytest.approx(10 + 10 / 3)  # 23 → 26 dB from 10 to 20
    hard = ttq[(ttq["fusion"] == "hard_select") & (ttq["seed"] == 0)].iloc[0]
    assert not hard["reached"] and hard["how"] == reading.EXTRAPOLATED and hard["gap_db"] == pytest.approx(-4.0)


def test_busy_machine_is_refused_unless_allowed(monkeypatch, capsys):
    monkeypatch.setattr(os, "getloadavg", lambda: (3.7, 3.7, 3.7))  # what csnet.bench.timing reads
    with pytest.raises(bench.BusyMachineError, match="load average 3.7 > 2 core"):
        bench.check_load(2)
    assert bench.check_load(2, allow=True) == {"load_average": 3.7, "load_override": True}
    assert bench.check_load(4) == {"load_average": 3.7, "load_override": False}
    status = main(["bench", "--recipe", "--profile", "smoke", "--jobs", "1", "--dry-run"])
    assert status == 2
    assert "--allow-load" in capsys.readouterr().err
    with pytest.raises(bench.BusyMachineError):
        bench.run_bench(["smoke"], "none", steps=1, memory=False)


def test_dry_run_prints_the_plan_with_measured_seconds(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    status = main(["bench", "--recipe", "--profile", "smoke", "--jobs", "2", "--dry-run", "--seeds", "0",
                   "--lrs", "1e-3,2e-3", "-o", str(tmp_path)])
    assert status == 0
    out = capsys.readouterr().out
    assert "cpu_minutes" in out and "total" in out
    assert not list(tmp_path.iterdir())  # a dry run writes nothing


def test_plan_counts_models_shared_between_stages_once(monkeypatch, tmp_path):
    monkeypatch.setenv("CSNET_RUNS", str(tmp_path / "runs"))  # an empty store: earlier tests' runs are not "in store"
    settings = recipe.Settings("smoke", stages=("lr", "patch"), lrs=(2e-4, 1e-3), seeds=(0,),
                               patch_shapes=((16, 16), (32, 4)))
    table = recipe.plan(settings, {"none": 1.0, "hard_select": 2.0}, jobs=2)
    lr, patch, total = (table.iloc[i] for i in range(3))
    assert (lr["models"], lr["new_models"]) == (4, 4)
    assert (patch["models"], patch["new_models"]) == (4, 2)  # the profile's own shape is the lr stage's
    steps = settings.total_steps()
    assert lr["cpu_minutes"] == pytest.approx(steps * (1.0 + 2.0) * 2 / 60)
    assert total["wall_minutes"] == pytest.approx(total["cpu_minutes"] / 2)


@pytest.mark.slow
def test_tiny_sweep_trains_writes_and_resumes_without_retraining(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    args = ["bench", "--recipe", "--profile", "smoke", "--jobs", "2", "--seeds", "0", "--lrs", "1e-3,4e-3",
            "--recipe-steps", "4", "--milestones", "0.5,1", "--patches", "16x16,32x4",
            "--selection-fusions", "hard_select,soft_gate", "--val-max-images", "1", "-o", str(tmp_path)]
    assert main(args) == 0
    table = pd.read_csv(tmp_path / "recipe_smoke.csv")
    assert list(table.columns) == list(recipe.COLUMNS)
    tasks = 5  # the smoke profile's
    # lr: 2 lrs, schedule: 2 schedules, patch: 2 shapes (× none, hard_select); selection_start: 2 starts ×
    # (hard_select, soft_gate); each × 2 milestones × tasks
    assert len(table) == (4 + 4 + 4 + 4) * 2 * tasks
    assert set(table["step"]) == {2, 4}
    assert set(table["stage"]) == set(recipe.STAGES)
    assert (table.groupby("run")["cpu_seconds"].max() > table.groupby("run")["cpu_seconds"].min()).all()
    summary = pd.read_csv(tmp_path / "recipe_smoke_summary.csv", keep_default_na=False)
    assert summary["chosen"].sum() == 4  # one value per stage
    chosen = summary[summary["chosen"]].set_index("stage")["value"]
    later = table[table["stage"] != "lr"]
    assert (later["lr"] == float(chosen["lr"])).all()  # later stages train at the lr stage's choice
    assert (table[table["stage"].isin(["patch", "selection_start"])]["schedule"] == chosen["schedule"]).all()
    starts = table[table["stage"] == "selection_start"]
    assert set(starts["selection_start"]) == {"projection", "identity"}
    assert set(starts["fusion"]) == {"hard_select", "soft_gate"}
    ttq = pd.read_csv(tmp_path / "recipe_smoke_time_to_quality.csv")
    assert set(ttq["task"]) == {"denoise_25", "dehaze", "derain"}
    assert set(ttq["fusion"]) == {"none", "hard_select", "soft_gate"}  # every mechanism at the chosen recipe
    assert set(ttq["seed"].astype(str)) == {"0", "mean"}
    assert (tmp_path / "recipe_smoke.png").exists() and (tmp_path / "recipe_smoke.pdf").exists()

    # Resume: drop one trial's last milestone; the rerun evaluates it again from the stored weights,
    # trains nothing, and keeps every other row.
    import csnet.train

    def no_training(*args, **kwargs):
        raise AssertionError("the sweep retrained a model the store holds")

    monkeypatch.setattr(csnet.train, "train", no_training)
    monkeypatch.setattr("csnet.store.train", no_training)
    dropped = table[(table["run"] == table["run"].iloc[0]) & (table["step"] == 4)].index
    table.drop(index=dropped).to_csv(tmp_path / "recipe_smoke.csv", index=False)
    settings = recipe.Settings("smoke", lrs=(1e-3, 4e-3), seeds=(0,), steps=4, milestone_fractions=(0.5, 1.0),
                               patch_shapes=((16, 16), (32, 4)), selection_fusions=("hard_select", "soft_gate"),
                               max_images=1)
    again, _, _ = recipe.run_sweep(settings, tmp_path / "recipe_smoke.csv", jobs=1)
    assert len(again) == len(table)
    merged = again.merge(table, on=["stage", "run", "step", "task"], suffixes=("", "_before"))
    assert merged["psnr"].to_numpy() == pytest.approx(merged["psnr_before"].to_numpy(), abs=1e-4)


def test_training_keeps_milestone_weights_without_changing_the_run(tmp_path):
    import torch

    from csnet.profiles import config_hash, run_config
    from csnet.train import FINAL_WEIGHTS, load_verified, milestone_path, train

    cfg = run_config("smoke", fusion="none", steps=4, warmup_steps=0, checkpoint_every=4)
    plain = train(cfg, tmp_path / "plain", progress=False)
    kept = train(cfg, tmp_path / "kept", progress=False, milestones=[2, 4])
    assert not list((tmp_path / "plain").glob("milestone-*"))
    assert sorted(p.name for p in (tmp_path / "kept").glob("milestone-*.pt")) == [
        "milestone-00000002.pt", "milestone-00000004.pt"]
    half, last = (load_verified(milestone_path(tmp_path / "kept", step)) for step in (2, 4))
    assert half["step"] == 2 and last["config_hash"] == config_hash(cfg)
    assert 0 < half["cpu_elapsed"] < last["cpu_elapsed"] == pytest.approx(kept["train_cpu_seconds"])
    final = load_verified(tmp_path / "plain" / FINAL_WEIGHTS)
    for name, tensor in final["model"].items():  # keeping milestones changes nothing that is trained
        assert torch.equal(tensor, last["model"][name]), name
    assert plain["train_cpu_seconds"] > 0
