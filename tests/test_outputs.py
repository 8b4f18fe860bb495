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


def test_figure_is_shown_inline_in_a_kernel_and_still_byte_identical(tmp_path, monkeypatch):
    import IPython.display

    from analysis import outputs

    shown = []
    monkeypatch.setattr(outputs, "in_kernel", lambda: True)
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    with paper_style():
        inline = OutputDir(tmp_path / "a").figure(_draw(), "fig")
        plain = OutputDir(tmp_path / "b").figure(_draw(), "fig", close=False)  # left open: no explicit display
    assert len(shown) == 1 and hasattr(shown[0], "savefig")
    for ext in ("pdf", "png"):
        assert inline[ext].read_bytes() == plain[ext].read_bytes(), ext
    assert str(tmp_path) not in repr(inline) and "fig.pdf" in repr(inline)
    plt.close("all")


def test_paper_table_formats_numbers_by_kind_and_bolds_the_declared_best(tmp_path):
    df = pd.DataFrame({"method": ["a_b", "c"], "psnr": [31.4912, 30.1], "psnr_std": [0.123, float("nan")],
                       "ssim": [0.81234, 0.9], "p_holm": [0.00004, 0.04567], "n": [897.0, 12.0]})
    paths = OutputDir(tmp_path).table(df, "t", caption="κ & σ", higher_is_better=["psnr", "ssim"])
    tex = paths["tex"].read_text()
    assert "\\begin{table}" in tex and "\\caption{$\\kappa$ \\& $\\sigma$}" in tex and "\\label{tab:t}" in tex
    assert "\\bfseries 31.49 $\\pm$ 0.12" in tex and "\\bfseries 0.900" in tex and "30.10 &" in tex
    assert "$<$ 0.001" in tex and "0.046" in tex and "897 \\\\" in tex and "897.0" not in tex
    assert "{lrrrr}" in tex and "psnr\\_std" not in tex
    md = paths["md"].read_text()
    assert "**31.49 ± 0.12**" in md and "< 0.001" in md


def test_long_tables_are_csv_only_and_data_files_are_in_the_manifest(tmp_path):
    out = OutputDir(tmp_path)
    long = pd.DataFrame({"image": range(61), "psnr": 30.0})
    assert set(out.table(long, "per_image")) == {"csv"}
    assert not (tmp_path / "per_image.tex").exists() and not (tmp_path / "per_image.md").exists()
    out.data(long, "importance.csv.gz")
    manifest = json.loads(out.manifest({"profile": "smoke"}).read_text())
    assert manifest["files"] == ["per_image.csv", "importance.csv.gz"]
    assert repr(out.manifest({})) == "written: manifest.json"  # a notebook's last line prints no absolute path
    assert pd.read_csv(tmp_path / "importance.csv.gz").equals(long)
