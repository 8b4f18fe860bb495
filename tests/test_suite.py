"""csnet.suite and ``csnet suite``: discovery, parameter checks, execution with failures, the index,
stripping; and the contract every suite notebook must meet at the smoke profile."""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import time
from pathlib import Path
from urllib.parse import unquote

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from csnet import suite
from csnet.cli import suite as suite_cli

FIXTURES = Path(__file__).parent / "fixtures" / "suite_notebooks"


@pytest.fixture
def notebooks(tmp_path) -> Path:
    """A notebook folder with the fixtures: 01_ok (writes a table, a figure and received.json) and
    02_fails (writes before_failure.txt, then raises ValueError)."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for nb in FIXTURES.glob("*.ipynb"):
        shutil.copy(nb, folder / nb.name)
    return folder


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="csnet")
    suite_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    return args.func(args)


def _links(index: Path) -> list[str]:
    return [unquote(t) for t in re.findall(r"\]\(([^)#][^)]*)\)", index.read_text())]


# ------------------------------------------------------------------------- discovery, selection
def test_notebooks_are_ordered_by_number_prefix(tmp_path):
    for name in ("10_last.ipynb", "2_second.ipynb", "01_first.ipynb", "notes.ipynb", "03_x.txt"):
        (tmp_path / name).write_text("{}")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "00_first-checkpoint.ipynb").write_text("{}")
    assert [p.name for p in suite.discover_notebooks(tmp_path)] == ["01_first.ipynb", "2_second.ipynb", "10_last.ipynb"]


def test_only_accepts_stem_number_file_name_and_path(notebooks):
    found = suite.discover_notebooks(notebooks)
    for name in ("02_fails", "02", "2", "02_fails.ipynb", "notebooks/02_fails.ipynb"):
        assert [p.stem for p in suite.select_notebooks(found, [name])] == ["02_fails"], name
    assert [p.stem for p in suite.select_notebooks(found, ["02", "01_ok"])] == ["01_ok", "02_fails"]


def test_unknown_only_is_an_error_listing_the_notebooks(notebooks, tmp_path):
    with pytest.raises(ValueError, match=r"'07_nothing'.*\n  01_ok\n  02_fails"):
        suite.run_suite("smoke", only=["07_nothing"], notebooks_dir=notebooks, results_root=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_unknown_parameter_is_an_error_naming_the_valid_ones(notebooks, tmp_path):
    with pytest.raises(ValueError, match=r"02_fails.ipynb: unknown parameter\(s\) scale; .*profile, output_dir"):
        suite.run_suite("smoke", extra_params={"scale": 2}, notebooks_dir=notebooks, results_root=tmp_path / "r")
    assert not (tmp_path / "r").exists()  # checked before any notebook ran


def test_unknown_profile_and_runner_owned_parameters_are_errors(notebooks, tmp_path):
    with pytest.raises(ValueError, match="smoke, quick, cpu, paper"):
        suite.run_suite("huge", notebooks_dir=notebooks, results_root=tmp_path)
    with pytest.raises(ValueError, match="output_dir"):
        suite.run_suite("smoke", extra_params={"output_dir": "x"}, notebooks_dir=notebooks, results_root=tmp_path)


def test_a_notebook_without_a_parameters_cell_is_rejected(notebooks):
    path = notebooks / "01_ok.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        cell.metadata.pop("tags", None)
    nbformat.write(nb, path)
    with pytest.raises(ValueError, match="no cell is tagged 'parameters'"):
        suite.validate_parameters(path, {"profile": "smoke"})


def test_notebook_parameters_reads_names_types_and_help(tmp_path):
    params = suite.notebook_parameters(FIXTURES / "01_ok.ipynb")
    assert list(params) == ["profile", "output_dir", "scale"]
    assert params["scale"] == {"type": "int", "default": "1", "help": "multiplies the numbers in the table"}

    # papermill's own inspection skips lines with a second "="; the runner must still see them
    cell = new_code_cell('seeds: list | None = None  # None = the profile\'s seeds\n'
                         'tasks = [\n    "derain",\n]  # tasks to run\nplain = 3')
    cell.metadata["tags"] = ["parameters"]
    nbformat.write(new_notebook(cells=[cell]), tmp_path / "n.ipynb")
    params = suite.notebook_parameters(tmp_path / "n.ipynb")
    assert list(params) == ["seeds", "tasks", "plain"]
    assert params["seeds"] == {"type": "list | None", "default": "None", "help": "None = the profile's seeds"}
    assert params["tasks"]["help"] == "tasks to run" and params["plain"]["type"] is None


def test_parameter_values_parse_like_papermill_plus_lists():
    parse = suite.parse_parameter_value
    assert parse("3") == 3 and parse("0.5") == 0.5 and parse("True") is True and parse("None") is None
    assert parse("[0, 1, 2]") == [0, 1, 2] and parse("open_clip:ViT-B-32") == "open_clip:ViT-B-32"


def test_default_kernel_is_the_projects_or_this_interpreters():
    assert suite.default_kernel() in (suite.PROJECT_KERNEL, suite.FALLBACK_KERNEL)


# ------------------------------------------------------------------------------ strip, index, list
def test_strip_removes_outputs_and_keeps_tags(tmp_path):
    cell = new_code_cell("x = 1", execution_count=3, outputs=[new_output("stream", text="hi\n")])
    cell.metadata["tags"] = ["parameters"]
    cell.metadata["papermill"] = {"duration": 0.1}
    nb = new_notebook(cells=[cell], metadata={"papermill": {"duration": 1.0},
                                               "kernelspec": {"name": "csnet", "display_name": "Python (csnet)"}})
    path = tmp_path / "01_x.ipynb"
    nbformat.write(nb, path)

    assert suite.strip_outputs(path, check_only=True) and nbformat.read(path, 4).cells[0].outputs
    assert suite.strip_outputs(path) is True
    stripped = nbformat.read(path, as_version=4)
    assert stripped.cells[0].outputs == [] and stripped.cells[0].execution_count is None
    assert stripped.cells[0].metadata == {"tags": ["parameters"]}
    assert "papermill" not in stripped.metadata and stripped.metadata.kernelspec.name == "csnet"
    assert suite.strip_outputs(path) is False
    assert _cli("suite", "strip", "--check", str(path)) == 0


def test_set_aside_stale_moves_only_files_older_than_the_run(tmp_path):
    out = tmp_path / "03_x"
    (out / "figs").mkdir(parents=True)
    (out / ".previous").mkdir()
    for name in ("old.csv", "figs/old.png", "new.csv", suite.STATUS_FILE, ".previous/older.csv"):
        (out / name).write_text(name)
    since = time.time()
    for name in ("old.csv", "figs/old.png", suite.STATUS_FILE, ".previous/older.csv"):
        os.utime(out / name, (since - 60, since - 60))
    os.utime(out / "new.csv", (since + 1, since + 1))

    moved = suite.set_aside_stale(out, since)

    assert moved == ["figs/old.png", "old.csv"]
    assert (out / ".previous" / "figs" / "old.png").read_text() == "figs/old.png"
    assert (out / ".previous" / "old.csv").read_text() == "old.csv"
    assert (out / "new.csv").is_file() and (out / suite.STATUS_FILE).is_file()  # this run's, and the runner's
    assert (out / ".previous" / "older.csv").is_file() and not (out / "figs").exists()
    assert suite.set_aside_stale(out, since) == []  # nothing left to move


def test_index_links_every_table_figure_and_notebook(tmp_path):
    profile_dir = tmp_path / "smoke"
    folder = profile_dir / "01_study"
    (folder / "sub").mkdir(parents=True)
    for name in ("01_study.ipynb", "table 1.csv", "table 1.md", "table 1.tex", "heat.pdf", "heat.png",
                 "sub/extra.png", "manifest.json", ".partial.tmp"):
        (folder / name).write_text("x")
    (profile_dir / "notes").mkdir()  # not a notebook folder: ignored

    index = suite.write_index(profile_dir)
    text = index.read_text()
    assert "## 01_study" in text and "unknown" in text and "notes" not in text and ".partial" not in text
    links = _links(index)
    assert {"01_study/01_study.ipynb", "01_study/table 1.csv", "01_study/table 1.md", "01_study/heat.pdf",
            "01_study/heat.png", "01_study/sub/extra.png", "01_study/manifest.json"} <= set(links)
    assert all((profile_dir / link).is_file() for link in links)
    # the gallery: every figure's PNG shown as an image, grouped under its notebook
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert images == ["01_study/heat.png", "01_study/sub/extra.png"]
    assert text.index("### 01_study: figures") < text.index("![")


def test_cli_list_shows_parameters(notebooks, capsys):
    assert _cli("suite", "list", "--notebooks-dir", str(notebooks), "-v") == 0
    out = capsys.readouterr().out
    assert "01_ok" in out and "scale: int = 1" in out and "02_fails" in out


# ------------------------------------------------------------------------------------ execution
@pytest.mark.slow
def test_failing_notebook_is_kept_and_the_others_still_run(notebooks, tmp_path):
    for name in ("01_ok", "02_fails"):  # what an earlier run left: a table this run no longer writes
        (tmp_path / "results" / "smoke" / name / "old").mkdir(parents=True)
        (tmp_path / "results" / "smoke" / name / "old" / "dropped.csv").write_text("a\n1\n")
        os.utime(tmp_path / "results" / "smoke" / name / "old" / "dropped.csv", (time.time() - 3600,) * 2)
    result = suite.run_suite("smoke", jobs=2, notebooks_dir=notebooks, results_root=tmp_path / "results",
                             progress=False)
    profile_dir = tmp_path / "results" / "smoke"

    assert not result.ok and [run.name for run in result.failures] == ["02_fails"]
    failed = result.failures[0]
    assert failed.error["ename"] == "ValueError" and failed.error["evalue"] == "made to fail on purpose"
    assert "02_fails" in result.summary() and "made to fail on purpose" in result.summary()

    error_nb = nbformat.read(profile_dir / "02_fails" / "02_fails.ipynb", as_version=4)
    assert any(o.get("ename") == "ValueError" for c in error_nb.cells if c.cell_type == "code" for o in c.outputs)
    assert error_nb.metadata.papermill.parameters.profile == "smoke"
    assert (profile_dir / "02_fails" / "before_failure.txt").read_text() == "smoke"
    assert not (profile_dir / "02_fails" / "never_written.txt").exists()

    ok_dir = profile_dir / "01_ok"
    assert {p.name for p in ok_dir.iterdir()} >= {"01_ok.ipynb", "scores.csv", "scores.tex", "scores.md",
                                                   "bars.pdf", "bars.png", "received.json", suite.STATUS_FILE}
    assert json.loads((ok_dir / "received.json").read_text()) == {"profile": "smoke", "scale": 1}
    # the successful run set the earlier run's file aside (not deleted); the failed one touched nothing
    assert not (ok_dir / "old").exists() and (ok_dir / ".previous" / "old" / "dropped.csv").read_text() == "a\n1\n"
    assert (profile_dir / "02_fails" / "old" / "dropped.csv").is_file()

    text = result.index.read_text()
    assert result.index == profile_dir / "index.md"
    assert re.search(r"\| 01_ok\]\(#01_ok\) \| ok \|", text.replace("[", "")) and "made to fail on purpose" in text
    links = set(_links(result.index))
    assert "01_ok/old/dropped.csv" not in links and "02_fails/old/dropped.csv" in links
    assert {"01_ok/01_ok.ipynb", "01_ok/scores.md", "01_ok/scores.csv", "01_ok/bars.png", "01_ok/bars.pdf",
            "02_fails/02_fails.ipynb"} <= links
    assert all((profile_dir / link).is_file() for link in links)


@pytest.mark.slow
def test_cli_exits_nonzero_naming_the_failed_notebook_and_its_error(notebooks, tmp_path, capsys):
    status = _cli("suite", "run", "--profile", "smoke", "--only", "02", "--no-progress",
                  "--notebooks-dir", str(notebooks), "--results-root", str(tmp_path))
    err = capsys.readouterr().err
    assert status == 1
    assert "02_fails: FAILED in cell" in err and "ValueError: made to fail on purpose" in err
    assert (tmp_path / "smoke" / "02_fails" / "02_fails.ipynb").is_file()
    assert not (tmp_path / "smoke" / "01_ok").exists()


# ------------------------------------------------- the suite's own notebooks, at the smoke profile
def _check_notebook_outputs(folder: Path) -> set[str]:
    """What STYLE.md asks of every notebook's output folder; returns the names of the files."""
    manifest = json.loads((folder / "manifest.json").read_text())
    for key in ("parameters", "seeds", "git", "versions", "text_encoder", "device", "wall_time_s"):
        assert key in manifest, f"{folder.name}/manifest.json lacks {key!r}"
    assert manifest["parameters"]["profile"] == "smoke"
    tables = sorted(folder.rglob("*.csv"))
    figures = sorted(folder.rglob("*.pdf"))
    assert tables, f"{folder.name} wrote no table"
    assert figures, f"{folder.name} wrote no figure"
    # paper tables come as CSV + LaTeX + Markdown; bulky per-image tables may be CSV only
    assert any(csv.with_suffix(".tex").is_file() and csv.with_suffix(".md").is_file() for csv in tables)
    for tex in folder.rglob("*.tex"):
        assert tex.with_suffix(".csv").is_file(), tex
    for pdf in figures:
        assert pdf.with_suffix(".png").is_file(), pdf
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize("notebook", suite.discover_notebooks(), ids=lambda p: p.stem)
def test_suite_notebook_meets_the_output_contract_at_smoke(notebook, smoke_suite):
    run = next(r for r in smoke_suite.runs if r.name == notebook.stem)
    assert run.ok, run.describe()
    _check_notebook_outputs(run.output_dir)
    assert (smoke_suite.root / "index.md").read_text().count(notebook.stem) >= 1


