"""notebooks/02_channel_sensitivity.ipynb: committed clean with a typed parameters cell, and it runs
headless through papermill at the smoke profile, writing its tables, figures and manifest."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from notebook_checks import committed_clean_code_cells, parameter_lines

from csnet.suite import default_kernel

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "02_channel_sensitivity.ipynb"
PARAMETERS = ["profile", "seeds", "tasks", "probe_tasks", "mechanisms", "keep_ratio", "kappa", "text_encoder",
              "prompt_source", "metric", "patches_per_task", "readout_patches_per_task", "patch_size",
              "perturbations_per_eval", "internal_batch_size", "gradient_method", "conductance_steps",
              "top_k_fraction", "n_boot", "alpha", "margin", "reuse_tables", "output_dir"]


def test_notebook_is_committed_clean_with_a_typed_parameters_cell():
    code = committed_clean_code_cells(NOTEBOOK)
    lines = parameter_lines(code[0])
    assert [line.split(":")[0] for line in lines] == PARAMETERS
    assert all("#" in line and ": " in line.split("=")[0] for line in lines)  # typed and commented
    # papermill warns "Unable to parse line" on a line with two '='
    assert all(line.split("#", 1)[1].count("=") == 0 for line in lines)
    assert "output_dir: Optional[str] = None" in code[0].source  # None: results/<profile>/02_channel_sensitivity
    assert 'mechanisms: list = ["hard_select", "none", "channel_attention", "soft_gate"]' in code[0].source


@pytest.mark.slow
def test_notebook_runs_at_smoke(tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill")
    # smoke tensors are tiny: one thread is as fast, and two threads on a busy 2-core machine spin-wait
    # (measured 5–100× slower); the kernel inherits this environment
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "out"
    papermill.execute_notebook(
        str(NOTEBOOK), str(tmp_path / "executed.ipynb"), kernel_name=default_kernel(), progress_bar=False,
        parameters={"profile": "smoke", "n_boot": 300, "output_dir": str(out)}, cwd=str(NOTEBOOK.parent),
    )
    tables = ("probe_cost", "method_correlations", "task_overlap", "rank_statistics", "seed_stability",
              "selection_agreement", "readout_accuracy", "mechanism_summary", "mechanism_comparisons")
    figures = ("sensitivity_heatmap_output", "sensitivity_heatmap_selection", "method_correlations", "task_overlap",
               "selection_agreement", "readout_accuracy", "readout_pca", "readout_tsne", "mechanism_summary")
    expected = [f"{t}.{ext}" for t in tables for ext in ("csv", "tex", "md")]
    expected += [f"{f}.{ext}" for f in figures for ext in ("pdf", "png")]
    expected += ["importance.csv.gz", "verdict.json", "manifest.json"]
    for name in expected:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name

    importance = pd.read_csv(out / "importance.csv.gz")
    assert set(importance["method"]) == {"ablation", "gradient", "activation"}
    assert set(importance["mechanism"]) == {"hard_select", "none", "channel_attention", "soft_gate"}
    assert set(importance[importance["space"] == "selection"]["mechanism"]) == {"hard_select", "soft_gate"}
    summary = pd.read_csv(out / "mechanism_summary.csv")
    assert list(summary["mechanism"]) == ["hard_select", "none", "channel_attention", "soft_gate"]
    assert summary["between_task_jaccard"].between(0, 1).all()
    readout = pd.read_csv(out / "readout_accuracy.csv")
    assert len(readout) == 4 * 4 and readout["accuracy"].between(0, 1).all()

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parameters"]["profile"] == "smoke" and manifest["seeds"] == [0]
    assert manifest["text_encoder"] and "model" in manifest["text_encoder"]
    assert manifest["extra"]["meaningful"] is False
    assert len(manifest["extra"]["runs"]) == 4
    verdict = json.loads((out / "verdict.json").read_text())
    assert "smoke" in verdict["profile"] and "Between-task Jaccard" in verdict["verdict"]
    assert "above each site's chance level" in verdict["verdict"]

    # Re-analysis of the same folder's tables: nothing trained or probed, the same verdict and summary.
    before = {name: (out / name).read_text() for name in ("verdict.json", "mechanism_summary.csv",
                                                          "mechanism_comparisons.csv")}
    papermill.execute_notebook(
        str(NOTEBOOK), str(tmp_path / "reused.ipynb"), kernel_name=default_kernel(), progress_bar=False,
        parameters={"profile": "smoke", "n_boot": 300, "output_dir": str(out), "reuse_tables": True},
        cwd=str(NOTEBOOK.parent),
    )
    assert {name: (out / name).read_text() for name in before} == before
    reused = json.loads((out / "manifest.json").read_text())
    assert reused["extra"]["reused_tables"] is True and reused["extra"]["runs"] == manifest["extra"]["runs"]
