"""The run store: the lock between processes, the listing, reuse of finished runs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import csnet.store as store
from csnet.profiles import run_config
from csnet.store import RunLockedError, describe_holder, list_runs, run_lock

HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from csnet.store import run_lock
    with run_lock(sys.argv[1]):
        Path(sys.argv[2]).write_text("held")
        time.sleep(float(sys.argv[3]))
""")


def _hold_lock(folder: Path, seconds: float) -> subprocess.Popen:
    flag = folder.parent / f"{folder.name}.held"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), str(flag), str(seconds)])
    deadline = time.monotonic() + 180  # importing torch takes minutes on a loaded machine
    while not flag.exists():
        assert proc.poll() is None, "lock holder died"
        assert time.monotonic() < deadline, "lock holder never took the lock"
        time.sleep(0.05)
    return proc


@pytest.mark.slow  # a subprocess that imports torch: 2-3 s, more on a busy machine
def test_lock_timeout_names_the_holder(tmp_path):
    folder = tmp_path / "run"
    holder = _hold_lock(folder, 30)
    try:
        info = json.loads((folder / "lock-info.json").read_text())
        assert info["pid"] == holder.pid
        assert f"pid {holder.pid}" in describe_holder(folder)
        messages = []
        with pytest.raises(RunLockedError, match=f"pid {holder.pid} since"):
            with run_lock(folder, timeout=0.3, notify=messages.append):
                pass
        assert messages and f"pid {holder.pid}" in messages[0] and "waiting" in messages[0]
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow  # a subprocess that imports torch: 2-3 s, more on a busy machine
def test_second_process_waits_then_gets_the_lock(tmp_path):
    folder = tmp_path / "run"
    holder = _hold_lock(folder, 1.0)
    messages = []
    began = time.monotonic()
    with run_lock(folder, timeout=60, notify=messages.append):
        waited = time.monotonic() - began
        assert json.loads((folder / "lock-info.json").read_text())["pid"] == os.getpid()
    holder.wait()
    assert waited > 0.3 and len(messages) == 1
    assert not (folder / "lock-info.json").exists()


@pytest.mark.slow  # a subprocess that imports torch: 2-3 s, more on a busy machine
def test_lock_of_a_killed_holder_is_released(tmp_path):
    folder = tmp_path / "run"
    holder = _hold_lock(folder, 60)
    holder.kill()  # SIGKILL: no cleanup runs
    holder.wait()
    with run_lock(folder, timeout=5):
        assert json.loads((folder / "lock-info.json").read_text())["pid"] == os.getpid()


def test_list_runs_on_an_empty_store_has_the_columns(tmp_path):
    table = list_runs(tmp_path)
    assert table.empty and {"run", "fusion", "steps_done", "final_loss", "size_mb"} <= set(table.columns)


# --------------------------------------------------------------------------------------------------
# get_or_train on tiny configs


def tiny_config(**overrides):
    values = dict(text_encoder="onehot", steps=3, warmup_steps=1, patch_size=16, batch_size=2,
                  checkpoint_every=2, model={"dim": 8, "heads": (1, 1, 1, 1)})
    values.update(overrides)
    return run_config("smoke", fusion="hard_select", **values)


