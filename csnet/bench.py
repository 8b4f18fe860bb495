"""What the networks cost to train and run: ``csnet bench``.

For each fusion mechanism at each profile's model config (``quick``, ``paper``, … from
``csnet.profiles``), ``run_bench`` measures

- ``train_patches_per_s``: patches per second of one optimiser step of the *restoration network*
  (forward, L1 loss, backward, gradient clipping at 1.0, AdamW) on a fixed batch at the profile's patch
  size and batch (the paper config on a CPU uses a smaller batch, ``paper_cpu_batch``, and says so in
  the ``batch`` column). The image prompt encoder and its contrastive loss are not in this step: they
  cost the same for every mechanism (``Trainer.train_step`` times both; ``--tuning`` measures it).
  ``train_cpu_s_per_step`` is the same step in process CPU time (all threads), which does not count
  the waits for a core that other processes cause.
- ``infer_s_per_mp``: seconds per megapixel of a batch-1 forward pass in inference mode on an
  ``infer_side``² image.
- ``train_peak_mib`` / ``infer_peak_mib``: peak memory of training (the first two steps from a fresh
  optimiser: activations, gradients and AdamW's state) / of one forward pass. On a CPU it is the peak
  resident set of the process (``VmHWM`` of ``/proc/self/status``, libraries included), each measured in
  a fresh subprocess so that nothing another measurement allocated is counted; the ``*_delta_mib``
  columns subtract the resident set just before the measured phase (libraries, weights and inputs).
  On CUDA it is ``torch.cuda.max_memory_allocated`` (and its increase over the allocated memory).
- ``train_gflops``: achieved GFLOP/s = (forward + backward FLOPs of the step) / its time, and
  ``peak_fraction``: that over a matrix-multiply peak measured in the same process (``matmul_size``²
  fp32 products; with ``--amp`` on CUDA, in the autocast dtype).

FLOP convention: 2 FLOPs per multiply-add; convolutions and matrix products only (normalisation,
activations and element-wise work are not counted), as ``torch.utils.flop_counter``. A forward
convolution costs ``2·B·C_out·(C_in/groups)·k²·H_out·W_out``; its backward costs the same again for the
input gradient and the same again for the weight gradient. ``torch.utils.flop_counter`` ignores
``groups`` in the weight gradient and so overcounts every depthwise convolution's backward by its channel
count (at the paper config its backward count is 12× this one: 3.74 TFLOP against 0.31 TFLOP for two
128² patches, whose forward is 0.15 TFLOP); ``training_flops`` passes ``conv_backward_flops``, which
does not, through ``custom_mapping``.

``tiled_memory`` measures ``csnet.evaluate.restore_image`` on a 4000×3000 photo at the paper config in a
subprocess. Its accumulators are allocated before the first tile and every tile has the same size, so
the peak is reached within the first tiles; on a CPU, where the whole photo takes hours at the paper
config, the run stops after ``max_tiles`` tiles and the table says how many of how many ran (and
``estimated_total_s`` what the whole photo would take).

``run_tuning`` (``csnet bench --tuning``) measures candidate speed-ups of the training step against the
code as it stands, interleaved in one process, at equal config; see ``TUNINGS``.

Every timing is the median over rounds in which all variants run once each in a rotated order
(``interleaved``), so that load from other processes falls on all of them alike: compare ratios within
one table, not absolute numbers across tables. Every row carries the 1-minute load average at the
start of its measurement (``check_load``); a measurement whose load shows other work (more than the
cores it uses + 0.5) is refused unless ``allow_load``, and then its rows say ``load_override``.

``csnet bench --recipe`` (the training-recipe sweep on validation) lives in ``csnet.recipe``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

BENCH_COLUMNS = (
    "config", "fusion", "device", "precision", "threads", "batch", "patch", "params",
    "train_steps", "train_s_per_step", "train_patches_per_s", "train_cpu_s_per_step", "train_gflop_per_step",
    "train_gflops",
    "matmul_peak_gflops", "peak_fraction",
    "infer_side", "infer_s_per_mp",
    "train_peak_mib", "train_peak_delta_mib", "infer_peak_mib", "infer_peak_delta_mib", "memory_kind",
    "load_average", "load_override", "torch_version",
)
TILED_COLUMNS = (
    "config", "fusion", "device", "height", "width", "tile", "overlap", "tiles_run", "tiles_total",
    "complete", "peak_mib", "peak_delta_mib", "cuda_peak_mib", "image_and_accumulators_mib",
    "s_per_tile", "estimated_total_s", "threads", "torch_version",
)
TUNING_COLUMNS = (
    "scope", "config", "fusion", "variant", "description", "device", "threads", "batch", "patch", "rounds",
    "s_per_step", "iqr_s", "patches_per_s", "ratio_to_baseline", "reference", "ratio_to_reference",
    "cpu_s_per_step", "cpu_ratio_to_reference", "compile_s", "compile_pays_within_steps",
    "max_abs_diff", "load_average", "load_override", "torch_version",
)

MIB = 1024.0**2


# --------------------------------------------------------------------------------------------------
# FLOPs with the depthwise correction


def conv_backward_flops(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation,
                        transposed, _output_padding, _groups, output_mask, out_shape=None, **kwargs) -> int:
    """FLOPs of ``aten.convolution_backward``, ``groups`` respected.

    The input gradient is the transposed convolution of the output gradient with the weights; the
    weight gradient takes exactly as many multiply-adds as the forward convolution (each product of
    the forward meets one output gradient), i.e. ``2·B·C_out·(C_in/groups)·k²·H_out·W_out``.
    ``w_shape`` is ``(C_out, C_in/groups, k…)``, so ``conv_flop_count`` on it is per-group correct;
    torch's own formula recasts the weight gradient as a convolution over the batch and loses the
    ``1/groups``."""
    from torch.utils.flop_counter import conv_flop_count

    flops = 0
    if output_mask[0]:
        flops += conv_flop_count(grad_out_shape, w_shape, x_shape, transposed=not transposed)
    if output_mask[1]:
        flops += conv_flop_count(x_shape, w_shape, grad_out_shape, transposed=transposed)
    return flops


def flop_counter(display: bool = False):
    """A ``FlopCounterMode`` whose convolution backward respects ``groups`` (``conv_backward_flops``)."""
    from torch.utils.flop_counter import FlopCounterMode

    return FlopCounterMode(display=display,
                           custom_mapping={torch.ops.aten.convolution_backward: conv_backward_flops})


def training_flops(model_kwargs: Mapping[str, Any], fusion: str, batch: int, patch: int) -> dict[str, int]:
    """Forward and backward FLOPs of one training step of the network (loss and optimiser excluded),
    counted on the ``meta`` device (nothing is computed, so the paper config takes seconds).

    Forward-only counts are ``csnet.models.summary.forward_flops``; this adds the backward."""
    from csnet.models import ModelConfig
    from csnet.models.network import CSNet

    cfg = ModelConfig(**{**dict(model_kwargs), "fusion": fusion})
    with torch.device("meta"):
        model = CSNet(cfg).train()
    image = torch.empty(batch, cfg.in_channels, patch, patch, device="meta")
    prompt = torch.empty(batch, cfg.prompt_dim, device="meta")
    with flop_counter() as counter:
        restored = model(image, prompt)
    forward = int(counter.get_total_flops())
    with flop_counter() as counter:
        restored.sum().backward()
    return {"forward": forward, "backward": int(counter.get_total_flops())}


def matmul_peak_gflops(size: int = 2048, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                       repeats: int = 5) -> float:
    """GFLOP/s of a ``size``² × ``size``² matrix product (best of ``repeats`` after one warm-up): the
    machine's practical peak that ``peak_fraction`` divides by. Best, not median: it is a ceiling."""
    device = torch.device(device)
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    best = math.inf
    for index in range(repeats + 1):
        seconds = _timed(lambda: torch.mm(a, b), device)
        if index:
            best = min(best, seconds)
    return 2.0 * size**3 / best / 1e9


