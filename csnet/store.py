"""The run store: trained models that every notebook reuses, one folder per config.

A run lives at ``csnet.paths.runs_dir() / "<fusion>-<hash[:12]>"`` (root set by env ``CSNET_RUNS``)::

    config.json              the RunConfig as written, its full hash, the training-code and hash-scheme
                             versions
    train_log.csv            step, loss, l1, contrastive, lr, patches_per_s
    checkpoint-<8-digit step>.pt (+ .sha256) while training; removed once final.pt exists
    final.pt                 (+ .sha256) model, image encoder, text anchors, labels
    metrics.json             training summary, including the text encoder really used
    branch-<8-digit step>.pt (+ .sha256) full training states kept at ``keep_steps`` (never pruned)
    branched_from.json       a budget run that started from another run's branch state: which, where
    DONE                     written last: the run is complete
    .lock, lock-info.json    held while a process trains the run: who holds it

``get_or_train(cfg)`` loads a finished run, resumes a partial one, or trains a new one. A new wsd run
at budget B whose sibling (same config but ``steps``, ``csnet.train.branch_key``) kept its full state at
B's ``branch_step`` starts there and trains only its decay (``find_branch_point``): with the same lr,
batches and noise before that step, its weights equal those of the same run trained from scratch. A file lock on
the folder means two processes asking for the same run never both train it: the second waits (saying
who holds the lock) or, past its ``timeout``, raises ``RunLockedError`` naming the holder.

A run is *stale* (``staleness``) when its stored config no longer hashes to its folder name (the hash
scheme or a default changed, a field was added) or was trained by an older ``TRAINING_VERSION``: no
config reaches it any more, so it only takes space. ``list_runs`` marks such runs and ``remove_run``
deletes them (``csnet runs --remove-stale``).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import socket
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from csnet import paths
from csnet.distributed import barrier, broadcast_object, setup
from csnet.io import atomic_write
from csnet.profiles import HASH_SCHEME, TRAINING_VERSION, RunConfig, branch_step, config_hash, run_id
from csnet.train import (
    FINAL_WEIGHTS,
    METRICS_FILE,
    CorruptCheckpointError,
    _prune_checkpoints,
    branch_path,
    build_networks,
    check_branch_state,
    finished,
    list_checkpoints,
    load_verified,
    train,
)

CONFIG_FILE = "config.json"
DONE_FILE = "DONE"
LOCK_FILE = ".lock"
LOCK_INFO_FILE = "lock-info.json"


def run_path(cfg: RunConfig) -> Path:
    """Where ``cfg``'s run lives (not created)."""
    return paths.runs_dir() / run_id(cfg)


# --------------------------------------------------------------------------------------------------
# The lock


class RunLockedError(TimeoutError):
    """Another process holds the run's lock and did not release it within the timeout."""


def _holder(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / LOCK_INFO_FILE).read_text())
    except (OSError, ValueError):
        return {}


