"""``csnet bench --tuning``: what still varies in how a training step runs, measured against the code
as it stands (``run_tuning``).

The thread count, channels-last memory format and ``torch.compile`` are timed interleaved in one
process at equal config (``TUNINGS``), on the network's step and on ``Trainer.train_step``. The
code-level speed-ups this mode measured before (fused channel LayerNorm, folded selection block, fused
AdamW, and "tuned", their combination; ``results/bench/tuning-quick-cpu.csv`` is that measurement) are
applied in ``csnet.models`` and ``csnet.train`` (``docs/proposed/README.md``), so the baseline has them.
"""
from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import nn

from csnet.bench.steps import BenchConfig, _amp_dtype, _inputs, bench_config, build, train_step_action
from csnet.bench.timing import _iqr, _threads, _timed, check_load, interleaved


TUNING_COLUMNS = (
    "scope", "config", "fusion", "variant", "description", "device", "threads", "batch", "patch", "rounds",
    "s_per_step", "iqr_s", "patches_per_s", "ratio_to_baseline", "reference", "ratio_to_reference",
    "cpu_s_per_step", "cpu_ratio_to_reference", "compile_s", "compile_pays_within_steps",
    "max_abs_diff", "load_average", "load_override", "torch_version",
)


@dataclass(frozen=True)
class Tuning:
    """How a training step is run; the default is the code as it stands. The code-level speed-ups that
    ``--tuning`` measured before (fused channel LayerNorm, folded selection block, fused AdamW) are in
    ``csnet.models`` and ``csnet.train`` now (``docs/proposed/README.md``), so every variant has them."""

    threads: int | None = None  # torch.set_num_threads for the step; None = the process's setting
    channels_last: bool = False  # model and batch in channels-last memory format
    compile: bool = False  # torch.compile(model) (default mode, inductor)


# The candidates ``--tuning`` measures against the code as it stands. The earlier candidates fused
# LayerNorm, folded selection and fused AdamW are applied (their measurement is
# results/bench/tuning-quick-cpu.csv); SDPA attention and foreach AdamW did not beat the noise there and
# were dropped. Channels-last and torch.compile are not applied: channels-last was a wash once the layer
# norm was fused, and torch.compile's first compile (minutes on a cold inductor cache) costs more than a
# quick-profile run saves; they stay measurable here.
TUNINGS: dict[str, tuple[Tuning, str]] = {
    "baseline": (Tuning(), "the code as it stands (process threads, NCHW)"),
    "threads=1": (Tuning(threads=1), "torch.set_num_threads(1)"),
    "channels_last": (Tuning(channels_last=True), "model and batch in channels-last memory format"),
    "compile": (Tuning(compile=True), "torch.compile(model), inductor; compile_s depends on the on-disk "
                "inductor cache (cold on a fresh machine, warm after a first compile of the same graph)"),
}


def _tuned_step(config: BenchConfig, fusion: str, tuning: Tuning, device: torch.device,
                amp_dtype: torch.dtype | None) -> tuple[Callable[[], Any], nn.Module]:
    model = build(config, fusion, device)
    forward = torch.compile(model) if tuning.compile else None
    return train_step_action(model, config.batch, config.patch, amp_dtype=amp_dtype,
                             channels_last=tuning.channels_last, forward=forward), model


def _max_difference(reference: nn.Module, other: nn.Module, config: BenchConfig, device: torch.device) -> float:
    """Largest absolute difference of the two (equally initialised) models' outputs on one batch."""
    image, _, prompt = _inputs(2, config.patch, reference.config.prompt_dim, 7, device)
    reference.eval(), other.eval()
    with torch.enable_grad():  # the training path (the selection block folds only while autograd records)
        diff = (reference(image, prompt) - other(image.contiguous(memory_format=torch.channels_last)
                                                 if _is_channels_last(other) else image, prompt)).abs().max()
    reference.train(), other.train()
    return float(diff.detach())