@pytest.fixture
def counted_training(monkeypatch, tmp_path):
    """CSNET_RUNS in tmp_path, one torch thread, and a counter of training sessions."""
    monkeypatch.setenv("CSNET_RUNS", str(tmp_path / "runs"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    calls = []
    real = store.train

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "train", counting)
    yield calls
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_get_or_train_trains_once_then_reuses(counted_training):
    cfg = tiny_config()
    run = store.get_or_train(cfg, progress=False)
    assert run.trained_now and len(counted_training) == 1
    assert run.dir == store.run_path(cfg) and run.dir.name.startswith("hard_select-")
    names = {p.name for p in run.dir.iterdir()}
    assert {"config.json", "train_log.csv", "final.pt", "final.pt.sha256", "metrics.json", "DONE"} <= names
    assert not any(n.startswith("checkpoint-") for n in names)  # removed once final.pt exists
    assert not run.model.training and run.labels == ["noise", "rain", "haze"]
    assert run.anchors.shape == (3, 512) and run.text_encoder_info
    stamp = (run.dir / "final.pt").stat().st_mtime_ns

    again = store.get_or_train(cfg, progress=False)
    assert not again.trained_now and len(counted_training) == 1
    assert (run.dir / "final.pt").stat().st_mtime_ns == stamp
    for name, tensor in run.model.state_dict().items():
        assert torch.equal(tensor, again.model.state_dict()[name])

    assert run.prompts(["denoise_25", "dehaze"]).shape == (2, 512)
    images = torch.rand(2, 3, 32, 32)
    assert again.prompts(["derain"] * 2, source="image", images=images).shape == (2, 512)
    labels, confidence = again.recognise(images)
    assert len(labels) == 2 and set(labels) <= set(run.labels) and ((confidence > 0) & (confidence <= 1)).all()

    table = store.list_runs()
    row = table.set_index("run").loc[run.id]
    assert row["done"] and row["steps_done"] == 3 and row["size_mb"] > 0 and row["fusion"] == "hard_select"


@pytest.mark.slow
def test_corrupt_final_weights_are_not_trusted(counted_training):
    cfg = tiny_config(steps=2)
    run = store.get_or_train(cfg, progress=False)
    final = run.dir / "final.pt"
    final.write_bytes(final.read_bytes()[: final.stat().st_size // 2])
    with pytest.warns(UserWarning, match="training it again"):
        again = store.get_or_train(cfg, progress=False)
    assert again.trained_now and len(counted_training) == 2


def test_remove_run_deletes_the_folder(tmp_path):
    folder = tmp_path / "hard_select-0123456789ab"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    store.remove_run(folder)
    assert not folder.exists()


# --------------------------------------------------------------------------------------------------
# Stale runs (issue 17.1) and where the store lives (issue 16.1)


def _fake_run(root: Path, cfg, training_version=None, name=None) -> Path:
    """A run folder holding only config.json, as ``_write_config`` writes it (optionally aged)."""
    folder = root / (name or store.run_id(cfg))
    folder.mkdir(parents=True)
    store._write_config(folder, cfg)
    if training_version is not None or name is not None:
        data = json.loads((folder / "config.json").read_text())
        data["training_version"] = training_version if training_version is not None else data["training_version"]
        (folder / "config.json").write_text(json.dumps(data))
    return folder


def test_stale_runs_are_marked_and_removed_by_the_command(tmp_path, capsys):
    from csnet.cli import main
    from csnet.profiles import TRAINING_VERSION

    root = tmp_path / "runs"
    current = _fake_run(root, run_config("smoke", seed=0))
    older = _fake_run(root, run_config("smoke", seed=1), training_version=TRAINING_VERSION - 1)
    renamed = _fake_run(root, run_config("smoke", seed=2), name="hard_select-000000000000")  # old scheme's name
    assert json.loads((current / "config.json").read_text())["hash_scheme"] == store.HASH_SCHEME
    assert store.staleness(current) == ""
    assert "training version" in store.staleness(older)
    assert "hashes to hard_select-" in store.staleness(renamed)
    table = list_runs(root).set_index("run")
    assert table.loc[current.name, "stale"] == "" and table.loc[older.name, "stale"] != ""

    assert main(["runs", "--root", str(root)]) == 0
    shown = capsys.readouterr().out
    assert "2 stale run(s)" in shown and "csnet runs --remove-stale" in shown and older.name in shown
    assert main(["runs", "--root", str(root), "--remove-stale"]) == 0
    assert current.exists() and not older.exists() and not renamed.exists()
    assert main(["runs", "--root", str(root), "--remove", "no-such-run"]) == 2
    assert "no run 'no-such-run'" in capsys.readouterr().err
    assert main(["runs", "--root", str(root), "--remove", current.name]) == 0
    assert not current.exists()


def test_store_defaults_to_the_user_cache(monkeypatch, tmp_path):
    from csnet import paths

    for name in ("CSNET_RUNS", "CSNET_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert paths.runs_root() == tmp_path / "home" / ".cache" / "csnet" / "runs"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paths.runs_root() == tmp_path / "xdg" / "csnet" / "runs"
    monkeypatch.setenv("CSNET_CACHE", str(tmp_path / "cache"))
    assert paths.runs_root() == tmp_path / "cache" / "runs"
    monkeypatch.setenv("CSNET_RUNS", str(tmp_path / "elsewhere"))
    assert paths.runs_dir() == tmp_path / "elsewhere" and (tmp_path / "elsewhere").is_dir()


def test_tests_never_use_the_real_user_cache():
    from csnet import paths

    real = [Path.home() / ".cache"] + ([Path(os.environ["XDG_CACHE_HOME"])] if "XDG_CACHE_HOME" in os.environ else [])
    for where in (paths.runs_root(), paths.cache_dir()):
        assert not any(where.resolve().is_relative_to(r.resolve()) for r in real), where
