"""Peak memory of a training step or an inference pass (``csnet bench``'s ``*_peak_mib`` columns).

On a CPU it is the peak resident set of the process (``VmHWM`` of ``/proc/self/status``, libraries
included), each measured in a fresh subprocess (``in_subprocess``, entry point ``csnet.bench.worker``) so
that nothing another measurement allocated is counted; the ``*_delta_mib`` columns subtract the resident
set just before the measured phase (libraries, weights and inputs). On CUDA it is
``torch.cuda.max_memory_allocated`` (and its increase over the allocated memory).
"""
from __future__ import annotations

import dataclasses
import gc
import json
import subprocess
import sys
from typing import Any, Mapping

import torch

from csnet.bench.steps import BenchConfig, _amp_dtype, build, inference_action, train_step_action


MIB = 1024.0**2


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


def _in_subprocess(spec: Mapping[str, Any], timeout: float | None) -> dict[str, Any]:
    """Run ``_worker(spec)`` in a fresh Python; its result, or ``{"error": …}``."""
    code = "import sys; from csnet.bench.worker import _worker; _worker(sys.argv[1])"
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
