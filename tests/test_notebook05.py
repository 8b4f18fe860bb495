"""notebooks/05_training_budget.ipynb: committed clean with a typed parameters cell; at the smoke profile it
runs through the suite runner and by hand with papermill, and running it again trains nothing new."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pandas as pd
import pytest
from notebook_checks import committed_clean_code_cells, parameter_lines

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "05_training_budget.ipynb"
PARAMETERS = ["profile", "seeds", "mechanisms", "budgets", "eval_tasks", "train_jobs", "n_boot", "alpha", "margin", "reuse_tables", "test_root",
              "output_dir"]
SMALL = {"seeds": [0, 1], "mechanisms": ["none", "hard_select"], "eval_tasks": ["denoise_25", "dehaze"], "n_boot": 200}


def test_notebook05_is_committed_clean_with_a_typed_parameters_cell():
    code = committed_clean_code_cells(NOTEBOOK)
    lines = parameter_lines(code[0])
    assert [line.split(":")[0] for line in lines] == PARAMETERS
    assert all("  # " in line and ": " in line.split("=")[0] for line in lines)  # typed and commented
    assert 'profile: str = "quick"' in code[0].source
    from csnet.suite import discover_notebooks, notebook_parameters

    assert NOTEBOOK in discover_notebooks()
    assert ast.literal_eval(notebook_parameters(NOTEBOOK)["mechanisms"]["default"]) == ["none", "hard_select", "soft_gate",
                                                                       "channel_attention", "cross_attention"]


def _outputs(folder: Path) -> dict:
    for name in ("runs", "curves", "reference_lines", "budget_tests", "ranking", "gap_slopes", "reference_tests",
                 "first_beats", "crossings"):
        for ext in ("csv", "tex", "md"):
            assert (folder / f"{name}.{ext}").is_file(), f"{name}.{ext}"
    for name in ("psnr_vs_steps", "psnr_vs_cpu_seconds", "psnr_vs_flops", "gap_vs_steps"):
        for ext in ("pdf", "png"):
            assert (folder / f"{name}.{ext}").stat().st_size > 0, f"{name}.{ext}"
    return json.loads((folder / "manifest.json").read_text())


@pytest.mark.slow
def test_notebook05_runs_through_the_runner_and_by_hand_and_trains_nothing_the_second_time(tmp_path):
    papermill = pytest.importorskip("papermill")
    from csnet import suite
    from csnet.store import list_runs

    result = suite.run_suite("smoke", only="05", results_root=tmp_path / "results", extra_params=SMALL, progress=False)
    (run,) = result.runs
    assert run.ok, run.describe()
    manifest = _outputs(run.output_dir)
    runs = pd.read_csv(run.output_dir / "runs.csv")
    assert manifest["parameters"]["budgets"] == [3, 5, 10, 20] and len(runs) == 2 * 2 * 4
    branches = runs[runs["budget"] < 20]
    assert (branches["branched_from"].notna()).all() and (branches["branch_step"] < branches["budget"]).all()
    curves = pd.read_csv(run.output_dir / "curves.csv")
    assert set(curves["budget"]) == {3, 5, 10, 20} and (curves["train_flops"] > 0).all()
    assert (curves["train_seconds"] > 0).all()
    slopes = pd.read_csv(run.output_dir / "gap_slopes.csv")
    assert set(slopes["task"]) == {"denoise_25", "dehaze", "all tasks"} and slopes["verdict"].notna().all()
    verdict = json.loads((run.output_dir / "verdict.json").read_text())
    assert len(verdict["verdicts"]["ranking"]) == 4 and verdict["verdicts"]["gap_slopes"]
    stored = len(list_runs())

    by_hand = tmp_path / "by_hand"
    from csnet.suite import default_kernel

    papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / "executed.ipynb"), kernel_name=default_kernel(),
                               progress_bar=False, parameters={"profile": "smoke", **SMALL, "output_dir": str(by_hand)},
                               cwd=str(NOTEBOOK.parent))
    again = _outputs(by_hand)
    assert again["extra"]["trained_now"] == 0 and len(list_runs()) == stored  # the store answered every run
    assert again["extra"]["runs"] == manifest["extra"]["runs"]
    for name in ("curves.csv", "gap_slopes.csv", "verdict.json"):
        assert (by_hand / name).read_text() == (run.output_dir / name).read_text(), name

    papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / "reused.ipynb"), kernel_name=default_kernel(),
                               progress_bar=False, cwd=str(NOTEBOOK.parent),
                               parameters={"profile": "smoke", **SMALL, "output_dir": str(by_hand), "reuse_tables": True})
    assert json.loads((by_hand / "manifest.json").read_text())["extra"]["reused_tables"] is True
    assert (by_hand / "verdict.json").read_text() == (run.output_dir / "verdict.json").read_text()
