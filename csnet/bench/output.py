"""``csnet bench``'s tables as CSV and text, and the environment the numbers depend on."""
from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from csnet.bench.timing import _load_average


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
