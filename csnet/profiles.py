"""Scales of work (profiles) and the configuration that defines one trained model (``RunConfig``).

A *profile* names how big everything is: the network, the patches, the batch, the number of steps, the
tasks, where the training and test data come from, and which seeds a study repeats. Five exist:

- ``smoke``: continuous integration. Seconds per model; the numbers mean nothing and say so.
- ``quick``: the default of ``make reproduce``: the whole notebook suite, its ~30 small models included,
  in under an hour on a 2-core machine (58 min measured beside a test run; notebook 05 included).
- ``cpu``: a serious CPU study: one notebook with 3 seeds within about 75 minutes on 2 cores.
- ``gpu``: notebook 05's GPU window (paper widths at half depth, 10× the cpu budget; ``scripts/gpu_budget.sh``).
- ``paper``: PromptIR's scale (C = 48, blocks 4/6/6/8, 128² patches, batch 32); a GPU is expected and the
  data are the standard sets in PromptIR's folder layout (``CSNET_DATA`` or ``data_root``).

A ``RunConfig`` is everything that defines one trained model. Its hash (``config_hash``) names the run's
folder in the store, so two notebooks asking for the same model share it. Only the fields that change
the trained weights enter the hash; bookkeeping (checkpoint interval, log interval, worker count, the
profile's name) does not.

The hash is taken over the *resolved* configuration (``resolved_config``): the ``ModelConfig`` that
``csnet.train.build_networks`` really builds (every default filled in, ``to_dict()``), the image
encoder's keyword arguments with their defaults, and the recipe with ``cosine_steps`` None replaced by
``steps``. So two configs that describe the same network trained the same way share one run whether or
not they write the defaults out (``kappa: 2.0, omega: 0.5`` written or left out).

The rule for fields added later. Every dataclass field of ``RunConfig`` (bookkeeping aside), of
``ModelConfig`` and every keyword of ``ImagePromptEncoder`` enters the hash by itself, none is listed by
hand, so a new field changes the hash of *every* config, including those that leave it at its default:
runs trained before it existed become stale (``csnet runs`` says so) instead of being silently reused
by code that may train differently. That is the intended default. When a new field's default provably
reproduces the old training exactly and old runs should stay valid, declare it with
``dataclasses.field(default=..., metadata={HASH_OMIT_AT_DEFAULT: True})``: it is then left out of the
hash while it equals its default (and that default must never change afterwards). Changing what the
payload looks like bumps ``HASH_SCHEME``; changing how the training code turns an equal config into
weights bumps ``TRAINING_VERSION``; both are inside the hashed payload.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

# Bumped when the training procedure changes in a way that changes the weights of an otherwise equal
# config, so that stale runs in a store are not silently reused.
# 2 (issue 12): paired seeds (backbone drawn before the fusion modules, which have their own
# generators), Gumbel noise on the scores' scale from its own generator, and the measured speed-ups
# (fused channel LayerNorm, folded CSB while training, fused AdamW, foreach clipping).
# 3 (issue 14): the first pass over a run's training items is in item order, so the batch at a step no
# longer depends on the run's length and shorter wsd budgets can branch off a longer run's trunk.
TRAINING_VERSION = 3

SCHEDULES = ("cosine", "wsd")
"""Learning-rate schedules after the linear warm-up: ``cosine`` to 0 at the cosine horizon (PromptIR),
or ``wsd`` (warm-up, stable, decay): constant at ``lr``, then linear to 0 over the last
``decay_fraction`` of ``steps``; the lr of a step in the stable phase does not depend on ``steps``, so runs
at different budgets share their stable prefix (``csnet.train.lr_factor``)."""

THREE_TASKS = ("denoise_15", "denoise_25", "denoise_50", "derain", "dehaze")

# The text encoder used when none is named. CLIP's weights cannot be downloaded here; wordllama ships
# real pretrained static embeddings inside its wheel, a semantic text prior that works offline. Every
# run records what was really used (``Run.text_encoder_info``).
DEFAULT_TEXT_ENCODER = "wordllama"


@dataclass(frozen=True)
class Profile:
    """One scale of work. ``model`` holds keyword arguments of ``csnet.models.ModelConfig``."""

    name: str
    description: str
    meaningful: bool  # False: the numbers only prove the code runs (smoke); label outputs so
    model: Mapping[str, Any]  # ModelConfig keyword arguments (fusion excluded: chosen per run)
    patch_size: int  # side of the square training patches, pixels
    batch_size: int  # global batch (split across ranks under torchrun)
    steps: int  # optimiser steps
    lr: float = 2e-4  # AdamW peak learning rate (PromptIR, CSNet)
    warmup_steps: int = 0  # linear warm-up from 0 to ``lr``, then ``schedule``
    cosine_steps: int | None = None  # cosine horizon; None = ``steps`` (PromptIR stops at 120 of 150)
    schedule: str = "cosine"  # after warm-up: "cosine" (PromptIR's) or "wsd" (SCHEDULES); per profile below
    decay_fraction: float = 0.2  # wsd: the lr decays linearly to 0 over this last fraction of ``steps``
    tasks: tuple[str, ...] = THREE_TASKS  # training tasks (csnet.degrade keys)
    data_source: str = "corpus"  # "corpus", "dead_leaves", "mixed" or a PromptIR-layout root folder
    test_source: str = "corpus"  # where test images come from (same choices)
    test_max_images: int | None = None  # per task; None = all
    test_max_side: int | None = None  # test images centre-cropped to at most this side; None = whole
    seeds: tuple[int, ...] = (0,)  # seeds a study repeats
    text_encoder: str = DEFAULT_TEXT_ENCODER  # csnet.prompts.get_text_encoder spec
    image_encoder: Mapping[str, Any] = field(default_factory=dict)  # ImagePromptEncoder kwargs
    checkpoint_every: int = 100  # steps between checkpoints (bookkeeping: not in the run hash)
    num_workers: int = 0  # DataLoader workers (bookkeeping)

    def label(self) -> str:
        """A short tag for figure titles and tables: says when numbers are meaningless."""
        return self.name if self.meaningful else f"{self.name} (numbers not meaningful)"


def _profiles(data_root: str | None) -> dict[str, Profile]:
    # Without the standard data, the paper profile still runs, on the embedded corpus and
    # dead-leaves images (test sets are fixed, so its tests fall back to the corpus photos).
    paper_root = data_root or os.environ.get("CSNET_DATA")
    cpu_steps = 500  # the cpu profile's steps; the gpu profile trains 10x as many
    return {
        "smoke": Profile(
            name="smoke",
            description="CI: proves the code runs in seconds per model; numbers are meaningless",
            meaningful=False,
            # ~0.1 CPU-s per step (1 thread): 2-3 s of training per model
            model=dict(dim=8, num_blocks=(1, 1, 1, 1), heads=(1, 1, 1, 1), num_refinement_blocks=1),
            image_encoder=dict(width=8),
            patch_size=32,
            batch_size=4,
            steps=20,
            warmup_steps=2,
            test_max_images=2,
            test_max_side=64,
            checkpoint_every=10,
        ),
        "quick": Profile(
            name="quick",
            description="make reproduce: the whole suite with its ~30 small models in under an hour on 2 cores",
            meaningful=True,
            # Measured (CPU seconds per step, 1 thread, process time, before any speed tuning): network
            # 0.16 + image encoder 0.02 ≈ 0.18 s → ~22 s per model; 48² patches would double it.
            model=dict(dim=8, num_blocks=(1, 1, 1, 2), heads=(1, 1, 2, 2), num_refinement_blocks=1),
            image_encoder=dict(width=16),
            # The recipe, chosen on validation by `csnet bench --recipe --profile quick` (its own 120 steps, seeds 0
            # and 1; results/bench/recipe_quick_summary.csv), mean validation PSNR over mechanisms: lr 2e-4 19.58,
            # 1e-3 20.42, 2e-3 20.72, 4e-3 21.32, 8e-3 20.94 dB; wsd 21.72 against cosine 21.32; 32²×8 21.72,
            # 16²×32 21.69, 64²×2 21.06; identity start 22.14 against projection 21.93.
            lr=4e-3,
            schedule="wsd",
            patch_size=32,
            batch_size=8,
            steps=120,
            warmup_steps=12,
            test_max_images=4,
            test_max_side=128,
            checkpoint_every=100,
        ),
        "cpu": Profile(
            name="cpu",
            description="a serious CPU study: one notebook with 3 seeds in about 75 min on 2 cores",
            meaningful=True,
            # Measured as for quick: network 0.50 + encoder 0.02 ≈ 0.52 s per step → ~4.5 min per model (the
            # recipe sweep: 0.55 CPU-s per step at 32²×18 with data synthesis, ~4.6 min per 500-step model).
            # Notebook 03 trains ~29 models at 3 seeds, so this is about as large as 75 minutes allow
            # (blocks 1/2/2/2 at 64² patches would be 1.2 s per step).
            model=dict(dim=16, num_blocks=(1, 1, 2, 2), heads=(1, 2, 4, 8), num_refinement_blocks=1),
            image_encoder=dict(width=16),
            # The recipe, chosen on the 5 validation photos by `csnet bench --recipe --profile cpu` (300 steps,
            # seeds 0 and 1, mean validation PSNR over tasks, seeds, then mechanisms; results/bench/
            # recipe_cpu_summary.csv). lr: 2e-4 20.80, 1e-3 22.68, 2e-3 22.91, 4e-3 22.58 dB (none alone
            # peaks at 1e-3, 22.59 against 22.49 at 2e-3; hard_select at 2e-3, 23.32). Schedule at 2e-3: wsd
            # 23.17 against cosine 22.91 dB (both mechanisms higher). Patch × batch at equal pixels: 32²×18
            # 23.25, 48²×8 23.17, 96²×2 22.41 dB (32² and 48² within 0.1 dB; the rule picks 32²; 300 steps
            # cost 165 against 158 CPU seconds). Selection start: see ModelConfig.selection_start.
            lr=2e-3,
            schedule="wsd",
            patch_size=32,
            batch_size=18,
            steps=cpu_steps,
            warmup_steps=50,
            test_max_images=8,
            test_max_side=256,
            seeds=(0, 1, 2),
            checkpoint_every=250,
        ),
        "gpu": Profile(
            name="gpu",
            description=(
                "notebook 05's GPU window: paper widths, budgets 10x the cpu profile's, 60 models in 10 minutes "
                "on one GPU (scripts/gpu_budget.sh); not yet run on a GPU"
            ),
            meaningful=True,
            # The paper's width, heads and FFN expansion (C = 48, 1/2/4/8, 2.66) at the cpu profile's depth and
            # its first patches (48²×8; the cpu profile trains 32²×18 since its recipe sweep), so that
            # notebook 05's 60 models (5 mechanisms x 3 seeds, trunk + decay branches, 88k steps) train on one
            # H200 within about 7 minutes. Not measured: at the paper config an H200 ran ~19 TFLOP/s of
            # training (results/gpu_check_h200, 0.4 s per 7.5-TFLOP step); this model's ~83 GFLOP step is
            # launch-bound there, so the plan assumes ~5 ms of device time per step with 15 processes
            # sharing the GPU (several runs at once fill the gaps between small kernels).
            model=dict(dim=48, num_blocks=(1, 1, 2, 2), heads=(1, 2, 4, 8), ffn_expansion_factor=2.66,
                       num_refinement_blocks=1),
            image_encoder=dict(width=32),
            patch_size=48,
            batch_size=8,
            steps=10 * cpu_steps,  # 10x the cpu profile's largest budget (its own steps)
            warmup_steps=250,
            # lr: PromptIR's 2e-4, not swept at this width (the cpu profile's sweep, at C = 16, chose 2e-3; a
            # 3× wider network is not assumed to take the same rate)
            schedule="wsd",
            test_max_images=8,
            test_max_side=256,
            seeds=(0, 1, 2),
            checkpoint_every=500,
        ),
        "paper": Profile(
            name="paper",
            description=(
                "PromptIR scale on the standard data (PromptIR layout under CSNET_DATA); a GPU expected"
            ),
            meaningful=True,
            model=dict(
                dim=48,
                num_blocks=(4, 6, 6, 8),
                heads=(1, 2, 4, 8),
                ffn_expansion_factor=2.66,
                num_refinement_blocks=4,
            ),
            image_encoder=dict(width=64, depth=2),  # ResNet-18's widths and depth (OneRestore's embedder)
            patch_size=128,
            batch_size=32,
            # PromptIR: 120 epochs of ~111.5k patches (BSD400+WED ×3 σ, Rain100L ×120, OTS) at batch 32
            # ≈ 3,485 steps per epoch; warm-up 15 epochs of a 150-epoch cosine that stops at epoch 120.
            steps=120 * 3485,
            warmup_steps=15 * 3485,
            cosine_steps=150 * 3485,
            data_source=paper_root or "mixed",
            test_source=paper_root or "corpus",
            seeds=(0,),
            checkpoint_every=2000,
            num_workers=8,
        ),
    }


PROFILE_NAMES = ("smoke", "quick", "cpu", "paper", "gpu")


def get_profile(name: str, data_root: str | None = None) -> Profile:
    """The profile called ``name``; ``data_root`` (or env ``CSNET_DATA``) sets the paper profile's data."""
    profiles = _profiles(data_root)
    if name not in profiles:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILE_NAMES)}")
    return profiles[name]


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one trained model. Build with ``run_config``; hash with ``config_hash``."""

    fusion: str  # csnet.models.FUSIONS key: where the prompt meets the features
    model: Mapping[str, Any]  # ModelConfig keyword arguments, fusion excluded
    tasks: tuple[str, ...]  # training tasks; the prompt classes are their labels, in first-seen order
    task_weights: tuple[float, ...] | None  # sampling weight per task; None = csnet.data's balance
    patch_size: int
    batch_size: int  # global batch
    steps: int
    lr: float
    warmup_steps: int
    cosine_steps: int | None  # cosine horizon; None = steps
    schedule: str = "cosine"  # lr after warm-up: "cosine" or "wsd" (SCHEDULES)
    decay_fraction: float = 0.2  # wsd: linear decay to 0 over this last fraction of steps (unused by cosine)
    weight_decay: float = 0.01  # AdamW decay (torch's default, which PromptIR keeps)
    grad_clip: float | None = 1.0  # max global gradient norm; None = no clipping
    contrastive_weight: float = 0.1  # weight of the prompt loss against L1 (unknown in the paper)
    temperature: float = 0.05  # contrastive temperature (OneRestore's value; unknown in the paper)
    text_encoder: str = DEFAULT_TEXT_ENCODER
    data_source: str = "corpus"
    seed: int = 0  # model initialisation, data order and noise all derive from it
    mask_noise: float = 0.0  # probability a training step uses another task's or random channels
    image_encoder: Mapping[str, Any] = field(default_factory=dict)  # ImagePromptEncoder kwargs
    precision: str = "auto"  # "auto" (bf16/fp16 autocast on CUDA, fp32 on CPU), "fp32", "bf16", "fp16"
    # Bookkeeping below: not part of the run hash.
    profile: str = ""  # the profile the config came from (a label)
    checkpoint_every: int = 100
    log_every: int = 1
    num_workers: int = 0
    # wsd: steps at which training also keeps a full resumable checkpoint (``branch-<step>.pt``) that a
    # shorter run of the same config branches its decay from (``csnet.store.find_branch_point``)
    keep_steps: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known - {"hash", "training_version"}
        if unknown:
            raise ValueError(f"unknown RunConfig fields {sorted(unknown)}; known: {sorted(known)}")
        values = {k: v for k, v in data.items() if k in known}
        for key in ("tasks", "task_weights", "keep_steps"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        if "model" in values:
            values["model"] = {
                k: tuple(v) if isinstance(v, list) else v for k, v in dict(values["model"]).items()
            }
        return cls(**values)


# Fields that do not change the trained weights.
BOOKKEEPING_FIELDS = frozenset({"profile", "checkpoint_every", "log_every", "num_workers", "keep_steps"})


def _plain(value: Any) -> Any:
    """JSON-ready copy: tuples → lists, mappings → dicts with string keys."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def run_config(profile: str | Profile, fusion: str = "hard_select", seed: int = 0, **overrides) -> RunConfig:
    """The config of one model at ``profile``'s scale, with ``fusion`` and ``seed``; ``overrides`` set
    any ``RunConfig`` field (``model`` and ``image_encoder`` overrides are merged into the profile's)."""
    prof = get_profile(profile) if isinstance(profile, str) else profile
    model = dict(prof.model)
    model.update(overrides.pop("model", None) or {})
    image_encoder = dict(prof.image_encoder)
    image_encoder.update(overrides.pop("image_encoder", None) or {})
    values: dict[str, Any] = dict(
        fusion=fusion,
        model=model,
        tasks=tuple(prof.tasks),
        task_weights=None,
        patch_size=prof.patch_size,
        batch_size=prof.batch_size,
        steps=prof.steps,
        lr=prof.lr,
        warmup_steps=prof.warmup_steps,
        cosine_steps=prof.cosine_steps,
        schedule=prof.schedule,
        decay_fraction=prof.decay_fraction,
        text_encoder=prof.text_encoder,
        image_encoder=image_encoder,
        data_source=prof.data_source,
        seed=seed,
        profile=prof.name,
        checkpoint_every=prof.checkpoint_every,
        num_workers=prof.num_workers,
    )
    known = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown RunConfig fields {sorted(unknown)}; known: {sorted(known)}")
    values.update(overrides)
    for key in ("tasks", "task_weights", "keep_steps"):
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    cfg = RunConfig(**values)
    validate_config(cfg)
    return cfg


