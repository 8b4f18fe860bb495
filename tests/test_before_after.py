"""Issue 12's before/after table (analysis.before_after): which runs each arm trains, and that the
comparisons recover a known difference and split it into recipe and prompt scale."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from analysis import before_after
from csnet.profiles import get_profile, run_id, study_config


def test_the_arms_differ_only_in_the_recipe():
    prof = get_profile("smoke")
    planned = before_after.configs(prof, ["none", "hard_select"], [0, 1])
    assert len(planned) == 8
    for (arm, mechanism, seed), cfg in planned.items():
        assert cfg.fusion == mechanism and cfg.seed == seed and cfg.steps == prof.steps
        if arm == "before":
            assert cfg.lr == pytest.approx(2e-4) and cfg.schedule == "cosine"
            if mechanism == "hard_select":
                assert cfg.model["selection_start"] == "projection"
        else:
            # the run notebooks 01–05 train for this mechanism and seed, so the store shares it
            assert run_id(cfg) == run_id(study_config(prof, mechanism, seed))
    before, after = planned[("before", "hard_select", 0)], planned[("after", "hard_select", 0)]
    assert (before.patch_size, before.batch_size, before.tasks) == (after.patch_size, after.batch_size, after.tasks)
    cpu_before = before_after.configs("cpu", ["none"], [0])[("before", "none", 0)]
    assert (cpu_before.patch_size, cpu_before.batch_size, cpu_before.lr) == (48, 8, 2e-4)  # the first cpu studies


def _scores(shift_recipe: float, shift_tile: float, seeds=(0, 1, 2, 3, 4)) -> pd.DataFrame:
    """Synthetic per-image scores: 'after' is ``shift_recipe`` dB above 'before' under every prompt,
    tiled P_v ``shift_tile`` dB above whole-image P_v, plus seed and image effects and small noise."""
    rng = np.random.default_rng(0)
    rows = []
    for mechanism, seed, task, image in itertools.product(["none", "hard_select"], seeds, ["denoise_25", "derain"],
                                                          range(4)):
        base = 25.0 + 0.3 * seed + 0.5 * image
        for arm, condition in itertools.product(before_after.ARMS, before_after.CONDITIONS):
            psnr = base + (shift_recipe if arm == "after" else 0.0) + (shift_tile if condition == "image, tiled" else 0.0)
            rows.append({"arm": arm, "mechanism": mechanism, "seed": seed, "condition": condition, "task": task,
                         "image": f"img{image}", "psnr": psnr + rng.normal(0, 0.01), "ssim": 0.8,
                         "correct": float(condition != "image, whole")})
    return pd.DataFrame(rows)


def test_comparisons_recover_the_recipe_and_the_prompt_scale():
    tests = before_after.comparisons(_scores(1.0, 0.5), n_boot=200)
    by = tests.set_index(["comparison", "mechanism", "task"])["estimate"]
    names = [c[0] for c in before_after.COMPARISONS]
    # after's protocol (tiled) − before's protocol (whole) = recipe + prompt scale
    assert by[(names[0], "hard_select", "all tasks")] == pytest.approx(1.5, abs=0.02)
    assert by[(names[1], "none", "derain")] == pytest.approx(1.0, abs=0.02)
    assert by[(names[2], "none", "denoise_25")] == pytest.approx(0.5, abs=0.02)
    assert by[(names[3], "hard_select", "denoise_25")] == pytest.approx(0.5, abs=0.02)
    assert (tests["verdict"] == "different").all()
    assert (tests["test"] == "paired t over seeds").all()


def test_no_change_is_equivalent_not_no_effect():
    tests = before_after.comparisons(_scores(0.0, 0.0), n_boot=200)
    assert tests["verdict"].str.startswith("equivalent within ±0.25").all()


def test_headline_table_and_outputs(tmp_path):
    scores = _scores(1.0, 0.5, seeds=(0, 1, 2))
    references = pd.DataFrame([{"method": "degraded input", "task": t, "image": "img0", "psnr": 20.0}
                               for t in ("denoise_25", "derain")])
    written = before_after.write_outputs(scores, references, tmp_path, "ba", title="smoke", n_boot=200)
    table = written["headline"]
    assert set(table["mechanism"]) == {"none", "hard_select"} and "all tasks" in set(table["task"])
    row = table[(table["mechanism"] == "none") & (table["task"] == "derain")].iloc[0]
    assert row["after_psnr"] - row["before_psnr"] == pytest.approx(1.5, abs=0.02)
    assert row["difference_db"] == pytest.approx(1.5, abs=0.02)
    recognised = written["recognition"].set_index(["arm", "mechanism", "task"])
    assert recognised["image, whole"].max() == 0.0 and recognised["image, tiled"].min() == 1.0
    for suffix in ("_per_image.csv", "_summary.csv", "_tests.csv", ".csv", ".tex", ".md", "_recognition.md",
                   ".png", ".pdf"):
        assert (tmp_path / f"ba{suffix}").exists(), suffix


def test_after_arm_keeps_notebook_05s_branch_states_when_the_profile_trains_wsd():
    import dataclasses

    prof = dataclasses.replace(get_profile("smoke"), schedule="wsd")
    after = before_after.configs(prof, ["none"], [0])[("after", "none", 0)]
    assert after.schedule == "wsd" and after.keep_steps  # notebook 05's shorter budgets branch off it
    assert run_id(after) == run_id(study_config(prof, "none", 0))  # keep_steps is bookkeeping
