"""Training one all-in-one restoration model, resumable to the bit.

The procedure (PromptIR / CSNet conventions, details the paper leaves open marked in ``RunConfig``):

- AdamW at ``lr`` (2e-4), linear warm-up from 0, then (``schedule``) cosine to 0 at ``cosine_steps``
  (default: the last step), or warm-up–stable–decay (constant, then linear to 0 over the last
  ``decay_fraction`` of the steps); global gradient-norm clipping.
- Loss = L1(restored, clean) + ``contrastive_weight`` × contrastive prompt loss. The image prompt
  encoder sees the degraded patch; its output P_v is pulled towards the text anchor P_t of the patch's
  degradation label (``csnet.prompts.contrastive_loss`` at ``temperature``). The restoration network
  receives P_e = P_t of each sample's label during training (at test time it receives P_v or P_t).
- ``mask_noise``: with that probability a step replaces the prompt-driven channel selection with another
  task's channels or a random channel set (notebook 01's control).
- Mixed precision (bf16 autocast, or fp16 with a GradScaler) and channels-last only on CUDA.

Determinism and resume. The batch of step ``s`` is a pure function of ``(seed, s)`` (``TrainPatches``
items ``s·B … s·B+B-1``, item ``i`` itself deterministic given ``(seed, i)``), whatever the run's length,
and the global torch RNG (dropout) is re-seeded from ``(seed, s, rank)`` at every step inside a forked
RNG context, so the caller's RNG is untouched. A checkpoint holds model, image encoder, optimiser,
scheduler, scaler, step and RNG states; it is written atomically with a sha256 sidecar, and one whose
sidecar is missing or wrong is reported and not trusted. A run killed at any point therefore resumes
from its last valid checkpoint and ends with weights bit-identical to an uninterrupted run (CPU).

Paired seeds. At one seed every mechanism starts from the same backbone (``csnet.models.build_model``)
and the same image encoder, and sees the same batches (patches, tasks, degradation noise) in the same
order: the data depend on ``(seed, step)`` only. Random draws that only some mechanisms make come from
their own generators: ``hard_select``'s Gumbel noise (``CSNet.seed_noise``, re-seeded every step),
``random_select``'s fixed subset (seeded at construction) and ``mask_noise``'s forced channels (a
generator per step), so they never shift what the other mechanisms draw.

Under ``torchrun`` each rank takes its slice of every global batch and DistributedDataParallel averages
the gradients, so the update equals the single-process one (up to batch-norm statistics in the image
encoder, which are per rank); rank 0 alone logs and writes.

``Trainer.train_step(batch)`` is one optimiser step on one batch: what a benchmark times.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import math
import os
import random
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from csnet.distributed import DistInfo, barrier, broadcast_object, mean_over_ranks
from csnet.io import atomic_write
from csnet.profiles import SCHEDULES, RunConfig, branch_step, config_hash, decay_steps, hashed_fields, run_id

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d{8})\.pt$")
FINAL_WEIGHTS = "final.pt"
LOG_FILE = "train_log.csv"
METRICS_FILE = "metrics.json"
LOG_COLUMNS = ("step", "loss", "l1", "contrastive", "lr", "patches_per_s")
KEEP_CHECKPOINTS = 2  # the newest valid ones; older ones are deleted after each save


# --------------------------------------------------------------------------------------------------
# Schedule and data order


def lr_factor(step: int, warmup_steps: int, horizon: int, schedule: str = "cosine", decay: int = 0) -> float:
    """Multiplier of the peak lr at optimiser step ``step`` (0-based): linear warm-up over
    ``warmup_steps``, then

    - ``cosine``: cosine from 1 to 0 at ``horizon`` (PromptIR);
    - ``wsd`` (warm-up, stable, decay): 1 until ``horizon - decay``, then linear to 0 at ``horizon``
      (``horizon`` = the run's steps, ``decay`` = ``csnet.profiles.decay_steps``). A stable step's
      factor does not depend on ``horizon``: runs at different budgets share their stable prefix.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "wsd":
        if decay < 1:
            raise ValueError(f"the wsd schedule needs decay >= 1 steps, got {decay}")
        return min(1.0, max(0.0, (horizon - step) / decay))
    if schedule != "cosine":
        raise ValueError(f"schedule {schedule!r} is not one of {SCHEDULES}")
    span = max(1, horizon - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


class _LrLambda:
    """Picklable schedule for ``LambdaLR`` (its state_dict stays plain data)."""

    def __init__(self, warmup_steps: int, horizon: int, schedule: str = "cosine", decay: int = 0):
        self.warmup_steps, self.horizon, self.schedule, self.decay = warmup_steps, horizon, schedule, decay

    def __call__(self, step: int) -> float:
        return lr_factor(step, self.warmup_steps, self.horizon, self.schedule, self.decay)

    @classmethod
    def of(cls, cfg: RunConfig) -> "_LrLambda":
        """The schedule ``cfg`` asks for."""
        if cfg.schedule == "wsd":
            return cls(cfg.warmup_steps, cfg.steps, "wsd", decay_steps(cfg.steps, cfg.decay_fraction))
        return cls(cfg.warmup_steps, cfg.cosine_steps or cfg.steps)


def _mix(*parts: int) -> int:
    """A 63-bit seed from integers (stable across processes and platforms)."""
    digest = hashlib.sha256(",".join(str(int(p)) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class StepBatches:
    """Dataset indices of each step's batch: a pure function of ``(seed, step)``.

    Positions ``step*B … step*B+B-1`` of an endless stream; a rank takes its contiguous slice of
    ``B / world_size`` positions. The first pass over ``range(length)`` is in item order: every
    ``TrainPatches`` item is already an independent draw from ``(seed, i)``, and item order makes the
    batch of a step the same for every dataset length, so runs at different budgets (whose datasets
    hold ``steps × B`` items) see the same batches and can branch off one trunk. Later passes (a dataset
    shorter than the stream) are seeded random permutations. Iterating from ``start_step`` reproduces
    exactly the batches an uninterrupted run would have drawn there.
    """

    def __init__(self, length: int, batch_size: int, seed: int, start_step: int, steps: int,
                 rank: int = 0, world_size: int = 1):
        if batch_size % world_size:
            raise ValueError(f"batch_size {batch_size} must be a multiple of the world size {world_size}")
        self.length, self.batch_size, self.seed = length, batch_size, seed
        self.start_step, self.steps = start_step, steps
        self.rank, self.world_size = rank, world_size
        self._epoch, self._perm = -1, None

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch == 0:
            return torch.arange(self.length)
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(_mix(self.seed, epoch, 0x5A3B))
            self._perm = torch.randperm(self.length, generator=gen)
            self._epoch = epoch
        return self._perm

    def indices(self, step: int) -> list[int]:
        local = self.batch_size // self.world_size
        first = step * self.batch_size + self.rank * local
        out = []
        for pos in range(first, first + local):
            epoch, offset = divmod(pos, self.length)
            out.append(int(self._permutation(epoch)[offset]))
        return out

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start_step, self.steps):
            yield self.indices(step)

    def __len__(self) -> int:
        return self.steps - self.start_step


# --------------------------------------------------------------------------------------------------
# Checkpoints: atomic, checksummed, loaded with weights_only=True


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def save_verified(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` atomically, then write a ``sha256sum``-format sidecar (also atomically).

    The file is trusted only once its sidecar exists and matches, so a kill between the two writes
    leaves a file that ``load_verified`` rejects rather than half-trusts.
    """
    path = Path(path)
    with atomic_write(path) as tmp:
        torch.save(obj, tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        digest = _sha256(tmp)
    with atomic_write(_sidecar(path)) as tmp:
        tmp.write_text(f"{digest}  {path.name}\n")
    return path


class CorruptCheckpointError(ValueError):
    """A checkpoint file whose checksum is missing or wrong, or that torch cannot read."""


def load_verified(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """Load a file written by ``save_verified``; raise ``CorruptCheckpointError`` saying what is wrong."""
    path = Path(path)
    side = _sidecar(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if not side.exists():
        raise CorruptCheckpointError(f"{path}: no checksum file {side.name} (write interrupted?)")
    expected = side.read_text().split()[0] if side.read_text().strip() else ""
    actual = _sha256(path)
    if actual != expected:
        raise CorruptCheckpointError(
            f"{path}: sha256 {actual[:16]}… does not match {side.name} ({expected[:16]}…): truncated or "
            "corrupted"
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # a checksummed file torch cannot read is still not to be trusted
        raise CorruptCheckpointError(f"{path}: unreadable ({err})") from err


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / f"checkpoint-{step:08d}.pt"


def list_checkpoints(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(step, path)`` of every checkpoint file in ``run_dir``, newest first (validity unchecked)."""
    found = []
    for path in Path(run_dir).glob("checkpoint-*.pt"):
        match = CHECKPOINT_PATTERN.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)


def latest_valid_checkpoint(run_dir: str | os.PathLike, quarantine: bool = True
                            ) -> tuple[Path, dict] | None:
    """The newest checkpoint that passes verification, loaded; ``None`` when there is none.

    Each rejected file is reported with a warning and (``quarantine``) renamed ``*.corrupt`` so that it
    is neither trusted nor examined again.
    """
    for _, path in list_checkpoints(run_dir):
        try:
            return path, load_verified(path)
        except CorruptCheckpointError as err:
            warnings.warn(f"not trusting checkpoint: {err}; falling back to an earlier one", stacklevel=2)
            if quarantine:
                for bad in (path, _sidecar(path)):
                    if bad.exists():
                        os.replace(bad, bad.with_name(bad.name + ".corrupt"))
    return None


def _rng_state() -> dict[str, Any]:
    """Global RNG states as plain data and tensors (loadable with ``weights_only=True``)."""
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"name": np_name, "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
        "python": {"version": py_version, "internal": list(py_internal), "gauss": py_gauss},
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    npy = state["numpy"]
    np.random.set_state((npy["name"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["gauss"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))


# --------------------------------------------------------------------------------------------------
# The trainer


def labels_of(tasks: Sequence[str], unique: bool = True) -> list[str]:
    """Degradation labels of ``tasks``; ``unique``: the prompt classes, in first-seen order (the σ
    levels of denoising share one class)."""
    from csnet.degrade import label_of

    labels = [label_of(task) for task in tasks]
    return list(dict.fromkeys(labels)) if unique else labels


class _Pair(nn.Module):
    """Restoration network and image prompt encoder as one module, so one DDP wrapper covers both."""

    def __init__(self, model: nn.Module, image_encoder: nn.Module):
        super().__init__()
        self.model = model
        self.image_encoder = image_encoder

    def forward(self, degraded: torch.Tensor, prompt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(degraded, prompt), self.image_encoder(degraded)


def _amp_dtype(cfg: RunConfig, device: torch.device) -> torch.dtype | None:
    """Autocast dtype: None (fp32) on CPU or when asked; bf16 where the GPU supports it, else fp16."""
    if device.type != "cuda" or cfg.precision == "fp32":
        return None
    if cfg.precision == "fp16":
        return torch.float16
    if cfg.precision == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def build_networks(cfg: RunConfig) -> tuple[nn.Module, nn.Module]:
    """Restoration network and image prompt encoder, initialised from ``cfg.seed`` (caller's RNG kept)."""
    from csnet.models import ModelConfig, build_model
    from csnet.prompts import ImagePromptEncoder

    model = build_model(ModelConfig(**{"seed": cfg.seed, **dict(cfg.model), "fusion": cfg.fusion}))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_mix(cfg.seed, 0x1417))
        image_encoder = ImagePromptEncoder(**dict(cfg.image_encoder))
    return model, image_encoder


class Trainer:
    """Everything one training run holds: networks, optimiser, schedule, data, step counter."""

    def __init__(self, cfg: RunConfig, device: str | torch.device = "cpu", dist_info: DistInfo | None = None):
        from csnet.data import TrainPatches
        from csnet.prompts import get_text_encoder, text_anchors

        self.cfg = cfg
        self.device = torch.device(device)
        self.dist = dist_info or DistInfo()
        if cfg.mask_noise > 0:
            from csnet.models import SELECTING

            if cfg.fusion not in SELECTING:
                raise ValueError(f"mask_noise needs a fusion that selects channels {SELECTING}, not {cfg.fusion!r}")
        self.labels = labels_of(cfg.tasks)
        task_labels = [self.labels.index(label) for label in labels_of(cfg.tasks, unique=False)]
        self.task_to_label = torch.tensor(task_labels, dtype=torch.long)
        text_encoder = get_text_encoder(cfg.text_encoder)
        self.text_encoder_info = dict(text_encoder.info)
        anchors = text_anchors(text_encoder, self.labels)
        self.anchors = torch.as_tensor(anchors, dtype=torch.float32).to(self.device)  # (N, 512)

        self.model, self.image_encoder = build_networks(cfg)
        self.channels_last = self.device.type == "cuda"
        self.pair = _Pair(self.model, self.image_encoder).to(self.device)
        if self.channels_last:
            self.pair = self.pair.to(memory_format=torch.channels_last)
        self.net: nn.Module = self.pair
        if self.dist.enabled:
            self.net = nn.parallel.DistributedDataParallel(
                self.pair,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=_may_skip_parameters(self.pair, cfg, self.device),
            )
        # fused: one kernel for all parameters instead of a Python loop of ~10 ops per tensor (CPU and CUDA)
        self.optimizer = torch.optim.AdamW(self.pair.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                           fused=True)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, _LrLambda.of(cfg))
        self.amp_dtype = _amp_dtype(cfg, self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)

        self.dataset = TrainPatches(
            tasks=list(cfg.tasks),
            patch_size=cfg.patch_size,
            length=cfg.steps * cfg.batch_size,
            seed=cfg.seed,
            source=cfg.data_source,
            task_weights=list(cfg.task_weights) if cfg.task_weights is not None else None,
        )
        self.step = 0
        self.elapsed = 0.0  # training seconds over all sessions of this run
        self.cpu_elapsed = 0.0  # the same in process CPU time (all threads; no waits for a core)

    # -- data ------------------------------------------------------------------------------------
    def batches(self, start_step: int) -> Iterator[dict[str, Any]]:
        """This rank's batches for steps ``start_step … steps-1``, in order."""
        sampler = StepBatches(len(self.dataset), self.cfg.batch_size, self.cfg.seed, start_step,
                              self.cfg.steps, self.dist.rank, self.dist.world_size)
        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_sampler=sampler,
            num_workers=self.cfg.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )
        return iter(loader)

    # -- one step ----------------------------------------------------------------------------------
    def _forced_channels(self, step: int, prompt: torch.Tensor) -> dict | None:
        """The channel sets a ``mask_noise`` step forces (another task's, or random), else ``None``."""
        if self.cfg.mask_noise <= 0:
            return None
        gen = torch.Generator().manual_seed(_mix(self.cfg.seed, step, 0x4D41534B))
        if torch.rand((), generator=gen).item() >= self.cfg.mask_noise:
            return None
        with torch.no_grad():
            own = self.model.selected_channels(prompt)  # {site: (B, K)}
            n_labels, batch = len(self.labels), prompt.shape[0]
            if n_labels > 1 and torch.rand((), generator=gen).item() < 0.5:
                # another task's channels: shift each sample's label by 1 … N-1
                current = _nearest_label(prompt, self.anchors)
                shift = torch.randint(1, n_labels, (batch,), generator=gen).to(current.device)
                return self.model.selected_channels(self.anchors[(current + shift) % n_labels])
            forced = {}
            for site, chosen in own.items():
                total = expanded_channels(self.model, site)
                keep = chosen.shape[1]
                forced[site] = torch.stack(
                    [torch.randperm(total, generator=gen)[:keep] for _ in range(batch)]
                ).to(chosen.device)
            return forced

    def train_step(self, batch: dict[str, Any], step: int | None = None) -> dict[str, float]:
        """One optimiser step on ``batch`` (this rank's slice); returns the losses and the lr used."""
        step = self.step if step is None else step
        memory = torch.channels_last if self.channels_last else torch.contiguous_format
        degraded = batch["degraded"].to(self.device, non_blocking=True).contiguous(memory_format=memory)
        clean = batch["clean"].to(self.device, non_blocking=True).contiguous(memory_format=memory)
        targets = self.task_to_label[torch.as_tensor(batch["task_index"], dtype=torch.long)].to(self.device)
        prompt = self.anchors[targets]  # (B, 512): P_e = P_t during training
        self.model.seed_noise(_mix(self.cfg.seed, step, self.dist.rank, 0x6E015E))  # own stream per step
        forced = self._forced_channels(step, prompt)
        force = self.model.force_channels(forced) if forced is not None else contextlib.nullcontext()
        autocast = (torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype is not None
                    else contextlib.nullcontext())
        from csnet.prompts import contrastive_loss

        lr = self.optimizer.param_groups[0]["lr"]
        with force, autocast:
            restored, visual = self.net(degraded, prompt)
        l1 = F.l1_loss(restored.float(), clean.float())
        contrast = contrastive_loss(visual.float(), self.anchors, targets, self.cfg.temperature)
        loss = l1 + self.cfg.contrastive_weight * contrast
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.pair.parameters(), self.cfg.grad_clip, foreach=True)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step = step + 1
        values = mean_over_ranks(torch.stack([loss.detach(), l1.detach(), contrast.detach()]).float(), self.dist)
        return {"loss": float(values[0]), "l1": float(values[1]), "contrastive": float(values[2]), "lr": lr}

    # -- state -------------------------------------------------------------------------------------
    def _weights(self) -> dict[str, Any]:
        """What every saved state holds: format, config hash, step and both networks' weights."""
        return {
            "format": 1,
            "config_hash": config_hash(self.cfg),
            "step": self.step,
            "model": self.model.state_dict(),
            "image_encoder": self.image_encoder.state_dict(),
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            **self._weights(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "elapsed": float(self.elapsed),
            "cpu_elapsed": float(self.cpu_elapsed),
            "rng": _rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any], branch: bool = False) -> None:
        """Continue from ``state``: a checkpoint of this run, or (``branch``) a trunk's branch checkpoint
        at this run's ``branch_step``, whose schedule is replaced by this run's own (its decay)."""
        if branch:
            check_branch_state(state, self.cfg)
        elif state.get("config_hash") != config_hash(self.cfg):
            raise CorruptCheckpointError("checkpoint belongs to another config (hash mismatch)")
        self.model.load_state_dict(state["model"])
        self.image_encoder.load_state_dict(state["image_encoder"])
        self.optimizer.load_state_dict(state["optimizer"])
        scheduler = dict(state["scheduler"])
        if branch:  # LambdaLR's state holds its lambda's attributes (the trunk's horizon): keep this run's
            scheduler["lr_lambdas"] = self.scheduler.state_dict()["lr_lambdas"]
        self.scheduler.load_state_dict(scheduler)
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])
        self.step = int(state["step"])
        self.elapsed = float(state.get("elapsed", 0.0))
        self.cpu_elapsed = float(state.get("cpu_elapsed", 0.0))

    def final_state(self) -> dict[str, Any]:
        """What a finished run keeps: weights, the anchors trained against, and their labels."""
        return {
            **self._weights(),
            "anchors": self.anchors.detach().cpu(),
            "labels": list(self.labels),
        }


# --------------------------------------------------------------------------------------------------
# Budgets branched off one trunk (warm-up–stable–decay)


def branch_key(cfg: RunConfig) -> str:
    """sha256 of the run hash's payload without ``steps`` (and the horizon it resolves): equal for runs
    of one config at different budgets. Under the wsd schedule such runs share lr, batches and noise
    up to the shorter one's ``branch_step``."""
    data = hashed_fields(cfg)
    data.pop("steps"), data.pop("cosine_steps", None)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def branch_path(run_dir: str | os.PathLike, step: int) -> Path:
    """Where a trunk keeps its full training state at ``step`` (``RunConfig.keep_steps``; never pruned)."""
    return Path(run_dir) / f"branch-{step:08d}.pt"


def check_branch_state(state: dict[str, Any], cfg: RunConfig) -> None:
    """Raise ``CorruptCheckpointError`` unless ``state`` is a branch checkpoint that ``cfg`` may start
    from: a wsd sibling (same ``branch_key``) at exactly ``cfg``'s ``branch_step``, in its stable phase."""
    if cfg.schedule != "wsd":
        raise CorruptCheckpointError(f"only a wsd run branches off a trunk (schedule {cfg.schedule!r})")
    step = branch_step(cfg.steps, cfg.decay_fraction)
    if state.get("branch_key") != branch_key(cfg):
        raise CorruptCheckpointError("branch checkpoint belongs to another config (branch key mismatch)")
    if int(state.get("step", -1)) != step or not state.get("stable", False):
        raise CorruptCheckpointError(f"branch checkpoint is at step {state.get('step')} "
                                     f"(stable: {state.get('stable')}); this run decays from step {step}")


def _may_skip_parameters(pair: _Pair, cfg: RunConfig, device: torch.device) -> bool:
    """Whether some step may leave a parameter without gradient (DDP must then look for them).

    Forced channels (``mask_noise``) bypass the selection layer and a zero contrastive weight leaves
    the image encoder idle; otherwise a probe step on a copy tells.
    """
    if cfg.mask_noise > 0 or cfg.contrastive_weight == 0:
        return True
    import copy

    probe = copy.deepcopy(pair)
    side = 16
    x = torch.rand(2, 3, side, side, device=device)
    prompt = F.normalize(torch.ones(2, probe.model.config.prompt_dim, device=device), dim=1)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        restored, visual = probe(x, prompt)
        (restored.float().mean() + visual.float().mean()).backward()
    return any(p.requires_grad and p.grad is None for p in probe.parameters())


def _nearest_label(prompt: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    return (F.normalize(prompt, dim=1) @ F.normalize(anchors, dim=1).T).argmax(dim=1)


def expanded_channels(model: nn.Module, site: str) -> int:
    """κĈ: how many expanded channels a selection at ``site`` chooses from."""
    return int(model.fusion_sites[site].fusion.expanded)


# --------------------------------------------------------------------------------------------------
# The loop


def _copy_log(source: Path, target: Path) -> None:
    """A branch's log starts as its trunk's (``_truncate_log`` then keeps the rows before the branch)."""
    if source.exists():
        with atomic_write(target) as tmp:
            tmp.write_bytes(source.read_bytes())


BRANCH_FILE = "branched_from.json"


def _branch_origin(run_dir: Path, branch: Path | None, start: int) -> dict[str, Any] | None:
    """Where this run's first ``step`` steps were trained (``{"run", "step"}``), kept across resumes in
    ``branched_from.json``; None for a run trained from scratch."""
    record = run_dir / BRANCH_FILE
    if branch is not None:
        with atomic_write(record) as tmp:
            tmp.write_text(json.dumps({"run": branch.parent.name, "step": start}) + "\n")
    return json.loads(record.read_text()) if record.exists() else None


def _truncate_log(path: Path, last_step: int) -> None:
    """Keep only the log rows up to ``last_step`` (rows after a checkpoint were from the killed run)."""
    if not path.exists():
        return
    with open(path, newline="") as handle:
        rows = [row for row in csv.DictReader(handle)
                if all(row.get(k) for k in LOG_COLUMNS)  # a line cut short by the kill is dropped
                and row["step"].isdigit() and int(row["step"]) <= last_step]
    with atomic_write(path) as tmp:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=LOG_COLUMNS)
            writer.writeheader()
            writer.writerows({k: row.get(k, "") for k in LOG_COLUMNS} for row in rows)


def _clean_temporaries(run_dir: Path) -> None:
    """Remove half-written temporaries that a killed writer left behind."""
    for tmp in run_dir.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def _prune_checkpoints(run_dir: Path, keep: int) -> None:
    for _, path in list_checkpoints(run_dir)[keep:]:
        path.unlink(missing_ok=True)
        _sidecar(path).unlink(missing_ok=True)


def _summary_from_log(log_path: Path, window: int = 50) -> dict[str, float | None]:
    """Final losses (mean of the last ``window`` logged rows) and median throughput, from the CSV."""
    if not log_path.exists():
        return {}
    with open(log_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return {}
    tail = rows[-window:]

    def mean(key: str) -> float:
        return float(np.mean([float(row[key]) for row in tail]))

    return {
        "final_loss": mean("loss"),
        "final_l1": mean("l1"),
        "final_contrastive": mean("contrastive"),
        "patches_per_s": float(np.median([float(row["patches_per_s"]) for row in rows])),
    }


def finished(run_dir: str | os.PathLike, cfg: RunConfig) -> bool:
    """True when ``run_dir`` holds verified final weights of ``cfg`` and its metrics."""
    run_dir = Path(run_dir)
    path = run_dir / FINAL_WEIGHTS
    if not path.exists() or not (run_dir / METRICS_FILE).exists():
        return False
    try:
        state = load_verified(path)
    except CorruptCheckpointError as err:
        warnings.warn(f"not trusting final weights: {err}", stacklevel=2)
        return False
    return state.get("config_hash") == config_hash(cfg)


THREADS_VARIABLE = "CSNET_TORCH_THREADS"


def cpu_threads() -> int | None:
    """Intra-op threads for training on a CPU: ``CSNET_TORCH_THREADS``, default 1; ``0`` keeps torch's
    own choice (``OMP_NUM_THREADS``, else every core).

    Why 1: at this suite's CPU scales every operation is small, and on a shared 2-core machine two
    OpenMP threads wait for each other at every one of them: ``csnet bench --tuning`` measured a quick
    training step 7.6× (``none``) and 8.7× (``hard_select``) faster with one thread than with two under
    load (``results/bench/tuning-quick-cpu.csv``). To use more cores, train several models side by side
    (``csnet suite run --jobs N``), or set the variable on an idle many-core machine.
    """
    value = os.environ.get(THREADS_VARIABLE, "1").strip()
    try:
        threads = int(value)
    except ValueError:
        threads = -1
    if threads < 0:
        raise ValueError(f"{THREADS_VARIABLE} must be 0 (torch's choice) or a positive integer, got {value!r}")
    return threads or None


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``count`` intra-op threads (None: leave them), then restore the previous count."""
    saved = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def seconds_per_step(cfg: RunConfig, steps: int = 3) -> float:
    """Process CPU seconds per training step of ``cfg`` on the CPU with one torch thread, data synthesis
    included: the median of ``steps`` timed steps after one untimed step (which pays for first-call
    allocations). Trains a throw-away copy of ``cfg`` (no warm-up, nothing written); the caller's torch
    random state is left as it was. Process time, not wall time, so other work on the machine slows it
    only through shared caches and memory bandwidth (``csnet.bench.timing.check_load`` says how busy it is)."""
    import dataclasses
    import statistics

    if int(steps) < 1:
        raise ValueError(f"steps must be at least 1, got {steps!r}")
    cfg = dataclasses.replace(cfg, steps=int(steps) + 1, warmup_steps=0, cosine_steps=None, keep_steps=())
    with torch_threads(1), torch.random.fork_rng(devices=[]):
        trainer = Trainer(cfg, device="cpu")
        batches = trainer.batches(0)
        times = []
        for step in range(cfg.steps):
            began = time.process_time()
            trainer.train_step(next(batches), step)
            times.append(time.process_time() - began)
    return statistics.median(times[1:])


def milestone_path(run_dir: str | os.PathLike, step: int) -> Path:
    """Weights kept at ``step`` by ``train(..., milestones=...)`` (never pruned)."""
    return Path(run_dir) / f"milestone-{step:08d}.pt"


def train(cfg: RunConfig, run_dir: str | os.PathLike, progress: bool = True,
          device: str | torch.device | None = None, dist_info: DistInfo | None = None,
          keep_checkpoints: bool = False, milestones: Sequence[int] = (),
          branch_from: str | os.PathLike | None = None) -> dict[str, Any]:
    """Train ``cfg`` in ``run_dir``, resuming from its newest valid checkpoint; return the summary.

    ``branch_from``: a trunk's ``branch_path`` at ``cfg``'s ``branch_step`` (``check_branch_state``);
    used when ``run_dir`` holds no checkpoint yet: training starts there and runs only the decay, and
    the trunk's log rows up to that step are copied. ``cfg.keep_steps``: steps at which the full state
    is also kept as ``branch_path`` (written with the branch key and whether the lr is still stable).

    Writes ``train_log.csv``, ``checkpoint-*.pt`` (+ ``.sha256``) every ``checkpoint_every`` steps and
    at the last step, then ``metrics.json`` and ``final.pt`` (+ ``.sha256``); training checkpoints are
    deleted once ``final.pt`` exists unless ``keep_checkpoints``. ``milestones`` (bookkeeping, not in the
    run hash): steps whose weights, training seconds and CPU seconds are also kept, as
    ``milestone_path(run_dir, step)`` (a budget curve for ``csnet bench --recipe``). Interrupted anywhere, a second call
    continues where the first stopped. Under torchrun every rank calls this; rank 0 alone writes.
    """
    run_dir = Path(run_dir)
    info = dist_info or DistInfo()
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    resume: str | None = None
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        _clean_temporaries(run_dir)
        found = latest_valid_checkpoint(run_dir)
        resume = str(found[0]) if found else None
    resume = broadcast_object(resume, info)
    branch = None if resume or branch_from is None else Path(branch_from)

    threads = torch_threads(cpu_threads()) if device.type == "cpu" else contextlib.nullcontext()
    with threads, torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        trainer = Trainer(cfg, device=device, dist_info=info)
        if resume:
            trainer.load_state_dict(load_verified(resume, map_location=device))
        elif branch is not None:
            trainer.load_state_dict(load_verified(branch, map_location=device), branch=True)
        start = trainer.step
        log_path = run_dir / LOG_FILE
        if info.is_main:
            if branch is not None:
                _copy_log(branch.parent / LOG_FILE, log_path)
            _truncate_log(log_path, start)
        session = _loop(trainer, run_dir, log_path, start, progress and info.is_main, info, set(milestones))
    summary: dict[str, Any] = {}
    if info.is_main:
        summary = {**session, **_summary_from_log(log_path), "text_encoder": trainer.text_encoder_info}
        branched = _branch_origin(run_dir, branch, start)
        if branched:
            summary["branched_from"] = branched
        with atomic_write(run_dir / METRICS_FILE) as tmp:
            tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        save_verified(trainer.final_state(), run_dir / FINAL_WEIGHTS)
        if not keep_checkpoints:
            _prune_checkpoints(run_dir, keep=0)
    barrier(info)
    return summary


def _loop(trainer: Trainer, run_dir: Path, log_path: Path, start: int, progress: bool,
          info: DistInfo, milestones: set[int] = frozenset()) -> dict[str, Any]:
    from tqdm.auto import tqdm

    cfg = trainer.cfg
    bar = tqdm(total=cfg.steps, initial=start, desc=run_id(cfg), disable=not progress, leave=False,
               dynamic_ncols=True)
    log = writer = None
    if info.is_main:
        new = not log_path.exists() or log_path.stat().st_size == 0
        log = open(log_path, "a", newline="")
        writer = csv.writer(log)
        if new:
            writer.writerow(LOG_COLUMNS)
    try:
        tick, cpu_tick = time.perf_counter(), time.process_time()
        for step, batch in zip(range(start, cfg.steps), trainer.batches(start)):
            torch.manual_seed(_mix(cfg.seed, step, info.rank, 0xD80))  # dropout etc. of this step
            values = trainer.train_step(batch, step)
            now = time.perf_counter()
            trainer.elapsed += now - tick
            trainer.cpu_elapsed += time.process_time() - cpu_tick
            speed = cfg.batch_size / max(now - tick, 1e-9)
            tick = now
            done = step + 1
            if writer is not None and (done % cfg.log_every == 0 or done == cfg.steps):
                writer.writerow([done, f"{values['loss']:.6g}", f"{values['l1']:.6g}",
                                 f"{values['contrastive']:.6g}", f"{values['lr']:.6g}", f"{speed:.4g}"])
                log.flush()
            if info.is_main and (done % cfg.checkpoint_every == 0 or done == cfg.steps):
                save_verified(trainer.state_dict(), checkpoint_path(run_dir, done))
                _prune_checkpoints(run_dir, KEEP_CHECKPOINTS)
                tick = time.perf_counter()  # checkpoint time is not training time
            if info.is_main and done in cfg.keep_steps:
                stable = cfg.schedule == "wsd" and done <= branch_step(cfg.steps, cfg.decay_fraction)
                save_verified({**trainer.state_dict(), "branch_key": branch_key(cfg), "stable": stable},
                              branch_path(run_dir, done))
                tick = time.perf_counter()
            if info.is_main and done in milestones:
                save_verified({**trainer.final_state(), "elapsed": trainer.elapsed,
                               "cpu_elapsed": trainer.cpu_elapsed}, milestone_path(run_dir, done))
                tick = time.perf_counter()
            cpu_tick = time.process_time()
            bar.update(1)
            bar.set_postfix(loss=f"{values['loss']:.4f}", refresh=False)
    finally:
        bar.close()
        if log is not None:
            log.close()
    return {
        "run": run_id(cfg),
        "config_hash": config_hash(cfg),
        "steps_done": trainer.step,
        "resumed_from_step": start,
        "train_seconds": trainer.elapsed,
        "seconds_per_step": trainer.elapsed / max(trainer.step, 1),
        "train_cpu_seconds": trainer.cpu_elapsed,
        "device": str(trainer.device),
        "precision": str(trainer.amp_dtype).replace("torch.", "") if trainer.amp_dtype else "fp32",
        "channels_last": trainer.channels_last,
        "world_size": info.world_size,
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
        "image_encoder_parameters": sum(p.numel() for p in trainer.image_encoder.parameters()),
        "labels": list(trainer.labels),
    }


if __name__ == "__main__":  # ``torchrun -m csnet.train …`` = ``csnet train …``
    from csnet.cli import main

    sys.exit(main(["train", *sys.argv[1:]]))