# --------------------------------------------------------------------------------------------------
# Timing


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(action: Callable[[], Any], device: torch.device) -> float:
    _synchronise(device)
    start = time.perf_counter()
    action()
    _synchronise(device)
    return time.perf_counter() - start


def interleaved(actions: Mapping[str, Callable[[], Any]], rounds: int, warmup: int = 1,
                device: str | torch.device = "cpu", threads: Mapping[str, int | None] | None = None,
                cpu_times: dict[str, list[float]] | None = None) -> dict[str, list[float]]:
    """Wall-clock seconds of each action in each of ``rounds`` rounds (after ``warmup`` untimed rounds).
    Every round runs every action once, in an order rotated by one from round to round; ``threads``
    gives an action its own ``torch.set_num_threads`` (restored after it). ``cpu_times``, when given, is
    filled with each action's CPU seconds (``time.process_time``: all threads of this process), which on
    a shared machine does not count the time a single-threaded action waits to be scheduled."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    device = torch.device(device)
    names = list(actions)
    times: dict[str, list[float]] = {name: [] for name in names}
    if cpu_times is not None:
        cpu_times.update({name: [] for name in names})
    default_threads = torch.get_num_threads()
    for index in range(warmup + rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            wanted = (threads or {}).get(name)
            if wanted:
                torch.set_num_threads(wanted)
            try:
                cpu_start = time.process_time()
                seconds = _timed(actions[name], device)
                cpu_seconds = time.process_time() - cpu_start
            finally:
                torch.set_num_threads(default_threads)
            if index >= warmup:
                times[name].append(seconds)
                if cpu_times is not None:
                    cpu_times[name].append(cpu_seconds)
            _release_memory(device)
    return times


def _release_memory(device: torch.device) -> None:
    """Hand freed heap memory back to the system between timed actions (untimed). Interleaving keeps
    every variant's model alive; at the paper config glibc otherwise keeps each one's freed activations
    resident and the process grows to several times what it uses."""
    gc.collect()
    if device.type == "cpu" and sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc
            pass


def _load_average() -> float:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return math.nan


LOAD_MARGIN = 0.5  # run-queue length beyond the cores a measurement uses that counts as other work


class BusyMachineError(ValueError):
    """The load average shows other work running: timings taken now would measure it too."""


def check_load(cores_in_use: int, allow: bool = False) -> dict[str, Any]:
    """The 1-minute load average now, to mark a measurement taken from here, and whether it is over
    ``cores_in_use + LOAD_MARGIN`` (``load_override``): other work shares the CPU.

    Over the limit, raises ``BusyMachineError`` unless ``allow`` (then the rows carry
    ``load_override=True``). The average lags by about a minute, so it also counts this process's own
    work just before; ``cores_in_use`` is what that work occupies (threads, or parallel jobs).
    """
    load = _load_average()
    busy = math.isfinite(load) and load > cores_in_use + LOAD_MARGIN
    if busy and not allow:
        raise BusyMachineError(
            f"load average {load:g} > {cores_in_use} core(s) in use + {LOAD_MARGIN:g}: other work is running "
            "and the timings would measure it; wait for a quiet machine (`uptime`), or pass --allow-load "
            "to measure anyway (the rows are then marked load_override)")
    return {"load_average": load, "load_override": busy}


# --------------------------------------------------------------------------------------------------
# Configs, models and steps


@dataclass(frozen=True)
class BenchConfig:
    """One profile's network and training shape as the benchmark uses it."""

    name: str
    model: Mapping[str, Any]  # ModelConfig keyword arguments, fusion excluded
    batch: int
    patch: int
    infer_side: int


