"""Entry point of ``csnet bench``'s measuring subprocesses (``csnet.bench.memory._in_subprocess``)."""
from __future__ import annotations

import json

from csnet.bench.memory import _memory_phase
from csnet.bench.tiled import _tiled_phase


def _worker(spec_json: str) -> None:
    """Entry point of a measuring subprocess: runs ``spec["task"]`` and prints one JSON line."""
    spec = json.loads(spec_json)
    result = {"memory": _memory_phase, "tiled": _tiled_phase}[spec["task"]](spec)
    print("CSNET_BENCH_RESULT " + json.dumps(result), flush=True)
