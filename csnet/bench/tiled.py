"""Peak memory of tiled inference on a large photo (``csnet bench``'s ``tiled-*.csv``).

``tiled_memory`` measures ``csnet.evaluate.restore_image`` on a 4000×3000 photo at the paper config in a
subprocess. Its accumulators are allocated before the first tile and every tile has the same size, so
the peak is reached within the first tiles; on a CPU, where the whole photo takes hours at the paper
config, the run stops after ``max_tiles`` tiles and the table says how many of how many ran (and
``estimated_total_s`` what the whole photo would take).
"""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import math
import statistics
import sys
import time
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from csnet.bench.memory import MIB, _in_subprocess, _peak_rss_bytes, _reset_peak_rss, _rss_bytes
from csnet.bench.steps import BenchConfig, _amp_dtype, build
from csnet.bench.timing import _synchronise


TILED_COLUMNS = (
    "config", "fusion", "device", "height", "width", "tile", "overlap", "tiles_run", "tiles_total",
    "complete", "peak_mib", "peak_delta_mib", "cuda_peak_mib", "image_and_accumulators_mib",
    "s_per_tile", "estimated_total_s", "threads", "torch_version",
)


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
