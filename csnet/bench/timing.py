"""Timing for ``csnet bench``: interleaved rounds, the matrix-multiply peak, and the load check.

Every timing is the median over rounds in which all variants run once each in a rotated order
(``interleaved``), so that load from other processes falls on all of them alike: compare ratios within
one table, not absolute numbers across tables. Every row carries the 1-minute load average at the start
of its measurement (``check_load``); a measurement whose load shows other work (more than the cores it
uses + ``LOAD_MARGIN``) is refused unless ``allow_load``, and then its rows say ``load_override``.
"""
from __future__ import annotations

import contextlib
import gc
import math
import os
import statistics
import sys
import time
from typing import Any, Callable, Mapping, Sequence

import torch


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


# --------------------------------------------------------------------------------------------------
# Is the machine quiet?


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
