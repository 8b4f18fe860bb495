"""Budgets branched off one trunk (warm-up–stable–decay), and notebook 05's analysis (analysis.budget)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import csnet.store as store
from analysis import budget
from csnet.profiles import branch_step, run_config
from csnet.train import (
    BRANCH_FILE,
    CorruptCheckpointError,
    Trainer,
    branch_key,
    branch_path,
    check_branch_state,
    load_verified,
    train,
)


def _wsd(steps: int, **overrides):
    return run_config("smoke", "hard_select", seed=3, schedule="wsd", steps=steps, warmup_steps=2,
                      checkpoint_every=5, **overrides)


def test_a_steps_batch_does_not_depend_on_the_run_length():
    short, long = Trainer(_wsd(10)), Trainer(_wsd(40))
    for step in (0, 3, 9):
        a = next(short.batches(step))
        b = next(long.batches(step))
        assert torch.equal(a["degraded"], b["degraded"]) and torch.equal(a["clean"], b["clean"])
        assert torch.equal(a["task_index"], b["task_index"])


def test_branch_key_ignores_only_the_budget():
    assert branch_key(_wsd(10)) == branch_key(_wsd(40))
    assert branch_key(_wsd(10)) != branch_key(_wsd(10, lr=1e-3))
    assert branch_key(_wsd(10)) != branch_key(run_config("smoke", "none", seed=3, schedule="wsd", steps=10,
                                                         warmup_steps=2))


def test_branched_run_equals_the_same_budget_from_scratch(tmp_path, monkeypatch):
    monkeypatch.setenv("CSNET_RUNS", str(tmp_path / "store"))
    budget = 10
    start = branch_step(budget, 0.2)  # 8: the last 2 steps are the decay
    trunk = store.get_or_train(_wsd(20, keep_steps=(start,)), progress=False)
    kept = branch_path(trunk.dir, start)
    assert kept.exists() and not list(trunk.dir.glob("checkpoint-*.pt"))  # the branch state outlives pruning

    branched = store.get_or_train(_wsd(budget), progress=False)
    assert branched.trained_now and branched.dir != trunk.dir
    assert branched.metrics["branched_from"] == {"run": trunk.id, "step": start}
    assert branched.metrics["resumed_from_step"] == start  # it trained only the decay: 2 steps
    assert json.loads((branched.dir / BRANCH_FILE).read_text())["step"] == start
    logged = (branched.dir / "train_log.csv").read_text().splitlines()[1:]
    assert [int(row.split(",")[0]) for row in logged] == list(range(1, budget + 1))  # trunk rows + its own

    scratch = tmp_path / "scratch"
    train(_wsd(budget), scratch, progress=False)
    ours, theirs = load_verified(branched.dir / "final.pt"), load_verified(scratch / "final.pt")
    for part in ("model", "image_encoder"):
        for name, tensor in theirs[part].items():
            assert torch.equal(ours[part][name], tensor), f"{part}.{name} differs"  # CPU: bit-identical


def test_a_branch_state_must_sit_at_the_decay_start_in_the_stable_phase(tmp_path):
    train(_wsd(20, keep_steps=(5, 18)), tmp_path / "trunk", progress=False)
    at_five = load_verified(branch_path(tmp_path / "trunk", 5))
    check_branch_state(at_five, _wsd(6))  # 6 decays from step 5 (decay_steps(6, 0.2) = 1)
    with pytest.raises(CorruptCheckpointError, match="decays from step"):
        check_branch_state(at_five, _wsd(10))
    with pytest.raises(CorruptCheckpointError, match="branch key"):
        check_branch_state(at_five, _wsd(6, lr=1e-3))
    late = load_verified(branch_path(tmp_path / "trunk", 18))  # the trunk's own decay began at 16
    assert late["stable"] is False
    with pytest.raises(CorruptCheckpointError, match="stable"):
        check_branch_state(late, _wsd(22, decay_fraction=0.2, keep_steps=()))
    with pytest.raises(ValueError, match="keep_steps"):
        _wsd(10, keep_steps=(10,))


def test_find_branch_point_skips_other_configs(tmp_path):
    root = tmp_path / "store"
    other = _wsd(20, lr=1e-3, keep_steps=(8,))
    train(other, root / store.run_path(other).name, progress=False)
    assert store.find_branch_point(_wsd(10), root=root) is None
    assert store.find_branch_point(_wsd(10, lr=1e-3), root=root) is not None
    assert store.find_branch_point(run_config("smoke", "hard_select", seed=3, steps=10, lr=1e-3,
                                              warmup_steps=2), root=root) is None  # cosine never branches


# ----------------------------------------------------------------------------- analysis.budget


def test_default_budgets_halve_down_to_the_first_valid_wsd_run():
    assert budget.default_budgets(500, 50) == [62, 125, 250, 500]
    assert budget.default_budgets(20, 2) == [3, 5, 10, 20]  # 2.5 would decay inside the warm-up
    with pytest.raises(ValueError, match="warm-up"):
        budget.check_budgets([2, 20], warmup_steps=2, decay_fraction=0.2)
    with pytest.raises(ValueError, match="hard_select"):
        budget.check_mechanisms(["none", "soft_gate"])


def test_budget_config_gives_the_trunk_the_branch_states_of_the_shorter_budgets():
    trunk = budget.budget_config("smoke", "none", 0, 20, budgets=[3, 5, 10, 20])
    assert trunk.schedule == "wsd" and trunk.keep_steps == (2, 4, 8)
    assert budget.budget_config("smoke", "none", 0, 10, budgets=[3, 5, 10, 20]).keep_steps == ()
    plan = budget.plan("smoke", ["none"], [0], [3, 5, 10, 20], seconds_per_step={"none": 0.5})
    assert list(plan["steps_trained"]) == [1, 1, 2, 20] and plan["seconds"].sum() == pytest.approx(12.0)


def _synthetic(slope_db: float, seeds=range(4), budgets=(100, 200, 400, 800), images=6, noise=0.05, offset=0.0):
    """Per-image PSNR of none and hard_select whose gap is offset + slope·log2(budget/100) plus noise."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in seeds:
        for b in budgets:
            for i in range(images):
                base = 25 + np.log2(b) + rng.normal(0, 0.3)
                gap = offset + slope_db * np.log2(b / budgets[0]) + rng.normal(0, noise)
                for mechanism, value in (("none", base), ("hard_select", base + gap)):
                    rows.append({"mechanism": mechanism, "seed": seed, "budget": b, "task": "denoise_25",
                                 "image": f"im{i}", "psnr": value, "ssim": 0.5})
    return pd.DataFrame(rows)


