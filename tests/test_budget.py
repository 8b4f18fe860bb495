"""Budgets branched off one trunk (warm-up–stable–decay), and notebook 05's analysis (analysis.budget)."""
from __future__ import annotations

import json

import pytest
import torch

import csnet.store as store
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