def bench_config(name: str, device: str | torch.device = "cpu", paper_cpu_batch: int = 2,
                 infer_side: int | None = None, batch: int | None = None) -> BenchConfig:
    """The profile ``name``'s model, patch and batch. The paper config on a CPU trains on
    ``paper_cpu_batch`` patches (its batch of 32 takes minutes per step there) and is timed on 128²
    inference images instead of 256²."""
    from csnet.profiles import get_profile

    profile = get_profile(name)
    on_cpu = torch.device(device).type == "cpu"
    big = name == "paper" and on_cpu
    return BenchConfig(
        name=name,
        model=dict(profile.model),
        batch=batch or (min(profile.batch_size, paper_cpu_batch) if big else profile.batch_size),
        patch=profile.patch_size,
        infer_side=infer_side or (128 if big else 256),
    )


def _inputs(batch: int, side: int, prompt_dim: int, seed: int, device: torch.device):
    generator = torch.Generator().manual_seed(seed)
    degraded = torch.rand(batch, 3, side, side, generator=generator)
    clean = torch.rand(batch, 3, side, side, generator=generator)
    prompt = F.normalize(torch.randn(batch, prompt_dim, generator=generator), dim=1)
    return degraded.to(device), clean.to(device), prompt.to(device)


def _amp_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    if not amp:
        return None
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def build(config: BenchConfig, fusion: str, device: str | torch.device = "cpu", seed: int = 0) -> nn.Module:
    from csnet.models import ModelConfig, build_model

    model = build_model(ModelConfig(**{**dict(config.model), "fusion": fusion, "seed": seed}))
    return model.to(torch.device(device))


def train_step_action(model: nn.Module, batch: int, patch: int, *, amp_dtype: torch.dtype | None = None,
                      channels_last: bool = False, optimizer: str = "default", grad_clip: float | None = 1.0,
                      forward: Callable | None = None, seed: int = 0) -> Callable[[], torch.Tensor]:
    """A closure doing one training step of ``model`` as ``Trainer.train_step`` does for the network:
    forward (autocast when ``amp_dtype``), L1 loss in fp32, backward, gradient clipping, AdamW (lr 2e-4,
    weight decay 0.01; ``optimizer`` "default" = torch's default implementation, "foreach" or "fused").
    Returns the loss. The step changes the model's weights."""
    device = next(model.parameters()).device
    degraded, clean, prompt = _inputs(batch, patch, model.config.prompt_dim, seed, device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
        degraded = degraded.contiguous(memory_format=torch.channels_last)
        clean = clean.contiguous(memory_format=torch.channels_last)
    options = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}
    if optimizer not in options:
        raise ValueError(f"optimizer {optimizer!r} is not one of {tuple(options)}")
    params = list(model.parameters())
    adamw = torch.optim.AdamW(params, lr=2e-4, weight_decay=0.01, **options[optimizer])
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    run = forward if forward is not None else model
    model.train()

    def step() -> float:
        autocast = (torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None
                    else contextlib.nullcontext())
        with autocast:
            restored = run(degraded, prompt)
        loss = F.l1_loss(restored.float(), clean)
        scaler.scale(loss).backward()
        if grad_clip is not None:
            scaler.unscale_(adamw)
            # foreach=None: torch's default (a per-tensor loop on CPU)
            torch.nn.utils.clip_grad_norm_(params, grad_clip, foreach=True if optimizer != "default" else None)
        scaler.step(adamw)
        scaler.update()
        adamw.zero_grad(set_to_none=True)  # here, not before backward: idle models hold no gradients
        return loss.detach()

    return step