@pytest.mark.slow
def test_notebook01_by_hand_through_papermill_writes_what_the_runner_writes(smoke_suite, tmp_path):
    """Papermill used by hand works the same way as the runner (the trained models come from the store)."""
    import papermill

    notebook = suite.select_notebooks(suite.discover_notebooks(), ["01"])[0]
    by_runner = _check_notebook_outputs(next(r for r in smoke_suite.runs if r.name == notebook.stem).output_dir)
    by_hand = tmp_path / "by_hand"
    papermill.execute_notebook(str(notebook), str(tmp_path / f"{notebook.stem}.ipynb"),
                               parameters={"profile": "smoke", "output_dir": str(by_hand)},
                               kernel_name=suite.default_kernel(), cwd=str(suite.project_root()), progress_bar=False)
    assert _check_notebook_outputs(by_hand) | {f"{notebook.stem}.ipynb", suite.STATUS_FILE} == by_runner
    runner_dir = next(r for r in smoke_suite.runs if r.name == notebook.stem).output_dir
    for figure in ("delta_psnr_heatmap.pdf", "delta_psnr_heatmap.png", "channel_overlap_jaccard.pdf"):
        assert (by_hand / figure).read_bytes() == (runner_dir / figure).read_bytes(), f"{figure} differs on re-run"