def test_gap_slope_recovers_a_known_trend_and_calls_a_flat_one_equivalent():
    rising = budget.gap_slopes(_synthetic(0.5), n_boot=500)
    row = rising[rising["task"] == "denoise_25"].iloc[0]
    assert row["estimate"] == pytest.approx(0.5, abs=0.05) and 0 < row["lo"] < row["estimate"] < row["hi"]
    assert row["verdict"] == "different" and row["n_seeds"] == 4
    assert row["gap_at_largest"] == pytest.approx(1.5, abs=0.1)  # 0.5 dB per doubling over 3 doublings
    assert "widening as the budget grows) per doubling of the budget: +0.5" in budget.slope_sentences(rising)[0]
    flat = budget.gap_slopes(_synthetic(0.0, seeds=range(6)), margin=0.5, n_boot=500)
    assert flat.iloc[0]["verdict"].startswith("equivalent")


def test_crossing_is_located_between_the_budgets_where_the_gap_changes_sign():
    scores = _synthetic(1.0, offset=-1.5)  # gap −1.5, −0.5, +0.5, +1.5: zero at 200·√2 ≈ 283 steps
    table = budget.crossings(scores, n_boot=300)
    row = table[table["task"] == "denoise_25"].iloc[0]
    assert row["between"] == "200–400" and row["crossing_steps"] == pytest.approx(283, rel=0.1)
    assert row["lo_steps"] <= row["crossing_steps"] <= row["hi_steps"] and row["share_of_resamples"] > 0.9
    assert "cross on denoise_25 between 200–400 steps" in budget.crossing_sentences(table)[0]


def test_first_budget_above_a_reference():
    scores = _synthetic(0.0)
    line = scores.groupby(["budget"])["psnr"].mean()
    # a reference sitting between the budget-200 and budget-400 curves, the same on every photo
    refs = pd.DataFrame({"method": "NL-means", "task": "denoise_25", "image": [f"im{i}" for i in range(6)],
                         "psnr": (line[200] + line[400]) / 2, "ssim": 0.5})
    tests = budget.beats_references(scores, refs, n_boot=300)
    first = budget.first_beats(tests).set_index("mechanism")
    assert first.loc["none", "first_budget"] == 400 and first.loc["hard_select", "first_budget"] == 400
    assert "at 400 steps" in first.loc["none", "sentence"]


# ----------------------------------------------------------------------------- scripts/gpu_budget.sh

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gpu_budget.sh"


def _script(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=900)


@pytest.mark.slow  # imports torch in a subprocess
def test_gpu_script_dry_run_prints_the_gpu_plan_and_trains_nothing():
    done = _script("--dry-run")
    assert done.returncode == 0, done.stderr
    assert "profile gpu: budgets [625, 1250, 2500, 5000], 5 mechanisms x 3 seeds = 15 chains, 60 models" in done.stdout
    assert "each chain trains 5875 steps" in done.stdout and "=== train" not in done.stdout
    assert _script("--bogus").returncode == 2


@pytest.mark.slow  # trains 8 smoke models (or finds them in the store) and evaluates them
def test_gpu_script_logic_runs_on_a_cpu_at_smoke(tmp_path):
    out = tmp_path / "out"
    done = _script("--profile", "smoke", "--device", "cpu", "--mechanisms", "none,hard_select", "--seeds", "0",
                   "--tasks", "denoise_25", "--jobs", "1", "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 8 and set(runs["budget"]) == {3, 5, 10, 20}
    scores = pd.read_csv(out / "per_image.csv")
    assert set(scores["budget"]) == {3, 5, 10, 20} and set(scores["task"]) == {"denoise_25"}
    assert "NL-means (scikit-image)" in set(pd.read_csv(out / "references_per_image.csv")["method"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["extra"]["written_by"] == "scripts/gpu_budget.sh" and manifest["text_encoder"]