def study_config(profile: str | Profile, fusion: str, seed: int = 0, *, kappa: float | None = None,
                 omega: float | None = None, tasks: tuple[str, ...] | None = None,
                 text_encoder: str | None = None, **overrides) -> RunConfig:
    """The config of the model the studies (notebooks 01–04) train for ``(profile, fusion, seed)``:
    the profile's tasks and text encoder unless named, κ and ω (``kappa``, ``omega``; None: ModelConfig's
    defaults, the notebooks' values) for every mechanism but ``none``, which has neither. ``overrides``
    are ``run_config``'s. Because runs are identified by their resolved configuration, this is the same
    run as ``run_config(profile, fusion, seed)`` whenever κ and ω are left at their defaults."""
    prof = get_profile(profile) if isinstance(profile, str) else profile
    model = dict(overrides.pop("model", None) or {})
    if fusion != "none":
        model.update({k: v for k, v in (("kappa", kappa), ("omega", omega)) if v is not None})
    return run_config(prof, fusion, seed, tasks=tuple(tasks if tasks is not None else prof.tasks),
                      text_encoder=text_encoder or prof.text_encoder,
                      **({"model": model} if model else {}), **overrides)


def restoration_is_pipeline_check(profile: str | Profile) -> bool:
    """True when a model of ``profile`` restores photos only to show the pipeline runs: the profile's
    numbers are not meaningful (smoke), or it is ``quick``, whose ~2-minute models are sized for the
    suite's comparisons, not for restoring a user's photo. Unknown profiles (a run folder whose config
    names none) count as a check too."""
    if isinstance(profile, str):
        if profile not in PROFILE_NAMES:
            return True
        profile = get_profile(profile)
    return not profile.meaningful or profile.name == "quick"


