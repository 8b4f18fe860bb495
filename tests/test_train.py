"""Training: schedule, data order, checksummed checkpoints, and the end-to-end runs."""
from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
import torch

from csnet.profiles import run_config
from csnet.train import (
    CorruptCheckpointError,
    StepBatches,
    checkpoint_path,
    latest_valid_checkpoint,
    load_verified,
    lr_factor,
    save_verified,
)


def test_lr_warms_up_linearly_then_follows_a_cosine_to_zero():
    factors = [lr_factor(s, warmup_steps=4, horizon=20) for s in range(20)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert all(a >= b for a, b in zip(factors[3:], factors[4:]))
    assert factors[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 15 / 16)))
    assert lr_factor(5, warmup_steps=0, horizon=10) == pytest.approx(0.5)


def test_wsd_warms_up_holds_then_decays_linearly_to_zero():
    factors = [lr_factor(s, warmup_steps=4, horizon=20, schedule="wsd", decay=5) for s in range(20)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert factors[4:15] == [1.0] * 11
    assert factors[15:] == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2])
    with pytest.raises(ValueError, match="schedule 'step' is not one of"):
        lr_factor(5, warmup_steps=0, horizon=10, schedule="step")


def _learning_rates(cfg) -> list[float]:
    """The lr of every optimiser step the trainer's scheduler gives ``cfg``."""
    from csnet.train import _LrLambda

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _LrLambda.of(cfg))
    rates = []
    for _ in range(cfg.steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_wsd_runs_at_different_budgets_share_their_stable_prefix():
    short, long = (_learning_rates(run_config("smoke", schedule="wsd", steps=steps, warmup_steps=10,
                                              lr=1e-3, decay_fraction=0.2)) for steps in (100, 300))
    assert short[:80] == long[:80]  # warm-up and stable phase: the same lr step for step
    assert short[9:80] == [1e-3] * 71 and short[80] == pytest.approx(1e-3) and short[-1] == pytest.approx(5e-5)
    assert long[100:240] == [1e-3] * 140 and long[-1] == pytest.approx(1e-3 / 60)
    cosine = [_learning_rates(run_config("smoke", steps=steps, warmup_steps=10, lr=1e-3)) for steps in (100, 300)]
    assert cosine[0][20] != cosine[1][20]  # the cosine's lr at a step depends on the budget


def test_step_batches_are_a_function_of_seed_and_step():
    full = StepBatches(length=10, batch_size=4, seed=7, start_step=0, steps=6)
    batches = list(full)
    assert len(batches) == 6 and all(len(b) == 4 for b in batches)
    epoch0 = [i for b in batches for i in b][:10]
    assert sorted(epoch0) == list(range(10))  # each epoch is a permutation
    resumed = list(StepBatches(length=10, batch_size=4, seed=7, start_step=3, steps=6))
    assert resumed == batches[3:]
    assert list(StepBatches(length=10, batch_size=4, seed=8, start_step=0, steps=6)) != batches
    ranks = [list(StepBatches(10, 4, 7, 0, 6, rank=r, world_size=2)) for r in range(2)]
    assert [a + b for a, b in zip(*ranks)] == batches  # ranks split each global batch
    with pytest.raises(ValueError, match="multiple of the world size"):
        StepBatches(10, 3, 7, 0, 6, rank=0, world_size=2)


def test_verified_checkpoint_round_trips(tmp_path):
    state = {"step": 3, "weights": torch.arange(5.0), "nested": {"a": [1, 2.5, "x"]}}
    path = save_verified(state, tmp_path / "c.pt")
    again = load_verified(path)
    assert again["step"] == 3 and torch.equal(again["weights"], state["weights"])
    assert (tmp_path / "c.pt.sha256").read_text().split()[1] == "c.pt"


def test_truncated_checkpoint_is_detected_and_not_trusted(tmp_path):
    for step in (10, 20):
        save_verified({"step": step, "w": torch.full((1000,), float(step))}, checkpoint_path(tmp_path, step))
    newest = checkpoint_path(tmp_path, 20)
    newest.write_bytes(newest.read_bytes()[:-100])  # truncate
    with pytest.raises(CorruptCheckpointError, match="does not match"):
        load_verified(newest)
    with pytest.warns(UserWarning, match="not trusting checkpoint"):
        path, state = latest_valid_checkpoint(tmp_path)
    assert state["step"] == 10 and path == checkpoint_path(tmp_path, 10)
    assert (tmp_path / (newest.name + ".corrupt")).exists() and not newest.exists()


def test_checkpoint_without_checksum_is_not_trusted(tmp_path):
    path = checkpoint_path(tmp_path, 5)
    torch.save({"step": 5}, path)  # a kill between the file and its sidecar
    with pytest.raises(CorruptCheckpointError, match="no checksum"):
        load_verified(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert latest_valid_checkpoint(tmp_path) is None
    assert any("not trusting" in str(w.message) for w in caught)


# --------------------------------------------------------------------------------------------------
# End to end (tiny configs; the real data and prompt modules)


def tiny_config(**overrides):
    values = dict(text_encoder="onehot", steps=4, warmup_steps=1, patch_size=16, batch_size=2,
                  checkpoint_every=2, model={"dim": 8, "heads": (1, 1, 1, 1)})
    values.update(overrides)
    return run_config("smoke", fusion="hard_select", **values)


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_smoke_training_writes_log_checkpoints_weights_and_metrics(tmp_path, monkeypatch, one_thread):
    from csnet.train import train

    monkeypatch.setenv("CSNET_RUNS", str(tmp_path / "runs"))
    cfg = tiny_config()
    summary = train(cfg, tmp_path / "run", progress=False, keep_checkpoints=True)
    with open(tmp_path / "run" / "train_log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert set(rows[0]) == {"step", "loss", "l1", "contrastive", "lr", "patches_per_s"}
    assert all(float(r["loss"]) > 0 for r in rows)
    assert [p.name for p in sorted((tmp_path / "run").glob("checkpoint-*.pt"))] == [
        "checkpoint-00000002.pt", "checkpoint-00000004.pt"]
    state = load_verified(tmp_path / "run" / "final.pt")
    assert state["labels"] == ["noise", "rain", "haze"] and state["anchors"].shape == (3, 512)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["steps_done"] == 4 and metrics["text_encoder"] and math.isfinite(metrics["final_loss"])
    assert summary["steps_done"] == 4 and metrics["device"] == "cpu" and metrics["precision"] == "fp32"


def test_mask_noise_needs_a_selecting_fusion(tmp_path, one_thread):
    from csnet.train import train

    cfg = run_config("smoke", fusion="channel_attention", text_encoder="onehot", mask_noise=0.5)
    with pytest.raises(ValueError, match="mask_noise needs a fusion that selects"):
        train(cfg, tmp_path / "run", progress=False)


RESUMABLE = textwrap.dedent("""
    import os, sys, time
    import torch
    torch.set_num_threads(1)
    import csnet.train as T
    from csnet.profiles import RunConfig
    from csnet.store import get_or_train
    delay = float(os.environ.get("STEP_DELAY", "0"))
    step = T.Trainer.train_step
    def slowed(self, batch, index=None):
        out = step(self, batch, index)
        time.sleep(delay)
        return out
    T.Trainer.train_step = slowed
    cfg = RunConfig.from_dict(__import__("json").loads(os.environ["RUN_CONFIG"]))
    run = get_or_train(cfg, progress=False)
    weights = {"model." + k: v for k, v in run.model.state_dict().items()}
    weights.update({"image_encoder." + k: v for k, v in run.image_encoder.state_dict().items()})
    torch.save(weights, sys.argv[1])
""")


@pytest.mark.slow
def test_resume_after_sigkill_gives_bit_identical_weights(tmp_path):
    cfg = tiny_config(steps=10, checkpoint_every=3, mask_noise=0.3,  # dropout, forced channels, BN, Gumbel
                      model={"dim": 8, "heads": (1, 1, 1, 1), "estimator": "gumbel"})
    script = tmp_path / "resumable.py"
    script.write_text(RESUMABLE)
    base = dict(os.environ, OMP_NUM_THREADS="1", RUN_CONFIG=json.dumps(cfg.to_dict()))
    uninterrupted = dict(base, CSNET_RUNS=str(tmp_path / "a"))
    subprocess.run([sys.executable, str(script), str(tmp_path / "reference.pt")], env=uninterrupted, check=True)

    interrupted = dict(base, CSNET_RUNS=str(tmp_path / "b"), STEP_DELAY="0.4")
    victim = subprocess.Popen([sys.executable, str(script), str(tmp_path / "never.pt")], env=interrupted)
    deadline = time.monotonic() + 240
    while not list((tmp_path / "b").glob("*/checkpoint-00000003.pt.sha256")):
        assert victim.poll() is None and time.monotonic() < deadline, "no checkpoint before the kill"
        time.sleep(0.02)
    time.sleep(0.5)  # kill somewhere after the first checkpoint, mid-step
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    run_dir = next((tmp_path / "b").iterdir())
    assert not (run_dir / "DONE").exists() and not (run_dir / "final.pt").exists()

    resumed = dict(interrupted, STEP_DELAY="0")
    subprocess.run([sys.executable, str(script), str(tmp_path / "resumed.pt")], env=resumed, check=True)
    reference, again = torch.load(tmp_path / "reference.pt"), torch.load(tmp_path / "resumed.pt")
    assert reference.keys() == again.keys()
    for name in reference:
        assert torch.equal(reference[name], again[name]), name
    with open(run_dir / "train_log.csv") as handle:
        assert [int(r["step"]) for r in csv.DictReader(handle)] == list(range(1, 11))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["resumed_from_step"] >= 3 and metrics["steps_done"] == 10


@pytest.mark.slow
def test_cli_train_reuse_eval_runs_restore(tmp_path, monkeypatch, capsys, one_thread):
    from csnet.cli import main
    from csnet.io import read_image, write_image

    monkeypatch.setenv("CSNET_RUNS", str(tmp_path / "runs"))
    run_args = ["--profile", "smoke", "--fusion", "hard_select", "--set", "text_encoder=onehot",
                "--set", "patch_size=16", "--set", "batch_size=2", "--set", "model.heads=(1,1,1,1)",
                "--steps", "2"]
    assert main(["train", *run_args, "--no-progress"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("trained: ") and "hard_select-" in first
    assert main(["train", *run_args, "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith("reusing finished run: ")

    table = tmp_path / "eval.csv"
    assert main(["eval", *run_args, "--tasks", "denoise_25,derain", "--max-images", "1", "--max-side", "32",
                 "-o", str(table), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "not meaningful" in out and "denoise_25" in out and "psnr" in out
    import pandas as pd

    frame = pd.read_csv(table)
    assert len(frame) == 2 and {"task", "image", "psnr", "ssim", "predicted"} <= set(frame.columns)

    assert main(["runs"]) == 0
    assert "hard_select" in capsys.readouterr().out

    photo = tmp_path / "photo.png"
    write_image(photo, np.random.default_rng(0).random((40, 56, 3), dtype=np.float32))
    restored = tmp_path / "restored.png"
    assert main(["restore", str(photo), "-o", str(restored), *run_args[:4], "--set", "text_encoder=onehot",
                 "--set", "patch_size=16", "--set", "batch_size=2", "--set", "model.heads=(1,1,1,1)",
                 "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "recognised degradation:" in out and "confidence" in out
    assert read_image(restored).shape == (40, 56, 3)


def test_cli_user_errors_exit_2(capsys):
    from csnet.cli import main

    assert main(["train", "--profile", "huge", "--fusion", "hard_select"]) == 2
    assert "smoke, quick, cpu, paper" in capsys.readouterr().err
    assert main(["train", "--profile", "smoke", "--fusion", "hard_select", "--set", "nonsense"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main(["restore", "nowhere.png", "-o", "x.png"]) == 2
    assert "--run DIR" in capsys.readouterr().err


@pytest.mark.parametrize("value, expected", [(None, 1), ("1", 1), (" 3 ", 3), ("0", None)])
def test_cpu_threads_default_to_one_and_zero_means_torch_choice(monkeypatch, value, expected):
    from csnet.train import THREADS_VARIABLE, cpu_threads

    if value is None:
        monkeypatch.delenv(THREADS_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(THREADS_VARIABLE, value)
    assert cpu_threads() == expected


@pytest.mark.parametrize("value", ["two", "-1", "1.5", ""])
def test_cpu_threads_refuse_a_bad_setting_by_name(monkeypatch, value):
    from csnet.train import THREADS_VARIABLE, cpu_threads

    monkeypatch.setenv(THREADS_VARIABLE, value)
    with pytest.raises(ValueError, match=THREADS_VARIABLE):
        cpu_threads()


def test_training_on_cpu_runs_with_the_configured_threads_and_restores_them(tmp_path, monkeypatch):
    import csnet.train as train_module

    seen = []

    def fake_loop(trainer, *args):
        seen.append(torch.get_num_threads())
        return {"steps_done": 0}

    monkeypatch.setattr(train_module, "_loop", fake_loop)
    monkeypatch.setattr(train_module, "save_verified", lambda *args: None)
    monkeypatch.setenv(train_module.THREADS_VARIABLE, "1")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train_module.train(tiny_config(), tmp_path / "run", progress=False, device="cpu")
        assert seen == [1]  # trained with the suite's default, not the process's 2
        assert torch.get_num_threads() == 2  # and gave the caller its own setting back
    finally:
        torch.set_num_threads(before)