def inference_action(model: nn.Module, side: int, *, amp_dtype: torch.dtype | None = None,
                     seed: int = 0) -> Callable[[], Any]:
    """A closure running one batch-1 forward pass of ``model`` in inference mode on a ``side``² image."""
    device = next(model.parameters()).device
    image, _, prompt = _inputs(1, side, model.config.prompt_dim, seed, device)
    model.eval()

    def forward() -> Any:
        autocast = (torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None
                    else contextlib.nullcontext())
        with torch.inference_mode(), autocast:
            return model(image, prompt)

    return forward


# --------------------------------------------------------------------------------------------------
# Peak memory: a fresh subprocess per measurement (CPU), or the CUDA allocator's peak


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current resident set (Linux ≥ 4.0); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int:
    hwm = _status_kib("VmHWM")
    if hwm is not None:
        return hwm * 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _rss_bytes() -> int:
    rss = _status_kib("VmRSS")
    return rss * 1024 if rss is not None else 0


def _memory_phase(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Build what ``spec`` names, then measure the peak memory of its phase (``train`` or ``infer``)."""
    torch.set_num_threads(int(spec["threads"]))
    device = torch.device(spec["device"])
    config = BenchConfig(**spec["config"])
    model = build(config, spec["fusion"], device)
    amp_dtype = _amp_dtype(device, spec["amp"])
    if spec["phase"] == "train":
        step = train_step_action(model, config.batch, config.patch, amp_dtype=amp_dtype,
                                 channels_last=device.type == "cuda")

        def action() -> None:
            # two steps from a fresh optimiser: the first creates AdamW's state, the second has it all
            step()
            step()
    elif spec["phase"] == "infer":
        action = inference_action(model, config.infer_side, amp_dtype=amp_dtype)
    else:
        raise ValueError(f"phase {spec['phase']!r} is not train or infer")
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        action()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
        return {"peak": peak, "delta": peak - before, "kind": "cuda_max_allocated"}
    reset = _reset_peak_rss()
    before = _rss_bytes()
    action()
    peak = _peak_rss_bytes()
    return {"peak": peak, "delta": peak - before, "kind": "cpu_rss_hwm" if reset else "cpu_rss_hwm_since_start"}


def _worker(spec_json: str) -> None:
    """Entry point of a measuring subprocess: runs ``spec["task"]`` and prints one JSON line."""
    spec = json.loads(spec_json)
    result = {"memory": _memory_phase, "tiled": _tiled_phase}[spec["task"]](spec)
    print("CSNET_BENCH_RESULT " + json.dumps(result), flush=True)


def _in_subprocess(spec: Mapping[str, Any], timeout: float | None) -> dict[str, Any]:
    """Run ``_worker(spec)`` in a fresh Python; its result, or ``{"error": …}``."""
    code = "import sys; from csnet.bench import _worker; _worker(sys.argv[1])"
    try:
        done = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in done.stdout.splitlines():
        if line.startswith("CSNET_BENCH_RESULT "):
            return json.loads(line[len("CSNET_BENCH_RESULT "):])
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    return {"error": f"exit {done.returncode}: " + " | ".join(tail)}


def peak_memory(config: BenchConfig, fusion: str, phase: str, device: str | torch.device = "cpu",
                amp: bool = False, threads: int | None = None, timeout: float | None = 1800) -> dict[str, Any]:
    """Peak memory of one ``phase`` ("train": a training step after one warm-up step; "infer": one
    forward pass) in a fresh subprocess: ``{"peak": bytes, "delta": bytes over the resident set (or
    allocated CUDA memory) just before the phase, "kind": …}``, or ``{"error": …}``."""
    spec = {"task": "memory", "config": dataclasses.asdict(config), "fusion": fusion, "phase": phase,
            "device": str(device), "amp": amp, "threads": threads or torch.get_num_threads()}
    spec["config"]["model"] = dict(spec["config"]["model"])
    return _in_subprocess(spec, timeout)


# --------------------------------------------------------------------------------------------------
# Tiled inference of a large photo


class _StopAfterTiles(Exception):
    pass


class _TileCounter(nn.Module):
    """Wraps the network for ``restore_image``: counts tiles and stops after ``limit`` of them."""

    def __init__(self, model: nn.Module, limit: int | None, device: torch.device):
        super().__init__()
        self.model, self.limit, self.device = model, limit, device
        self.seconds: list[float] = []

    def forward(self, image: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        if self.limit is not None and len(self.seconds) >= self.limit:
            raise _StopAfterTiles
        start = time.perf_counter()
        out = self.model(image, prompt)
        _synchronise(self.device)
        self.seconds.append(time.perf_counter() - start)
        return out


def _tiled_phase(spec: Mapping[str, Any]) -> dict[str, Any]:
    import numpy as np

    from csnet.evaluate import restore_image, tile_starts

    torch.set_num_threads(int(spec["threads"]))
    device = torch.device(spec["device"])
    config = BenchConfig(**spec["config"])
    height, width, tile, overlap = spec["height"], spec["width"], spec["tile"], spec["overlap"]
    model = build(config, spec["fusion"], device).eval()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    counter = _TileCounter(model, spec["max_tiles"], device)
    prompt = F.normalize(torch.randn(1, model.config.prompt_dim, generator=torch.Generator().manual_seed(0)), dim=1)
    tiles_total = len(tile_starts(height, tile, overlap)) * len(tile_starts(width, tile, overlap))
    gc.collect()
    reset = _reset_peak_rss()
    before = _rss_bytes()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    # the photo as csnet restore holds it: float32 H×W×3 (read_image's output)
    image = np.random.default_rng(0).random((height, width, 3), dtype=np.float32)
    amp_dtype = _amp_dtype(device, spec["amp"])
    autocast = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext()
    complete = True
    try:
        with autocast:
            restore_image(counter, image, prompt, tile=tile, overlap=overlap)
    except _StopAfterTiles:
        complete = False
    peak = _peak_rss_bytes()
    seconds = counter.seconds[1:] or counter.seconds  # the first tile carries one-off start-up costs
    s_per_tile = statistics.median(seconds) if seconds else math.nan
    return {
        "tiles_run": len(counter.seconds), "tiles_total": tiles_total, "complete": complete,
        "peak": peak, "delta": peak - before, "reset": reset,
        "cuda_peak": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
        "s_per_tile": s_per_tile,
    }


def tiled_memory(config: BenchConfig, fusion: str = "hard_select", height: int = 3000, width: int = 4000,
                 tile: int = 512, overlap: int = 32, max_tiles: int | None = 2, device: str | torch.device = "cpu",
                 amp: bool = False, threads: int | None = None, timeout: float = 1800) -> dict[str, Any]:
    """Peak memory of ``csnet.evaluate.restore_image`` on a ``width``×``height`` photo with ``tile``
    tiles, in a fresh subprocess; ``max_tiles`` None restores the whole photo. One table row."""
    threads = threads or torch.get_num_threads()
    spec = {"task": "tiled", "config": dataclasses.asdict(config), "fusion": fusion, "height": height,
            "width": width, "tile": tile, "overlap": overlap, "max_tiles": max_tiles, "device": str(device),
            "amp": amp, "threads": threads}
    spec["config"]["model"] = dict(spec["config"]["model"])
    result = _in_subprocess(spec, timeout)
    row: dict[str, Any] = {"config": config.name, "fusion": fusion, "device": str(device), "height": height,
                           "width": width, "tile": tile, "overlap": overlap, "threads": threads,
                           "torch_version": torch.__version__,
                           # float32 photo (12 B/px) + output accumulators (3 planes + weights: 16 B/px)
                           "image_and_accumulators_mib": 28 * height * width / MIB}
    if "error" in result:
        print(f"tiled inference: {result['error']}", file=sys.stderr)
        return {**row, "tiles_run": 0, "complete": False}
    return {
        **row,
        "tiles_run": result["tiles_run"], "tiles_total": result["tiles_total"], "complete": result["complete"],
        "peak_mib": result["peak"] / MIB, "peak_delta_mib": result["delta"] / MIB,
        "cuda_peak_mib": result["cuda_peak"] / MIB if result["cuda_peak"] is not None else math.nan,
        "s_per_tile": result["s_per_tile"], "estimated_total_s": result["s_per_tile"] * result["tiles_total"],
    }


# --------------------------------------------------------------------------------------------------
# The benchmark table


def _fusion_list(fusions: str | Iterable[str]) -> list[str]:
    from csnet.models import FUSIONS

    if isinstance(fusions, str):
        fusions = list(FUSIONS) if fusions == "all" else [f.strip() for f in fusions.split(",") if f.strip()]
    fusions = list(fusions)
    unknown = [f for f in fusions if f not in FUSIONS]
    if unknown:
        raise ValueError(f"unknown fusion mechanisms {unknown}; choose from {', '.join(FUSIONS)} or 'all'")
    return fusions


def run_bench(configs: Sequence[str] = ("quick", "paper"), fusions: str | Iterable[str] = "all", steps: int = 5,
              warmup: int = 1, device: str | torch.device = "cpu", amp: bool = False, paper_cpu_batch: int = 2,
              infer_side: int | None = None, infer_rounds: int = 3, memory: bool = True,
              matmul_size: int = 2048, progress: Callable[[str], None] | None = None,
              allow_load: bool = False) -> list[dict[str, Any]]:
    """One row per (config, fusion): see the module's docstring for each column. Training and
    inference times are interleaved over the fusions of a config (``steps`` timed rounds after
    ``warmup``). Each config's rows carry the load average at the start of its measurement
    (``check_load``: refused when it shows other work, unless ``allow_load``)."""
    device = torch.device(device)
    say = progress or (lambda message: None)
    fusion_names = _fusion_list(fusions)
    cores = torch.get_num_threads() if device.type == "cpu" else 1
    check_load(cores, allow_load)
    amp_dtype = _amp_dtype(device, amp)
    precision = str(amp_dtype).replace("torch.", "") if amp_dtype else "fp32"
    peak_dtype = amp_dtype if (amp_dtype is not None and device.type == "cuda") else torch.float32
    peak = matmul_peak_gflops(matmul_size, device, peak_dtype)
    say(f"matmul peak ({matmul_size}², {str(peak_dtype).replace('torch.', '')}): {peak:.1f} GFLOP/s")
    rows = []
    for name in configs:
        config = bench_config(name, device, paper_cpu_batch, infer_side)
        say(f"{name}: batch {config.batch} × {config.patch}², inference {config.infer_side}²")
        load = check_load(cores, allow_load)
        models = {fusion: build(config, fusion, device) for fusion in fusion_names}
        flops = {fusion: training_flops(config.model, fusion, config.batch, config.patch) for fusion in fusion_names}
        train = {fusion: train_step_action(models[fusion], config.batch, config.patch, amp_dtype=amp_dtype,
                                           channels_last=device.type == "cuda") for fusion in fusion_names}
        train_cpu: dict[str, list[float]] = {}
        train_times = interleaved(train, steps, warmup, device, cpu_times=train_cpu)
        infer = {fusion: inference_action(models[fusion], config.infer_side, amp_dtype=amp_dtype)
                 for fusion in fusion_names}
        infer_times = interleaved(infer, infer_rounds, 1, device)
        megapixels = config.infer_side**2 / 1e6
        for fusion in fusion_names:
            step = statistics.median(train_times[fusion])
            gflop = (flops[fusion]["forward"] + flops[fusion]["backward"]) / 1e9
            row = {
                "config": name, "fusion": fusion, "device": str(device), "precision": precision,
                "threads": torch.get_num_threads(), "batch": config.batch, "patch": config.patch,
                "params": sum(p.numel() for p in models[fusion].parameters()),
                "train_steps": steps, "train_s_per_step": step, "train_patches_per_s": config.batch / step,
                "train_cpu_s_per_step": statistics.median(train_cpu[fusion]),
                "train_gflop_per_step": gflop, "train_gflops": gflop / step, "matmul_peak_gflops": peak,
                "peak_fraction": gflop / step / peak,
                "infer_side": config.infer_side,
                "infer_s_per_mp": statistics.median(infer_times[fusion]) / megapixels,
                **load, "torch_version": torch.__version__,
            }
            if memory:
                kinds = set()
                for phase in ("train", "infer"):
                    if device.type == "cuda":
                        # the CUDA allocator's peak is per process and resettable: no subprocess needed
                        measured = _memory_phase({"config": dataclasses.asdict(config), "fusion": fusion,
                                                  "phase": phase, "device": str(device), "amp": amp,
                                                  "threads": torch.get_num_threads()})
                    else:
                        measured = peak_memory(config, fusion, phase, device, amp)
                    if "error" in measured:
                        say(f"  {fusion} {phase} memory: {measured['error']}")
                        continue
                    row[f"{phase}_peak_mib"] = measured["peak"] / MIB
                    row[f"{phase}_peak_delta_mib"] = measured["delta"] / MIB
                    kinds.add(measured["kind"])
                row["memory_kind"] = ",".join(sorted(kinds))
            say(f"  {fusion}: {row['train_patches_per_s']:.2f} patches/s, {row['infer_s_per_mp']:.2f} s/MP")
            rows.append(row)
        del models, train, infer
        gc.collect()
    return rows


# --------------------------------------------------------------------------------------------------
# Speed-ups under test (``--tuning``): the same function, computed differently


def _layer_norm_fused(self, x: torch.Tensor) -> torch.Tensor:
    """ChannelLayerNorm (with bias) as one ``F.layer_norm`` over the channels of an NHWC view: a single
    fused kernel forward and backward instead of var_mean, rsqrt and four element-wise ops."""
    y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)  # (B, H, W, C)
    return y.permute(0, 3, 1, 2)  # (B, C, H, W), channels-last strides


def _attention_sdpa(self, x: torch.Tensor) -> torch.Tensor:
    """MDTA through ``F.scaled_dot_product_attention``: channels play the tokens and pixels the features
    (transposed attention); the per-head temperature is folded into the normalised queries."""
    b, c, h, w = x.shape
    qkv = self.qkv_dwconv(self.qkv(x))  # (B, 3C, H, W)
    q, k, v = qkv.reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)  # each (B, h, C/h, HW)
    q = F.normalize(q, dim=-1) * self.temperature
    k = F.normalize(k, dim=-1)
    out = F.scaled_dot_product_attention(q, k, v, scale=1.0)  # (B, h, C/h, HW)
    return self.project_out(out.reshape(b, c, h, w))


def _folding_allowed(block: nn.Module) -> bool:
    watched = (block.channel_expansion, block.selection_probe, block.channel_contraction)
    hooked = (any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks for m in watched)
              or nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks)
    return torch.is_grad_enabled() and not hooked


def _selection_folded(self, features: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
    """The CSB with expansion, channel weighting and contraction folded into one per-sample Ĉ×Ĉ map:
    contraction(expansion(x) · m) = (W_c · diag(m) · W_e) x (+ the biases' share), the same function and
    gradients at 1/κ of the two 1×1 convolutions' cost, without the (B, κĈ, H, W) tensor F_s. Taken
    only while autograd records (training) and no hook watches the expansion, F_s (``selection_probe``)
    or the contraction: analyses, which run under no_grad or hook those modules, see every step as
    written, bit for bit."""
    if not _folding_allowed(self):
        return type(self).forward(self, features, prompt)
    weights = self.channel_weights(prompt) if self.forced_mask is None else self._forced_weights(prompt)  # (B, κĈ)
    expansion = self.channel_expansion.weight[:, :, 0, 0]  # (κĈ, Ĉ)
    contraction = self.channel_contraction.weight[:, :, 0, 0]  # (Ĉ, κĈ)
    mixing = torch.einsum("ok,bk,ki->boi", contraction, weights.to(expansion.dtype), expansion)  # (B, Ĉ, Ĉ)
    contracted = torch.einsum("boi,bihw->bohw", mixing.to(features.dtype), features)  # F̃_s (B, Ĉ, H, W)
    if self.channel_expansion.bias is not None:
        shift = torch.einsum("ok,bk,k->bo", contraction, weights.to(expansion.dtype), self.channel_expansion.bias)
        contracted = contracted + shift[:, :, None, None].to(features.dtype)
    if self.channel_contraction.bias is not None:
        contracted = contracted + self.channel_contraction.bias[None, :, None, None].to(features.dtype)
    return self.pifm(contracted, prompt)


@dataclass(frozen=True)
class Tuning:
    """How a training step is computed; the default is the code as it stands."""

    threads: int | None = None  # torch.set_num_threads for the step; None = the process's setting
    channels_last: bool = False  # model and batch in channels-last memory format
    layer_norm: str = "model"  # "model" | "fused": _layer_norm_fused
    attention: str = "model"  # "model" | "sdpa": _attention_sdpa
    selection: str = "model"  # "model" | "folded": _selection_folded
    optimizer: str = "default"  # AdamW implementation: "default" | "foreach" | "fused"
    compile: bool = False  # torch.compile(model) (default mode, inductor)


def apply_tuning(model: nn.Module, tuning: Tuning) -> nn.Module:
    """Swap in the tuned computations on this model instance (weights and function unchanged)."""
    from csnet.models.fusion import ChannelSelectionBlock
    from csnet.models.restormer import ChannelLayerNorm, MultiDconvHeadTransposedAttention

    for module in model.modules():
        if tuning.layer_norm == "fused" and isinstance(module, ChannelLayerNorm) and module.bias is not None:
            module.forward = types.MethodType(_layer_norm_fused, module)
        if tuning.attention == "sdpa" and isinstance(module, MultiDconvHeadTransposedAttention):
            module.forward = types.MethodType(_attention_sdpa, module)
        if tuning.selection == "folded" and isinstance(module, ChannelSelectionBlock):
            module.forward = types.MethodType(_selection_folded, module)
    if tuning.channels_last:
        model.to(memory_format=torch.channels_last)
    return model


# The candidates ``--tuning`` measures. "tuned" combines those that won at the quick config on 2 shared
# cores (results/bench/tuning-quick-cpu.csv): one thread, the fused layer norm, the folded CSB and
# fused AdamW. channels-last ("tuned_channels_last") was a wash once the layer norm is fused, SDPA and
# foreach AdamW did not beat the noise, and torch.compile's first compile (minutes on a cold inductor
# cache) costs more than a quick-profile run saves.
TUNINGS: dict[str, tuple[Tuning, str]] = {
    "baseline": (Tuning(), "the code as it stands (process threads, NCHW, torch defaults)"),
    "threads=1": (Tuning(threads=1), "torch.set_num_threads(1)"),
    "channels_last": (Tuning(channels_last=True), "model and batch in channels-last memory format"),
    "fused_layer_norm": (Tuning(layer_norm="fused"), "ChannelLayerNorm as F.layer_norm on an NHWC view"),
    "sdpa_attention": (Tuning(attention="sdpa"), "MDTA through F.scaled_dot_product_attention"),
    "folded_selection": (Tuning(selection="folded"), "CSB expansion·mask·contraction as one Ĉ×Ĉ map"),
    "foreach_adamw": (Tuning(optimizer="foreach"), "AdamW(foreach=True), foreach gradient clipping"),
    "fused_adamw": (Tuning(optimizer="fused"), "AdamW(fused=True), foreach gradient clipping"),
    "compile": (Tuning(compile=True), "torch.compile(model), inductor; compile_s depends on the on-disk "
                "inductor cache (cold on a fresh machine, warm after a first compile of the same graph)"),
    "tuned_channels_last": (
        Tuning(threads=1, channels_last=True, layer_norm="fused", selection="folded", optimizer="fused"),
        "threads=1, fused layer norm, folded CSB, fused AdamW, channels-last",
    ),
    "tuned": (Tuning(threads=1, layer_norm="fused", selection="folded", optimizer="fused"),
              "threads=1, fused layer norm, folded CSB, fused AdamW (NCHW)"),
}


def _tuned_step(config: BenchConfig, fusion: str, tuning: Tuning, device: torch.device,
                amp_dtype: torch.dtype | None) -> tuple[Callable[[], Any], nn.Module]:
    model = apply_tuning(build(config, fusion, device), tuning)
    forward = torch.compile(model) if tuning.compile else None
    return train_step_action(model, config.batch, config.patch, amp_dtype=amp_dtype,
                             channels_last=tuning.channels_last, optimizer=tuning.optimizer,
                             forward=forward), model


def _max_difference(reference: nn.Module, other: nn.Module, config: BenchConfig, device: torch.device) -> float:
    """Largest absolute difference of the two (equally initialised) models' outputs on one batch."""
    image, _, prompt = _inputs(2, config.patch, reference.config.prompt_dim, 7, device)
    reference.eval(), other.eval()
    with torch.enable_grad():  # the training path (folded selection is taken only while autograd records)
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
    ``csnet train`` runs) is timed as it stands and with the "tuned" changes applied (scope
    ``trainer``). The rows carry the load average at the start (``check_load``: refused when it shows
    other work, unless ``allow_load``)."""
    from csnet.models import SELECTING

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
            if name == "folded_selection" and fusion not in SELECTING:
                continue  # nothing to fold: the same computation as the reference
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
                reference_key = f"trainer:{fusion}/{reference}" if name == "tuned" else base
                rows.append(row("trainer", fusion, name, key, description, base,
                                reference_key if reference_key in medians else base))
    return rows


@contextlib.contextmanager
def _threads(count: int | None):
    saved = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def _iqr(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    quartiles = statistics.quantiles(values, n=4)
    return quartiles[2] - quartiles[0]


TRAINER_VARIANTS = {
    "baseline": "Trainer.train_step as it stands",
    "threads": "Trainer.train_step as it stands, at the base thread count",
    "tuned": "Trainer.train_step with the 'tuned' changes (proposed for csnet.train and csnet.models)",
}


def _trainer_actions(config_name: str, fusions: Sequence[str], device: torch.device, base_threads: int | None,
                     say: Callable[[str], None]) -> dict[str, tuple[Callable[[], Any], int | None]]:
    """``Trainer.train_step`` closures per fusion (``TRAINER_VARIANTS``): as it stands, as it stands at
    ``base_threads``, and with the "tuned" changes applied to the trainer instance."""
    try:
        from csnet.profiles import run_config
        from csnet.train import Trainer
    except ImportError as err:
        say(f"Trainer not timed ({err})")
        return {}
    tuned, _ = TUNINGS["tuned"]
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
            if name == "tuned":
                apply_tuning(trainer.model, dataclasses.replace(tuned, channels_last=False))
                if tuned.channels_last:
                    trainer.channels_last = True
                    trainer.pair.to(memory_format=torch.channels_last)
                if tuned.optimizer != "default":
                    trainer.optimizer = torch.optim.AdamW(trainer.pair.parameters(), lr=cfg.lr,
                                                          weight_decay=cfg.weight_decay,
                                                          **{tuned.optimizer: True})
                    trainer.scheduler = torch.optim.lr_scheduler.LambdaLR(trainer.optimizer, lambda step: 1.0)
            generator = torch.Generator().manual_seed(0)
            batch = {
                "degraded": torch.rand(cfg.batch_size, 3, cfg.patch_size, cfg.patch_size, generator=generator),
                "clean": torch.rand(cfg.batch_size, 3, cfg.patch_size, cfg.patch_size, generator=generator),
                "task_index": torch.arange(cfg.batch_size) % len(cfg.tasks),
            }
            out[f"trainer:{fusion}/{name if name != 'threads' else f'threads={base_threads}'}"] = (
                (lambda trainer=trainer, batch=batch: trainer.train_step(batch)),
                {"baseline": None, "threads": base_threads, "tuned": tuned.threads}[name],
            )
    return out


# --------------------------------------------------------------------------------------------------
# Output


def write_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], path: str | os.PathLike) -> Path:
    """Write ``rows`` (missing cells empty) as CSV, atomically; returns the path."""
    import pandas as pd

    from csnet.io import atomic_write

    table = pd.DataFrame(list(rows)).reindex(columns=list(columns))
    path = Path(path)
    with atomic_write(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    return path


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    import pandas as pd

    table = pd.DataFrame(list(rows)).reindex(columns=list(columns))
    return table.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-")


def environment() -> dict[str, Any]:
    """What the numbers depend on, for the manifest beside the CSVs."""
    return {
        "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "load_average": _load_average(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