def describe_holder(run_dir: str | os.PathLike) -> str:
    """'pid 123 since 2024-… (program)' from the lock-info file, or 'an unknown process'. The message
    lands in notebook outputs, so it names no host and no path (the program's file name only)."""
    info = _holder(Path(run_dir))
    if not info:
        return "an unknown process (no lock-info.json yet)"
    program = Path(str(info.get("command") or "?").split(" ")[0]).name
    return f"pid {info.get('pid')} since {info.get('since')} ({program})"


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike, timeout: float | None = None,
             notify: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the run folder's file lock; wait for it (saying who holds it) or raise ``RunLockedError``.

    ``timeout`` None waits for ever. The holder's pid, host, start time and command go to
    ``lock-info.json`` so that a waiting process can tell its user who it is waiting for. The lock is an
    OS lock (``flock``): a holder killed with SIGKILL releases it.
    """
    from filelock import FileLock, Timeout

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    notify = notify or (lambda message: print(message, file=sys.stderr, flush=True))
    lock = FileLock(str(run_dir / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        began = time.monotonic()
        notify(f"run {run_dir.name} is locked by {describe_holder(run_dir)}; waiting"
               + (f" up to {timeout:g} s" if timeout is not None else ""))
        try:
            lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout - (time.monotonic() - began)))
        except Timeout:
            raise RunLockedError(
                f"run {run_dir.name} is still locked by {describe_holder(run_dir)} after {timeout:g} s; "
                f"wait for it to finish, or if that process is gone, retry (the OS releases its lock)"
            ) from None
    try:
        with atomic_write(run_dir / LOCK_INFO_FILE) as tmp:
            tmp.write_text(json.dumps({
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                "command": " ".join(sys.argv)[:300],
            }))
        yield
    finally:
        (run_dir / LOCK_INFO_FILE).unlink(missing_ok=True)
        lock.release()


# --------------------------------------------------------------------------------------------------
# A trained run


@dataclass
class Run:
    """A finished run: networks in eval mode, the anchors they were trained with, and their labels."""

    dir: Path
    config: RunConfig
    model: nn.Module
    image_encoder: nn.Module
    labels: list[str]  # prompt classes, in class order
    anchors: torch.Tensor  # (N, 512) text anchors of ``labels``, as used in training
    text_encoder_info: dict[str, Any]  # what text encoder was really used
    metrics: dict[str, Any] = field(default_factory=dict)
    trained_now: bool = False  # True when this call trained (or finished) it, False when reused

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def fusion(self) -> str:
        return self.config.fusion

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def device(self) -> torch.device:
        return self.anchors.device

    @classmethod
    def load(cls, run_dir: str | os.PathLike, device: str | torch.device = "cpu") -> "Run":
        """Load a finished run folder (``CorruptCheckpointError`` if its final weights fail the checksum)."""
        run_dir = Path(run_dir)
        cfg = RunConfig.from_dict(json.loads((run_dir / CONFIG_FILE).read_text())["config"])
        state = load_verified(run_dir / FINAL_WEIGHTS)
        model, image_encoder = build_networks(cfg)
        model.load_state_dict(state["model"])
        image_encoder.load_state_dict(state["image_encoder"])
        metrics = json.loads((run_dir / METRICS_FILE).read_text()) if (run_dir / METRICS_FILE).exists() else {}
        run = cls(dir=run_dir, config=cfg, model=model.eval(), image_encoder=image_encoder.eval(),
                  labels=list(state["labels"]), anchors=state["anchors"].float(),
                  text_encoder_info=dict(metrics.get("text_encoder", {})), metrics=metrics)
        return run.to(device)

    def to(self, device: str | torch.device) -> "Run":
        self.model.to(device)
        self.image_encoder.to(device)
        self.anchors = self.anchors.to(device)
        return self

    def anchor(self, label: str) -> torch.Tensor:
        """The (512,) text anchor of ``label``; labels the run was not trained on are embedded with the
        run's text encoder spec (a prompt the model never saw in training)."""
        if label in self.labels:
            return self.anchors[self.labels.index(label)]
        from csnet.prompts import get_text_encoder, text_anchors

        encoded = text_anchors(get_text_encoder(self.config.text_encoder), [label])
        return torch.as_tensor(encoded, dtype=torch.float32, device=self.device)[0]

    def prompts(self, tasks: str | Sequence[str], source: str = "text", images: Any = None,
                tile: int | str = "train") -> torch.Tensor:
        """(B, 512) prompts P_e: ``text`` = the anchors of the tasks' labels (P_t), ``image`` = the image
        encoder's prompt of ``images`` (P_v; a (B,3,H,W) tensor or a list of H×W×3 arrays).

        P_v is the L2-normalised mean of the encoder's output over tiles of ``tile``: by default
        ``"train"``, the run's training patch size (the scale the encoder learnt); ``"whole"`` encodes
        each image in one pass (the paper's test-time prompt); an int sets the side. Every test-time
        P_v (``evaluate``, ``csnet restore``, the notebooks) comes from here."""
        from csnet.degrade import label_of

        tasks = [tasks] if isinstance(tasks, str) else list(tasks)
        if source == "text":
            return torch.stack([self.anchor(label_of(task)) for task in tasks])
        if source == "image":
            if images is None:
                raise ValueError("prompts(source='image') needs images")
            from csnet.evaluate import image_prompts, prompt_tile_side

            side = prompt_tile_side(tile, self.config.patch_size)
            return image_prompts(self.image_encoder, images, tile=side, device=self.device)
        raise ValueError(f"prompt source must be 'text' or 'image', got {source!r}")

    def recognise(self, images: Any, tile: int | str = "train") -> tuple[list[str], torch.Tensor]:
        """The degradation label whose anchor is nearest each image's P_v (``prompts(source="image")``,
        tiled as there), and its confidence."""
        from csnet.prompts import recognise

        visual = self.prompts([], source="image", images=images, tile=tile)
        pred, confidence = recognise(visual, self.anchors)
        return [self.labels[int(i)] for i in pred], confidence.detach().cpu()