def decay_steps(steps: int, decay_fraction: float) -> int:
    """How many of ``steps`` the wsd schedule spends decaying: round(decay_fraction · steps), at least 1."""
    return max(1, int(decay_fraction * steps + 0.5))


def branch_step(steps: int, decay_fraction: float) -> int:
    """The step at which a wsd run of ``steps`` starts its decay: before it, its lr, batches and noise
    are those of every longer wsd run of the same config, so it can branch off a longer run there."""
    return steps - decay_steps(steps, decay_fraction)


def fitting_warmup(warmup_steps: int, steps: int, schedule: str, decay_fraction: float) -> int:
    """The profile's warm-up shortened to fit a run of ``steps`` (``--steps`` or a sweep's budget): at most
    ``steps``, and under ``wsd`` at most the step its decay starts (``branch_step``)."""
    limit = branch_step(steps, decay_fraction) if schedule == "wsd" else steps
    return max(0, min(warmup_steps, limit))


def validate_config(cfg: RunConfig) -> None:
    """Raise ``ValueError`` naming the field and the allowed values when ``cfg`` cannot be trained."""
    if cfg.steps < 1 or cfg.batch_size < 1 or cfg.patch_size < 8:
        raise ValueError(
            f"steps, batch_size must be >= 1 and patch_size >= 8 (got {cfg.steps}, {cfg.batch_size}, "
            f"{cfg.patch_size})"
        )
    if not 0 <= cfg.warmup_steps <= cfg.steps:
        raise ValueError(f"warmup_steps must lie in [0, steps={cfg.steps}] (got {cfg.warmup_steps})")
    if cfg.cosine_steps is not None and cfg.cosine_steps < cfg.steps:
        raise ValueError(f"cosine_steps must be >= steps={cfg.steps} (got {cfg.cosine_steps})")
    if cfg.schedule not in SCHEDULES:
        raise ValueError(f"schedule {cfg.schedule!r} is not one of {SCHEDULES}")
    if not 0.0 < cfg.decay_fraction <= 1.0:
        raise ValueError(f"decay_fraction must lie in (0, 1] (got {cfg.decay_fraction})")
    if cfg.schedule == "wsd" and cfg.cosine_steps is not None:
        raise ValueError(f"cosine_steps ({cfg.cosine_steps}) is the cosine schedule's horizon; with schedule "
                         "'wsd' set it to None (the decay is the last decay_fraction of steps)")
    if cfg.schedule == "wsd" and cfg.warmup_steps > cfg.steps - decay_steps(cfg.steps, cfg.decay_fraction):
        raise ValueError(f"warmup_steps ({cfg.warmup_steps}) runs into the decay, which starts at step "
                         f"{cfg.steps - decay_steps(cfg.steps, cfg.decay_fraction)} of {cfg.steps}")
    if not 0.0 <= cfg.mask_noise <= 1.0:
        raise ValueError(f"mask_noise is a probability in [0, 1] (got {cfg.mask_noise})")
    if cfg.precision not in ("auto", "fp32", "bf16", "fp16"):
        raise ValueError(f"precision must be auto, fp32, bf16 or fp16 (got {cfg.precision!r})")
    if not cfg.tasks:
        raise ValueError("tasks must name at least one task")
    if cfg.task_weights is not None and len(cfg.task_weights) != len(cfg.tasks):
        raise ValueError(
            f"task_weights needs one weight per task ({len(cfg.tasks)}), got {len(cfg.task_weights)}"
        )
    if cfg.checkpoint_every < 1 or cfg.log_every < 1:
        raise ValueError("checkpoint_every and log_every must be >= 1")
    bad = [s for s in cfg.keep_steps if not 1 <= s < cfg.steps]
    if bad:
        raise ValueError(f"keep_steps {bad} must lie in [1, steps={cfg.steps})")


