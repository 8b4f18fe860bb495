"""notebooks/00_data_tour.ipynb runs headless through papermill and writes its figures and tables."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from notebook_checks import committed_clean_code_cells, parameter_lines

from csnet.suite import default_kernel

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "00_data_tour.ipynb"


def test_notebook_is_committed_clean_with_a_typed_parameters_cell():
    code = committed_clean_code_cells(NOTEBOOK)
    lines = parameter_lines(code[0])
    names = [line.split(":")[0] for line in lines]
    assert names == ["profile", "tasks", "composites", "photo", "seed", "output_dir"]
    assert all("#" in line and ": " in line.split("=")[0] for line in lines)  # typed and commented
    assert "output_dir: Optional[str] = None" in code[0].source  # None: results/<profile>/00_data_tour


@pytest.mark.slow
def test_notebook_runs_with_small_parameters(tmp_path):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "out"
    papermill.execute_notebook(
        str(NOTEBOOK), str(tmp_path / "executed.ipynb"), kernel_name=default_kernel(), progress_bar=False,
        parameters={"profile": "smoke", "tasks": ["denoise_25", "derain", "dehaze"],
                    "composites": ["rain+haze"], "photo": "sail", "seed": 1, "output_dir": str(out)},
        cwd=str(NOTEBOOK.parent),
    )
    for name in ("degradations.pdf", "degradations.png", "corpus_sheet.png", "corpus.csv",
                 "corpus.tex", "corpus.md", "parameters.csv", "manifest.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parameters"]["photo"] == "sail" and manifest["seeds"] == [1]
    assert manifest["extra"]["crop_side"] == 128
    parameters = (out / "parameters.csv").read_text()
    assert "rain+haze" in parameters and "beta" in parameters and "density" in parameters
    assert len((out / "corpus.csv").read_text().splitlines()) >= 31
