"""analysis.outputs and analysis.style: tables in three formats, byte-identical figures, the manifest."""
from __future__ import annotations

import json
import socket
import time

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from analysis.outputs import MANIFEST_PACKAGES, OutputDir, git_state
from analysis.style import COLUMN_WIDTH, PAGE_WIDTH, figure, paper_style


@pytest.fixture
def table() -> pd.DataFrame:
    return pd.DataFrame({"channels": ["for denoise_25", "all channels"],
                         "denoise_25": [31.4912, 31.18], "seeds": [3, 3]})


def test_table_writes_csv_latex_and_markdown(tmp_path, table):
    out = OutputDir(tmp_path / "nb")
    paths = out.table(table, "table1", caption="Channels & tasks", float_format="{:.2f}")

    assert set(paths) == {"csv", "tex", "md"} and all(p.is_file() for p in paths.values())
    assert pd.read_csv(paths["csv"])["denoise_25"].tolist() == [31.4912, 31.18]  # CSV keeps every digit
    tex = paths["tex"].read_text()
    assert "\\toprule" in tex and "denoise\\_25" in tex and "31.49" in tex and "31.4912" not in tex
    assert "\\caption{Channels \\& tasks}" in tex and "\\label{tab:table1}" in tex
    md = paths["md"].read_text()
    assert md.splitlines()[0].startswith("| channels") and "31.49" in md and "Table: Channels & tasks" in md
    assert out.files() == [paths["csv"], paths["tex"], paths["md"]]
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temporaries


def test_float_format_accepts_percent_style_and_rejects_nonsense(tmp_path, table):
    out = OutputDir(tmp_path)
    assert "31.5" in out.table(table, "t", float_format="%.1f")["md"].read_text()
    with pytest.raises(ValueError, match="float_format"):
        out.table(table, "t", float_format=".2f")


def _draw():
    fig, ax = figure("column")
    ax.plot([0, 1, 2], [1.0, 3.0, 2.0], label="ΔPSNR")
    ax.set_xlabel("site")
    ax.legend()
    return fig


def test_figure_is_byte_identical_when_redrawn(tmp_path):
    with paper_style():
        first = OutputDir(tmp_path / "a").figure(_draw(), "fig")
        second = OutputDir(tmp_path / "b").figure(_draw(), "fig")
    for ext in ("pdf", "png"):
        assert first[ext].read_bytes() == second[ext].read_bytes(), ext
    pdf = first["pdf"].read_bytes()
    assert b"CreationDate" not in pdf and b"FontFile2" in pdf  # no date; TrueType (fonttype 42) embedded
    assert plt.get_fignums() == []  # figures are closed after saving


def test_paper_style_restores_settings_after_a_with_block():
    before = matplotlib.rcParams["pdf.fonttype"], matplotlib.rcParams["font.size"]
    with paper_style():
        assert matplotlib.rcParams["pdf.fonttype"] == 42
    assert (matplotlib.rcParams["pdf.fonttype"], matplotlib.rcParams["font.size"]) == before


def test_figure_sizes_are_paper_inches():
    fig, _ = figure("page", height=2.0)
    assert tuple(fig.get_size_inches()) == pytest.approx((PAGE_WIDTH, 2.0))
    plt.close(fig)
    fig, _ = figure()
    assert fig.get_size_inches()[0] == pytest.approx(COLUMN_WIDTH)
    plt.close(fig)
    with pytest.raises(ValueError, match="column"):
        figure("poster")


def test_manifest_records_what_produced_the_folder(tmp_path, table):
    out = OutputDir(tmp_path, started=time.time() - 5)
    out.table(table, "table1")
    path = out.manifest({"profile": "smoke", "keep": np.float32(0.5)}, seeds=[0, 1, 2],
                        text_encoder={"name": "onehot", "pretrained": False}, extra={"note": np.int64(3)})
    manifest = json.loads(path.read_text())

    for key in ("parameters", "seeds", "git", "versions", "text_encoder", "device", "wall_time_s",
                "started_utc", "files"):
        assert key in manifest, key
    assert manifest["parameters"] == {"profile": "smoke", "keep": 0.5}
    assert manifest["seeds"] == [0, 1, 2] and manifest["extra"] == {"note": 3}
    assert manifest["text_encoder"]["name"] == "onehot"
    assert set(manifest["git"]) == {"commit", "dirty"}
    commit = manifest["git"]["commit"]
    assert commit is None or (len(commit) == 40 and int(commit, 16) >= 0)
    assert set(MANIFEST_PACKAGES) <= set(manifest["versions"]) and manifest["versions"]["python"]
    assert manifest["versions"]["csnet-suite"] is not None
    assert manifest["device"]["type"] in ("cpu", "cuda")
    assert manifest["wall_time_s"] >= 5
    assert manifest["files"] == ["table1.csv", "table1.tex", "table1.md"]
    assert "manifest.json" in [p.name for p in out.files()]
    assert socket.gethostname() not in path.read_text()


def test_manifest_names_the_code_that_started_the_work(tmp_path, monkeypatch):
    import analysis.outputs as outputs
    states = iter([{"commit": "a" * 40, "dirty": False}, {"commit": "b" * 40, "dirty": True}])
    monkeypatch.setattr(outputs, "git_state", lambda: next(states))
    out = OutputDir(tmp_path)  # reads the first state
    manifest = json.loads(out.manifest({"profile": "smoke"}).read_text())  # the checkout moved on meanwhile
    assert manifest["git"] == {"commit": "a" * 40, "dirty": False}
    assert manifest["git_changed_during_run"] == {"commit": "b" * 40, "dirty": True}


def test_manifest_says_nothing_of_change_when_the_checkout_stood_still(tmp_path):
    out = OutputDir(tmp_path)
    manifest = json.loads(out.manifest({"profile": "smoke"}).read_text())
    assert "git_changed_during_run" not in manifest


def test_git_state_outside_a_repository_is_none(tmp_path):
    assert git_state(tmp_path) == {"commit": None, "dirty": None}


def test_json_is_strict(tmp_path):
    path = OutputDir(tmp_path).json({"x": np.arange(3), "nan": float("nan"), "p": tmp_path / "a"}, "data")
    data = json.loads(path.read_text())
    assert data["x"] == [0, 1, 2] and data["nan"] is None and data["p"].endswith("/a")
    with pytest.raises(TypeError, match="JSON"):
        OutputDir(tmp_path).json({"bad": object()}, "bad")
