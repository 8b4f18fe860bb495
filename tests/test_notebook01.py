"""Notebook 01 (Table I): committed clean with a typed parameters cell, and at smoke it writes the table,
the controls, the verdict, the figures and the manifest the study promises."""
from __future__ import annotations

import json

import nbformat
import pandas as pd
import pytest

from analysis import table1
from csnet.paths import project_root
from csnet.suite import notebook_parameters

NOTEBOOK = project_root() / "notebooks" / "01_table1_channel_misallocation.ipynb"
TASKS = ["denoise_25", "derain", "dehaze"]


def test_notebook01_is_committed_clean_with_typed_commented_parameters():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    declared = notebook_parameters(NOTEBOOK)
    assert {"profile", "seeds", "tasks", "eval_tasks", "keep_ratio", "kappa", "text_encoder", "n_random",
            "mask_noise", "n_boot", "output_dir", "headline_seeds", "alpha", "margin", "reuse_tables", "test_root"} <= set(declared)
    assert all(p["help"] for p in declared.values())


@pytest.mark.slow
def test_notebook01_writes_table1_controls_figures_and_manifest(smoke_suite):
    folder = next(r for r in smoke_suite.runs if r.name == NOTEBOOK.stem).output_dir
    table = pd.read_csv(folder / "table1.csv")
    assert list(table["channels"]) == table1.condition_order(["noise", "rain", "haze"])
    assert [f"{t}_psnr" for t in TASKS] == [c for c in table.columns if c.endswith("_psnr")]
    assert table[[f"{t}_psnr" for t in TASKS]].notna().all().all()
    beside = pd.read_csv(folder / "table1_vs_paper.csv").set_index("channels")
    assert beside.loc["channels for noise", "denoise_25 paper (published)"] == 31.49

    spec = pd.read_csv(folder / "specificity.csv")
    assert sorted(spec["kind"].value_counts().items()) == [("other − random", 6), ("own − random", 3)]
    per_image = pd.read_csv(folder / "per_image.csv")
    assert set(per_image["variant"]) == {"hard_select", "hard_select+mask_noise", "none"}
    assert (per_image.groupby(["variant", "condition"]).size() > 0).all()

    verdict = json.loads((folder / "verdict.json").read_text())
    assert verdict["profile"] == "smoke (numbers not meaningful)"
    assert verdict["verdicts"]["hard_select"].startswith("Own channels against the network's other channel sets "
                                                         "(paired t over seeds, Holm over 15): ")
    assert "underpowered: 1 seed cannot reliably reach" in verdict["verdicts"]["hard_select"]  # smoke has one seed

    for name in ("delta_psnr_heatmap", "delta_psnr_heatmap_mask_noise", "channel_overlap_jaccard"):
        assert (folder / f"{name}.pdf").stat().st_size > 0 and (folder / f"{name}.png").stat().st_size > 0
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["text_encoder"]["kind"] == "wordllama" and manifest["text_encoder"]["pretrained"] is True
    assert manifest["seeds"] == [0] and manifest["extra"]["meaningful"] is False
    assert set(manifest["extra"]["runs"]) == {"hard_select/seed0", "hard_select+mask_noise/seed0", "none/seed0"}


@pytest.mark.slow
def test_notebook01_reuse_tables_reanalyses_without_training_and_gives_the_same_verdicts(smoke_suite, tmp_path):
    """Re-running the analysis on the per-image tables of the smoke run (no model is trained or loaded)
    writes the same verdicts and comparison tables."""
    import shutil

    from csnet import suite

    folder = next(r for r in smoke_suite.runs if r.name == NOTEBOOK.stem).output_dir
    copy = tmp_path / "smoke" / NOTEBOOK.stem
    shutil.copytree(folder, copy)
    result = suite.run_suite("smoke", only="01", results_root=tmp_path, extra_params={"reuse_tables": True},
                             progress=False)
    assert not result.failures, result.failures
    assert json.loads((copy / "verdict.json").read_text()) == json.loads((folder / "verdict.json").read_text())
    for name in ("paired_comparisons.csv", "specificity.csv", "table1.csv", "per_image.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(copy / name), pd.read_csv(folder / name))
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["parameters"]["reuse_tables"] is True and manifest["extra"]["reused_tables"] is True
    assert manifest["extra"]["runs"] == json.loads((folder / "manifest.json").read_text())["extra"]["runs"]
