"""The benchmark table of ``csnet bench``: ``run_bench``, one row per (config, fusion).

For each fusion mechanism at each profile's model config (``quick``, ``paper``, … from
``csnet.profiles``), ``run_bench`` measures

- ``train_patches_per_s``: patches per second of one optimiser step of the *restoration network*
  (forward, L1 loss, backward, gradient clipping at 1.0, fused AdamW) on a fixed batch at the profile's
  patch size and batch (the paper config on a CPU uses a smaller batch, ``paper_cpu_batch``, and says
  so in the ``batch`` column). The image prompt encoder and its contrastive loss are not in this step:
  they cost the same for every mechanism (``Trainer.train_step`` times both; ``--tuning`` measures it).
  ``train_cpu_s_per_step`` is the same step in process CPU time (all threads), which does not count
  the waits for a core that other processes cause.
- ``infer_s_per_mp``: seconds per megapixel of a batch-1 forward pass in inference mode on an
  ``infer_side``² image.
- ``train_peak_mib`` / ``infer_peak_mib``: peak memory of training (the first two steps from a fresh
  optimiser: activations, gradients and AdamW's state) / of one forward pass (``csnet.bench.memory``).
- ``train_gflops``: achieved GFLOP/s = (forward + backward FLOPs of the step, ``csnet.bench.flops``) /
  its time, and ``peak_fraction``: that over a matrix-multiply peak measured in the same process
  (``matmul_size``² fp32 products; with ``--amp`` on CUDA, in the autocast dtype).
"""
from __future__ import annotations

import dataclasses
import gc
import statistics
from typing import Any, Callable, Iterable, Sequence

import torch

from csnet.bench.flops import training_flops
from csnet.bench.memory import MIB, _memory_phase, peak_memory
from csnet.bench.steps import _amp_dtype, bench_config, build, inference_action, train_step_action
from csnet.bench.timing import check_load, interleaved, matmul_peak_gflops


BENCH_COLUMNS = (
    "config", "fusion", "device", "precision", "threads", "batch", "patch", "params",
    "train_steps", "train_s_per_step", "train_patches_per_s", "train_cpu_s_per_step", "train_gflop_per_step",
    "train_gflops",
    "matmul_peak_gflops", "peak_fraction",
    "infer_side", "infer_s_per_mp",
    "train_peak_mib", "train_peak_delta_mib", "infer_peak_mib", "infer_peak_delta_mib", "memory_kind",
    "load_average", "load_override", "torch_version",
)


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