def _is_channels_last(model: nn.Module) -> bool:
    weight = next((m.weight for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return weight is not None and weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()


def run_tuning(config_name: str = "quick", fusions: Sequence[str] = ("none", "hard_select"),
               variants: Sequence[str] | None = None, rounds: int = 7, device: str | torch.device = "cpu",
               amp: bool = False, base_threads: int | None = 1, trainer: bool = True,
               progress: Callable[[str], None] | None = None, allow_load: bool = False) -> list[dict[str, Any]]:
    """Each variant of ``TUNINGS`` per fusion, timed interleaved in this process (one rotated round =
    one step of every variant of every fusion).

    ``baseline`` is the code as it stands (the process's thread count). The thread count dominates
    everything else on a shared CPU, so every single-change variant runs at ``base_threads`` and is
    compared (``ratio_to_reference``) with ``threads=<base_threads>``, the baseline at that thread
    count; ``ratio_to_baseline`` compares with the code as it stands. Times are wall-clock medians;
    ``cpu_s_per_step`` / ``cpu_ratio_to_reference`` are the same in process CPU time, which for
    single-threaded variants leaves out the waits for a core that other processes cause and so
    separates code changes of 10–30% from the load's noise. ``compile_s`` is the first two
    steps' time less two steady steps (graph capture and code generation, forward and backward);
    ``compile_pays_within_steps`` is how many steps the faster steps take to earn it back.
    ``max_abs_diff`` compares the variant's output with the baseline's (same weights) on one batch.
    With ``trainer``, ``Trainer.train_step`` (network, image prompt encoder and contrastive loss: what
    ``csnet train`` runs) is timed as it stands and at ``base_threads`` (scope ``trainer``). The rows
    carry the load average at the start (``check_load``: refused when it shows other work, unless
    ``allow_load``)."""
    device = torch.device(device)
    say = progress or (lambda message: None)
    config = bench_config(config_name, device)
    if device.type != "cpu":
        base_threads = None
    check_load(torch.get_num_threads() if device.type == "cpu" else 1, allow_load)  # before any work
    reference = f"threads={base_threads}" if base_threads else "baseline"
    names = list(variants or TUNINGS)
    for required in ("baseline", reference):
        if required not in names:
            names.insert(0 if required == "baseline" else 1, required)
    tunings = dict(TUNINGS)
    if reference not in tunings:
        tunings[reference] = (Tuning(threads=base_threads), f"torch.set_num_threads({base_threads})")
    unknown = [name for name in names if name not in tunings]
    if unknown:
        raise ValueError(f"unknown tuning variants {unknown}; choose from {', '.join(TUNINGS)}")
    amp_dtype = _amp_dtype(device, amp)
    actions: dict[str, Callable[[], Any]] = {}
    threads: dict[str, int | None] = {}
    compile_s: dict[str, float] = {}
    differences: dict[str, float] = {}
    keys = []
    for fusion in fusions:
        reference_model = build(config, fusion, device)
        for name in names:
            tuning, _ = tunings[name]
            if name != "baseline" and tuning.threads is None:
                tuning = dataclasses.replace(tuning, threads=base_threads)
            key = f"{fusion}/{name}"
            try:
                action, model = _tuned_step(config, fusion, tuning, device, amp_dtype)
                differences[key] = _max_difference(reference_model, model, config, device)
                if tuning.compile:
                    say(f"compiling {key} …")
                    with _threads(tuning.threads):
                        compile_s[key] = _timed(action, device) + _timed(action, device)
            except Exception as err:  # e.g. torch.compile without a working C++ toolchain
                say(f"{key}: not measured ({type(err).__name__}: {str(err).splitlines()[0][:160]})")
                continue
            actions[key], threads[key] = action, tuning.threads
            keys.append((fusion, name, key))
    if trainer:
        trainer_actions = _trainer_actions(config_name, fusions, device, base_threads, say)
        for key, (action, thread_count) in trainer_actions.items():
            actions[key], threads[key] = action, thread_count
    say(f"timing {len(actions)} variants × {rounds} rounds (interleaved) …")
    cores = max([count or torch.get_num_threads() for count in threads.values()], default=1)
    load = check_load(cores if device.type == "cpu" else 1, allow_load)
    cpu_times: dict[str, list[float]] = {}
    times = interleaved(actions, rounds, 1, device, threads, cpu_times)
    medians = {key: statistics.median(values) for key, values in times.items()}
    cpu_medians = {key: statistics.median(values) for key, values in cpu_times.items()}
    rows = []

    def row(scope: str, fusion: str, name: str, key: str, description: str, baseline_key: str,
            reference_key: str) -> dict[str, Any]:
        step = medians[key]
        out = {"scope": scope, "config": config_name, "fusion": fusion, "variant": name,
               "description": description, "device": str(device),
               "threads": threads.get(key) or torch.get_num_threads(),
               "batch": config.batch, "patch": config.patch, "rounds": rounds, "s_per_step": step,
               "iqr_s": _iqr(times[key]), "patches_per_s": config.batch / step,
               "ratio_to_baseline": step / medians[baseline_key],
               "ratio_to_reference": step / medians[reference_key], "reference": reference_key.split("/")[-1],
               "cpu_s_per_step": cpu_medians[key],
               "cpu_ratio_to_reference": cpu_medians[key] / cpu_medians[reference_key],
               "max_abs_diff": differences.get(key, math.nan), **load,
               "torch_version": torch.__version__}
        if key in compile_s:
            gain = medians[reference_key] - step
            out["compile_s"] = max(0.0, compile_s[key] - 2 * step)
            out["compile_pays_within_steps"] = out["compile_s"] / gain if gain > 0 else math.inf
        return out

    for fusion, name, key in keys:
        rows.append(row("network", fusion, name, key, tunings[name][1], f"{fusion}/baseline",
                        f"{fusion}/{reference}" if name != "baseline" else f"{fusion}/baseline"))
    for fusion in fusions:
        base = f"trainer:{fusion}/baseline"
        for name, description in TRAINER_VARIANTS.items():
            name = reference if name == "threads" else name
            key = f"trainer:{fusion}/{name}"
            if key in medians and base in medians:
                rows.append(row("trainer", fusion, name, key, description, base, base))
    return rows


TRAINER_VARIANTS = {
    "baseline": "Trainer.train_step as it stands",
    "threads": "Trainer.train_step as it stands, at the base thread count",
}


def _trainer_actions(config_name: str, fusions: Sequence[str], device: torch.device, base_threads: int | None,
                     say: Callable[[str], None]) -> dict[str, tuple[Callable[[], Any], int | None]]:
    """``Trainer.train_step`` closures per fusion (``TRAINER_VARIANTS``): as it stands (the process's
    threads) and at ``base_threads``."""
    try:
        from csnet.profiles import run_config
        from csnet.train import Trainer
    except ImportError as err:
        say(f"Trainer not timed ({err})")
        return {}
    out = {}
    for fusion in fusions:
        for name in TRAINER_VARIANTS:
            if name == "threads" and not base_threads:
                continue
            try:
                cfg = run_config(config_name, fusion=fusion, steps=10_000, warmup_steps=0)
                with torch.random.fork_rng(devices=[]):
                    trainer = Trainer(cfg, device=device)
            except Exception as err:  # missing text encoder, data …: the network rows still stand
                say(f"Trainer not timed ({type(err).__name__}: {str(err).splitlines()[0][:160]})")
                return {}
            generator = torch.Generator().manual_seed(0)
            batch = {
                "degraded": torch.rand(cfg.batch_size, 3, cfg.patch_size, cfg.patch_size, generator=generator),
                "clean": torch.rand(cfg.batch_size, 3, cfg.patch_size, cfg.patch_size, generator=generator),
                "task_index": torch.arange(cfg.batch_size) % len(cfg.tasks),
            }
            out[f"trainer:{fusion}/{name if name != 'threads' else f'threads={base_threads}'}"] = (
                (lambda trainer=trainer, batch=batch: trainer.train_step(batch)),
                {"baseline": None, "threads": base_threads}[name],
            )
    return out