# Version of the hashed payload's layout. 1: the fields as written; 2: the resolved configuration
# (``resolved_config``) with this version inside it. Bumping it changes every run's hash.
HASH_SCHEME = 2

# Field metadata key: a field so marked is left out of the hash while it equals its default (see the
# module docstring for when that is right).
HASH_OMIT_AT_DEFAULT = "csnet_hash_omit_at_default"


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def _omitted_at_default(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the fields of dataclass ``cls`` that opted out of the hash at their default."""
    out = dict(values)
    for f in dataclasses.fields(cls):
        if f.metadata.get(HASH_OMIT_AT_DEFAULT) and f.name in out:
            if _plain(out[f.name]) == _plain(_field_default(f)):
                del out[f.name]
    return out


def _floats_as_float(values: dict[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Integers given where the default is a float become floats (``kappa: 2`` hashes as ``2.0``)."""
    return {k: float(v) if isinstance(defaults.get(k), float) and isinstance(v, int) and not isinstance(v, bool)
            else v for k, v in values.items()}


def _defaults(cls: type) -> dict[str, Any]:
    return {f.name: _field_default(f) for f in dataclasses.fields(cls)}


def model_config(cfg: RunConfig):
    """The ``csnet.models.ModelConfig`` that ``cfg`` trains: its ``model`` settings over ModelConfig's
    defaults, with ``cfg.seed`` (unless the settings name another) and ``cfg.fusion``; exactly what
    ``csnet.train.build_networks`` builds."""
    from csnet.models import ModelConfig

    return ModelConfig(**{"seed": cfg.seed, **dict(cfg.model), "fusion": cfg.fusion})


def image_encoder_kwargs(cfg: RunConfig) -> dict[str, Any]:
    """``cfg.image_encoder`` over the defaults of ``csnet.prompts.ImagePromptEncoder``'s keywords."""
    import inspect

    from csnet.prompts import ImagePromptEncoder

    params = inspect.signature(ImagePromptEncoder.__init__).parameters
    defaults = {name: p.default for name, p in params.items()
                if name != "self" and p.default is not inspect.Parameter.empty}
    unknown = set(cfg.image_encoder) - set(params)
    if unknown:
        raise ValueError(f"unknown image_encoder settings {sorted(unknown)}; known: {sorted(defaults)}")
    return _floats_as_float({**defaults, **dict(cfg.image_encoder)}, defaults)


def resolved_config(cfg: RunConfig) -> dict[str, Any]:
    """The configuration that defines the trained weights, every default filled in, JSON-ready:
    the recipe fields of ``RunConfig`` (bookkeeping left out, ``cosine_steps`` None → ``steps``),
    ``model`` as the full ``ModelConfig.to_dict()``, ``image_encoder`` with its defaults."""
    from csnet.models import ModelConfig

    data = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in BOOKKEEPING_FIELDS}
    data = _omitted_at_default(RunConfig, _floats_as_float(data, _defaults(RunConfig)))
    model = _floats_as_float(model_config(cfg).to_dict(), _defaults(ModelConfig))
    data["model"] = _omitted_at_default(ModelConfig, model)
    data["image_encoder"] = image_encoder_kwargs(cfg)
    if data.get("cosine_steps") is None:
        data["cosine_steps"] = cfg.steps
    return _plain(data)


def hashed_fields(cfg: RunConfig) -> dict[str, Any]:
    """What the hash is taken over: ``resolved_config(cfg)`` plus the training-code version and the
    hash-scheme version."""
    data = resolved_config(cfg)
    data["training_version"] = TRAINING_VERSION
    data["hash_scheme"] = HASH_SCHEME
    return data


def config_hash(cfg: RunConfig) -> str:
    """sha256 (hex) of the canonical JSON of ``hashed_fields(cfg)``: stable across processes."""
    canonical = json.dumps(hashed_fields(cfg), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def run_id(cfg: RunConfig) -> str:
    """The run's folder name in the store: ``<fusion>-<hash[:12]>``."""
    return f"{cfg.fusion}-{config_hash(cfg)[:12]}"
