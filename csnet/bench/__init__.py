"""What the networks cost to train and run: ``csnet bench``.

One module per job; this package's names are the public interface (``from csnet.bench import …``,
``csnet.bench.run_bench``):

- ``csnet.bench.table``: ``run_bench``, the benchmark table (training throughput, inference time per
  megapixel, peak memory, achieved GFLOP/s against a matrix-multiply peak), one row per (config, fusion).
- ``csnet.bench.tuning``: ``run_tuning`` (``csnet bench --tuning``), what still varies in how a training
  step runs (thread count, channels-last, ``torch.compile``) against the code as it stands.
- ``csnet.bench.flops``: FLOP counting with the depthwise correction (``training_flops``).
- ``csnet.bench.timing``: interleaved rounds (``interleaved``), the matrix-multiply peak and the load
  check (``check_load``, ``BusyMachineError``).
- ``csnet.bench.steps``: each profile's network and batch shape (``bench_config``) and the timed
  closures (``train_step_action``, ``inference_action``).
- ``csnet.bench.memory`` / ``csnet.bench.tiled``: peak memory in fresh subprocesses
  (``peak_memory``, entry point ``csnet.bench.worker``) and of tiled inference on a large photo
  (``tiled_memory``).
- ``csnet.bench.output``: CSV and text tables, the environment for the manifest.

Every timing is a median of interleaved rounds: compare ratios within one table, not absolute numbers
across tables. ``csnet bench --recipe`` (the training-recipe sweep on validation) lives in
``csnet.recipe``.
"""
from __future__ import annotations

from csnet.bench.flops import conv_backward_flops, flop_counter, training_flops
from csnet.bench.memory import MIB, peak_memory
from csnet.bench.output import environment, format_table, write_csv
from csnet.bench.steps import BenchConfig, bench_config, build, inference_action, train_step_action
from csnet.bench.table import BENCH_COLUMNS, _fusion_list, run_bench
from csnet.bench.tiled import TILED_COLUMNS, tiled_memory
from csnet.bench.timing import LOAD_MARGIN, BusyMachineError, check_load, interleaved, matmul_peak_gflops
from csnet.bench.tuning import TRAINER_VARIANTS, TUNING_COLUMNS, TUNINGS, Tuning, run_tuning

__all__ = [
    "BENCH_COLUMNS", "LOAD_MARGIN", "MIB", "TILED_COLUMNS", "TRAINER_VARIANTS", "TUNINGS", "TUNING_COLUMNS",
    "BenchConfig", "BusyMachineError", "Tuning", "bench_config", "build", "check_load", "conv_backward_flops",
    "environment", "flop_counter", "format_table", "inference_action", "interleaved", "matmul_peak_gflops",
    "peak_memory", "run_bench", "run_tuning", "tiled_memory", "train_step_action", "training_flops",
    "write_csv",
]