# --------------------------------------------------------------------------------------------------
# Get or train


def _write_config(run_dir: Path, cfg: RunConfig) -> None:
    path = run_dir / CONFIG_FILE
    full = config_hash(cfg)
    if path.exists():
        recorded = json.loads(path.read_text()).get("hash")
        if recorded != full:
            raise ValueError(f"{path} records config hash {recorded}, not {full}: a different run shares "
                             "this folder name; move it away")
        return
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps({"hash": full, "training_version": TRAINING_VERSION,
                                   "hash_scheme": HASH_SCHEME, "config": cfg.to_dict()},
                                  indent=2, sort_keys=True) + "\n")


def _load_finished(run_dir: Path, device: str | torch.device, repair: bool = False) -> Run | None:
    """The finished run in ``run_dir``, or None. With ``repair`` (under the lock), a run marked done
    whose final weights fail verification is reported, its weights set aside as ``*.corrupt`` and its
    DONE marker removed, so that it is trained again."""
    if not (run_dir / DONE_FILE).exists():
        return None
    try:
        return Run.load(run_dir, device=device)
    except (CorruptCheckpointError, FileNotFoundError) as err:
        if repair:
            warnings.warn(f"run {run_dir.name} was marked done but {err}; training it again", stacklevel=3)
            for name in (FINAL_WEIGHTS, FINAL_WEIGHTS + ".sha256"):
                if (run_dir / name).exists():
                    os.replace(run_dir / name, run_dir / (name + ".corrupt"))
            (run_dir / DONE_FILE).unlink(missing_ok=True)
        return None


def find_branch_point(cfg: RunConfig, root: str | os.PathLike | None = None) -> Path | None:
    """A verified trunk state that the wsd run ``cfg`` can branch its decay from, or None: a
    ``branch-<step>.pt`` at ``cfg``'s ``branch_step`` in another run folder of the store whose branch key
    equals ``cfg``'s and whose lr was still stable there (``csnet.train.check_branch_state``)."""
    if cfg.schedule != "wsd":
        return None
    step = branch_step(cfg.steps, cfg.decay_fraction)
    root = Path(root) if root is not None else paths.runs_dir()
    own = run_path(cfg).name
    for candidate in sorted(root.glob(f"{cfg.fusion}-*/{branch_path('.', step).name}")):
        if candidate.parent.name == own:
            continue
        try:
            check_branch_state(load_verified(candidate), cfg)
        except (CorruptCheckpointError, FileNotFoundError):
            continue
        return candidate
    return None


def get_or_train(cfg: RunConfig, progress: bool = True, timeout: float | None = None,
                 device: str | torch.device | None = None, keep_checkpoints: bool = False,
                 milestones: Sequence[int] = ()) -> Run:
    """The trained run of ``cfg``: loaded when finished, resumed when partial, trained when new.

    ``timeout``: seconds to wait for another process training the same run (None = wait). Under
    torchrun every rank calls this; rank 0 holds the lock and writes, all ranks train. The returned
    run lives on the CPU (``run.to(device)`` moves it). ``milestones``: steps whose weights training
    also keeps (``csnet.train.milestone_path``; bookkeeping, not in the run hash). A new wsd run starts
    from a sibling's branch state when the store holds one (``find_branch_point``;
    ``run.metrics["branched_from"]`` says which).
    """
    run_dir = run_path(cfg)
    done = _load_finished(run_dir, "cpu")
    if done is not None:
        return done
    info, train_device = setup(device)
    lock = run_lock(run_dir, timeout=timeout) if info.is_main else contextlib.nullcontext()
    with lock:
        need, existing = True, None
        if info.is_main:
            _write_config(run_dir, cfg)
            existing = _load_finished(run_dir, "cpu", repair=True)  # perhaps finished while we waited
            # killed after final.pt but before DONE: nothing left to train
            need = existing is None and not finished(run_dir, cfg)
        need = broadcast_object(need, info)
        if existing is not None and not info.enabled:
            return existing
        if need:
            branch = find_branch_point(cfg) if info.is_main and not list_checkpoints(run_dir) else None
            branch = broadcast_object(str(branch) if branch else None, info)
            train(cfg, run_dir, progress=progress, device=train_device, dist_info=info,
                  keep_checkpoints=keep_checkpoints, milestones=milestones, branch_from=branch)
        if info.is_main and not (run_dir / DONE_FILE).exists():
            if not keep_checkpoints:
                _prune_checkpoints(run_dir, keep=0)  # left behind if killed just after final.pt
            with atomic_write(run_dir / DONE_FILE) as tmp:
                tmp.write_text(_dt.datetime.now().astimezone().isoformat(timespec="seconds") + "\n")
        barrier(info)
    run = Run.load(run_dir)
    run.trained_now = need
    return run


