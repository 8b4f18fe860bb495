"""Checks every suite notebook's test shares: committed without outputs, first code cell the tagged
``parameters`` cell (imported by the tests/test_notebookNN.py modules; pytest puts tests/ on sys.path)."""
from __future__ import annotations

from pathlib import Path

import nbformat


def committed_clean_code_cells(notebook: Path) -> list:
    """The notebook's code cells, after asserting the first is tagged ``parameters`` and none has
    outputs or an execution count (notebooks are committed stripped: ``make strip``)."""
    nb = nbformat.read(notebook, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    for cell in code:
        assert cell.get("outputs", []) == [] and cell.get("execution_count") is None
    return code


def parameter_lines(cell) -> list[str]:
    """The declaration lines of a parameters cell (no blank lines, no ``from typing`` import)."""
    return [line for line in cell.source.splitlines() if line.strip() and not line.startswith("from typing")]


def table_copies(folder: Path, name: str) -> tuple[str, ...]:
    """The files a notebook's table ``name`` should have: the CSV, plus LaTeX and Markdown unless it is
    longer than a paper table (analysis.tables.LONG_TABLE_ROWS rows: data, CSV only)."""
    import pandas as pd

    from analysis.tables import LONG_TABLE_ROWS

    csv = folder / f"{name}.csv"
    long = csv.is_file() and len(pd.read_csv(csv)) > LONG_TABLE_ROWS
    return ("csv",) if long else ("csv", "tex", "md")
