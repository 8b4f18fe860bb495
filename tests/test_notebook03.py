"""notebooks/03_fusion_comparison.ipynb: committed clean with a typed parameters cell, and it runs headless at
the smoke profile through papermill, writing the tables, figures and manifest the study promises."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from notebook_checks import committed_clean_code_cells, parameter_lines, table_copies

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "03_fusion_comparison.ipynb"
PARAMETERS = ["profile", "seeds", "headline_seeds", "tasks", "mechanisms", "kappa", "keep_ratio", "text_encoder",
              "omega_sweep", "kappa_sweep", "estimators", "sweep_seeds", "single_task", "cost_rounds", "n_boot",
              "alpha", "paired_seeds", "reuse_tables", "test_root", "output_dir"]


def test_notebook_is_committed_clean_with_a_typed_parameters_cell():
    code = committed_clean_code_cells(NOTEBOOK)
    lines = parameter_lines(code[0])
    assert [line.split(":")[0] for line in lines] == PARAMETERS
    assert all("  # " in line and ": " in line.split("=")[0] for line in lines)  # typed and commented
    assert "output_dir: Optional[str] = None" in code[0].source  # None: results/<profile>/03_fusion_comparison
    assert 'profile: str = "quick"' in code[0].source


def test_parameters_match_notebook01_so_runs_are_shared():
    from csnet.suite import notebook_parameters

    ours = notebook_parameters(NOTEBOOK)
    theirs = notebook_parameters(NOTEBOOK.parent / "01_table1_channel_misallocation.ipynb")
    for name in ("kappa", "keep_ratio", "text_encoder", "seeds", "tasks"):
        assert ours[name]["default"] == theirs[name]["default"], name


@pytest.mark.slow
def test_notebook_runs_at_smoke(tmp_path):
    papermill = pytest.importorskip("papermill")
    from csnet.suite import default_kernel

    out = tmp_path / "out"
    # Four small models in all (two mechanisms, two single-task models): the sweeps hold only the main
    # comparison's point, which must come back from the run store, not be trained again.
    mechanisms = ["none", "hard_select"]
    tasks = ["denoise_25", "dehaze"]
    papermill.execute_notebook(
        str(NOTEBOOK), str(tmp_path / "executed.ipynb"), kernel_name=default_kernel(), progress_bar=False,
        parameters={"profile": "smoke", "seeds": [0], "tasks": tasks, "mechanisms": mechanisms,
                    "omega_sweep": [0.5], "kappa_sweep": [2.0], "estimators": ["straight_through"],
                    "cost_rounds": 1, "n_boot": 200, "output_dir": str(out)},
        cwd=str(NOTEBOOK.parent),
    )
    expected = ["per_image", "cost", "table2", "table2_formatted", "table2_oracle_text_prompt", "oracle_gap",
                "paired_tests", "bars_image_prompt", "interference_image_prompt",
                "interference_by_mechanism_image_prompt", "single_task_per_image", "sweeps", "sweep_per_image"]
    for name in expected:
        # the *_formatted strings are for reading (Markdown); the numeric table is the paper's LaTeX
        copies = ("csv", "md") if name.endswith("_formatted") else table_copies(out, name)
        for ext in copies:
            assert (out / f"{name}.{ext}").stat().st_size > 0, f"{name}.{ext}"
    for name in ("psnr_by_mechanism_image_prompt", "psnr_by_mechanism_text_prompt", "sweep_omega"):
        for ext in ("pdf", "png"):
            assert (out / f"{name}.{ext}").stat().st_size > 0, f"{name}.{ext}"

    table = pd.read_csv(out / "table2.csv")
    ours = table[table["source"].str.startswith("ours, measured")]
    assert list(ours["method"]) == ["none (Restormer)", "hard_select (CSNet)"]
    assert {"degraded input", "NL-means (scikit-image)", "dark channel prior (He et al. 2009)"} <= set(table["method"])
    published = table[table["source"] == "published, on their data (not comparable)"]
    assert len(published) == 5 and published["method"].str.startswith("CSNet").any()
    assert [c for c in table.columns if c.endswith("_psnr")] == ["dehaze_psnr", "denoise_25_psnr", "average_psnr"]
    assert ours[["dehaze_psnr", "denoise_25_psnr", "params_m"]].notna().all().all()

    tests = pd.read_csv(out / "paired_tests.csv")
    assert set(tests["other"]) == {"none"} and set(tests["prompt_source"]) == {"image", "text"}
    gaps = pd.read_csv(out / "interference_image_prompt.csv")
    assert set(gaps["method"]) == set(mechanisms) and set(gaps["task"]) == set(tasks)
    sweeps = pd.read_csv(out / "sweeps.csv")
    assert set(sweeps["sweep"]) == {"omega", "kappa", "estimator"}
    assert list(sweeps.loc[sweeps["sweep"] == "omega", "value"].astype(float).unique()) == [0.5]
    assert sweeps["default"].all()
    costs = pd.read_csv(out / "cost.csv")
    assert list(costs["mechanism"]) == mechanisms and (costs["gflops_forward"] > 0).all()

    verdict = json.loads((out / "verdict.json").read_text())
    assert "hard_select" in verdict["verdicts"]["image"] and verdict["interference"]["image"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parameters"]["mechanisms"] == mechanisms and manifest["seeds"] == [0]
    assert manifest["text_encoder"] and "kind" in manifest["text_encoder"]
    assert set(manifest["extra"]["runs"]) == {f"{m}/seed0" for m in mechanisms}
    # the sweeps' default point is the main comparison's hard_select run, shared through the store
    assert set(manifest["extra"]["sweep_runs"].values()) == {manifest["extra"]["runs"]["hard_select/seed0"]}
    assert manifest["extra"]["single_task_groups"] == {"noise": ["denoise_25"], "haze": ["dehaze"]}
    assert manifest["extra"]["meaningful"] is False
    assert "table2.csv" in manifest["files"] and "sweep_omega.pdf" in manifest["files"]

    # Re-analysis of the same folder's per-image tables: nothing trained, the same verdicts and tests.
    before = {name: (out / name).read_text() for name in ("verdict.json", "paired_tests.csv", "oracle_tests.csv")}
    papermill.execute_notebook(
        str(NOTEBOOK), str(tmp_path / "reused.ipynb"), kernel_name=default_kernel(), progress_bar=False,
        parameters={"profile": "smoke", "seeds": [0], "tasks": tasks, "mechanisms": mechanisms,
                    "omega_sweep": [0.5], "kappa_sweep": [2.0], "estimators": ["straight_through"],
                    "cost_rounds": 1, "n_boot": 200, "output_dir": str(out), "reuse_tables": True},
        cwd=str(NOTEBOOK.parent),
    )
    assert {name: (out / name).read_text() for name in before} == before
    reused = json.loads((out / "manifest.json").read_text())
    assert reused["extra"]["reused_tables"] is True and reused["extra"]["runs"] == manifest["extra"]["runs"]