# --------------------------------------------------------------------------------------------------
# Listing


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def staleness(run_dir: str | os.PathLike) -> str:
    """Why the run in ``run_dir`` is stale ('' when it is current): its stored config is unreadable by
    this code, was trained by an older training version, or no longer hashes to the folder's name."""
    run_dir = Path(run_dir)
    try:
        stored = json.loads((run_dir / CONFIG_FILE).read_text())
        cfg = RunConfig.from_dict(stored["config"])
        current = run_id(cfg)
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"config unreadable by this code ({err})"
    version = stored.get("training_version", 0)
    if version < TRAINING_VERSION:
        return f"training version {version} < current {TRAINING_VERSION}"
    if current != run_dir.name:
        return f"its config hashes to {current} now"
    return ""


LIST_COLUMNS = ["run", "fusion", "profile", "seed", "dim", "blocks", "patch", "batch", "steps", "steps_done",
                "done", "stale", "tasks", "text_encoder", "final_loss", "final_l1", "train_seconds",
                "patches_per_s", "size_mb", "path"]


def list_runs(root: str | os.PathLike | None = None):
    """One row per run folder in the store: id, fusion, config summary, steps done, metrics, size, and
    ``stale`` (why no config reaches the run any more; '' when current)."""
    import pandas as pd

    root = Path(root) if root is not None else paths.runs_dir()
    rows = []
    for folder in sorted(p for p in root.iterdir() if (p / CONFIG_FILE).exists()) if root.exists() else []:
        stale = staleness(folder)
        try:
            cfg = RunConfig.from_dict(json.loads((folder / CONFIG_FILE).read_text())["config"])
        except (ValueError, KeyError, TypeError):
            rows.append({"run": folder.name, "stale": stale, "done": (folder / DONE_FILE).exists(),
                         "size_mb": round(_size_mb(folder), 3), "path": str(folder)})
            continue
        metrics = {}
        if (folder / METRICS_FILE).exists():
            metrics = json.loads((folder / METRICS_FILE).read_text())
        done = (folder / DONE_FILE).exists()
        checkpoints = list_checkpoints(folder)
        steps_done = metrics.get("steps_done") if done else (checkpoints[0][0] if checkpoints else 0)
        rows.append({
            "run": folder.name,
            "fusion": cfg.fusion,
            "profile": cfg.profile,
            "seed": cfg.seed,
            "dim": cfg.model.get("dim"),
            "blocks": "/".join(str(b) for b in cfg.model.get("num_blocks", ())),
            "patch": cfg.patch_size,
            "batch": cfg.batch_size,
            "steps": cfg.steps,
            "steps_done": steps_done,
            "done": done,
            "stale": stale,
            "tasks": ",".join(cfg.tasks),
            "text_encoder": (metrics.get("text_encoder") or {}).get("model", cfg.text_encoder),
            "final_loss": metrics.get("final_loss", np.nan),
            "final_l1": metrics.get("final_l1", np.nan),
            "train_seconds": metrics.get("train_seconds", np.nan),
            "patches_per_s": metrics.get("patches_per_s", np.nan),
            "size_mb": round(_size_mb(folder), 3),
            "path": str(folder),
        })
    return pd.DataFrame(rows, columns=LIST_COLUMNS)


def find_run(name: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """The run folder called ``name`` in the store (or ``name`` itself when it is a run folder's path);
    ``FileNotFoundError`` naming the store otherwise."""
    root = Path(root) if root is not None else paths.runs_dir()
    for candidate in (Path(name), root / str(name)):
        if (candidate / CONFIG_FILE).exists():
            return candidate
    raise FileNotFoundError(f"no run {str(name)!r} in the store {root} (`csnet runs` lists them)")


def remove_run(cfg_or_dir: RunConfig | str | os.PathLike) -> None:
    """Delete a run folder (under its lock, so a training process is not pulled from under)."""
    run_dir = run_path(cfg_or_dir) if isinstance(cfg_or_dir, RunConfig) else Path(cfg_or_dir)
    if not run_dir.exists():
        return
    with run_lock(run_dir, timeout=0):
        for child in run_dir.iterdir():
            if child.name != LOCK_FILE:
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    shutil.rmtree(run_dir, ignore_errors=True)
