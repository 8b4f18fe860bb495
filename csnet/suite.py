"""The notebook suite: discover the notebooks, execute them headless through papermill, index the results.

Notebooks live in ``notebooks/NN_name.ipynb`` and run in the order of their number prefix. Each one
is executed with the parameters ``profile`` and ``output_dir`` (plus any extras) into
``results/<profile>/<stem>/``, where the executed notebook is saved as ``<stem>.ipynb`` beside the
tables, figures and ``manifest.json`` the notebook writes. A notebook that fails keeps its executed
copy (papermill marks the failing cell), the others still run, and the result names every failure.
After a run ``results/<profile>/index.md`` links everything found in the notebook folders.

The kernel: ``csnet`` when that kernelspec is installed in this interpreter's environment
(``make`` registers it with ``python -m ipykernel install --sys-prefix --name csnet``); otherwise
``python3``, which jupyter_client starts with the running interpreter (``sys.executable``), so the
notebooks always run with the packages of the environment that runs the suite.
"""
from __future__ import annotations

import ast
import concurrent.futures
import copy
import dataclasses
import io
import json
import multiprocessing
import os
import re
import sys
import time
import tokenize
from pathlib import Path
from typing import Iterable
from urllib.parse import quote

import nbformat

from csnet.io import atomic_write
from csnet.paths import project_root, results_dir
from csnet.profiles import PROFILE_NAMES

PARAMETERS_TAG = "parameters"
REQUIRED_PARAMETERS = ("profile", "output_dir")  # what the runner always passes
STATUS_FILE = "suite_run.json"  # per-notebook status the runner writes into each output folder
INDEX_FILE = "index.md"
FALLBACK_KERNEL = "python3"
PROJECT_KERNEL = "csnet"

_NOTEBOOK_NAME = re.compile(r"^(\d+)_.+\.ipynb$")
_TABLE_EXTS = (".md", ".csv", ".tex")
_FIGURE_EXTS = (".png", ".pdf", ".svg")


# ------------------------------------------------------------------------------------ discovery
def default_notebooks_dir() -> Path:
    """The suite's notebook folder, ``<project>/notebooks``."""
    return project_root() / "notebooks"


def discover_notebooks(directory: str | os.PathLike | None = None) -> list[Path]:
    """``NN_*.ipynb`` in ``directory`` (default :func:`default_notebooks_dir`), ordered by the number prefix
    (then by name). Checkpoint copies and files without a number prefix are not part of the suite."""
    directory = Path(directory) if directory is not None else default_notebooks_dir()
    if not directory.is_dir():
        raise FileNotFoundError(f"no notebook folder at {directory}: the suite expects notebooks/NN_name.ipynb")
    found = [p for p in directory.iterdir() if p.is_file() and _NOTEBOOK_NAME.match(p.name)]
    return sorted(found, key=lambda p: (int(_NOTEBOOK_NAME.match(p.name).group(1)), p.name))


def select_notebooks(notebooks: list[Path], only: Iterable[str] | str | None) -> list[Path]:
    """The notebooks ``only`` names, in suite order. Each name is a stem (``01_table1_…``), a number
    prefix (``01`` or ``1``), a file name or a path. An unknown name raises ``ValueError`` listing
    the notebooks."""
    if only is None:
        return list(notebooks)
    names = [only] if isinstance(only, str) else list(only)
    chosen: set[Path] = set()
    unknown = []
    for name in names:
        key = Path(str(name)).name
        key = key[: -len(".ipynb")] if key.endswith(".ipynb") else key
        matches = [nb for nb in notebooks
                   if nb.stem == key or (key.isdigit() and int(key) == int(nb.name.split("_", 1)[0]))]
        if matches:
            chosen.update(matches)
        else:
            unknown.append(name)
    if unknown:
        listing = "\n  ".join(nb.stem for nb in notebooks) or "(none found)"
        raise ValueError(f"unknown notebook(s) {', '.join(map(repr, unknown))}; the suite has:\n  {listing}")
    return [nb for nb in notebooks if nb in chosen]


def default_kernel() -> str:
    """``csnet`` if that kernelspec is installed in this environment (``sys.prefix``), else ``python3``."""
    spec = Path(sys.prefix) / "share" / "jupyter" / "kernels" / PROJECT_KERNEL / "kernel.json"
    return PROJECT_KERNEL if spec.is_file() else FALLBACK_KERNEL


# ----------------------------------------------------------------------------------- parameters
def notebook_parameters(path: str | os.PathLike) -> dict[str, dict]:
    """The parameters declared in a notebook's ``parameters`` cell, in order: name →
    ``{"type", "default", "help"}`` (annotation and default as source text, help from the comment
    on the line). Raises ``ValueError`` if no cell carries the tag or the cell is not Python.

    Read with Python's own parser: papermill's ``inspect_notebook`` silently skips any line with a
    second ``=`` (``x: int = 1  # None = off``), which would make a declared parameter look unknown.
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    cell = next((c for c in nb.cells if PARAMETERS_TAG in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        raise ValueError(f"{path}: no cell is tagged {PARAMETERS_TAG!r}; papermill would inject the "
                         "parameters at the top, before the defaults, and they would be overwritten")
    source = cell.source
    try:
        tree = ast.parse(source)
        comments = {tok.start[0]: tok.string.lstrip("#").strip()
                    for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                    if tok.type == tokenize.COMMENT}
    except (SyntaxError, tokenize.TokenError) as err:
        raise ValueError(f"{path}: its parameters cell is not plain Python ({err}); keep it to assignments") from err
    params: dict[str, dict] = {}
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets, annotation = [node.target], ast.unparse(node.annotation)
        elif isinstance(node, ast.Assign):
            targets = [t for target in node.targets
                       for t in (target.elts if isinstance(target, ast.Tuple) else [target])
                       if isinstance(t, ast.Name)]
            annotation = None
        else:
            continue
        default = ast.get_source_segment(source, node.value) if node.value is not None else None
        help_text = comments.get(node.end_lineno) or comments.get(node.lineno)
        for target in targets:
            params[target.id] = {"type": annotation, "default": default, "help": help_text}
    return params


def validate_parameters(path: str | os.PathLike, params: dict) -> None:
    """Raise ``ValueError`` unless every key of ``params`` is declared in the notebook's
    ``parameters`` cell (papermill itself only warns about unknown parameters)."""
    declared = notebook_parameters(path)
    unknown = [name for name in params if name not in declared]
    if unknown:
        raise ValueError(f"{Path(path).name}: unknown parameter(s) {', '.join(unknown)}; "
                         f"its parameters cell declares: {', '.join(declared) or '(nothing)'}")


def parse_parameter_value(text: str):
    """A ``-p KEY VALUE`` value, read as papermill's ``-p`` reads it (int, float, True/False/None,
    else a string), except that a value starting with ``[`` or ``{`` is read as YAML, so lists
    such as ``-p seeds "[0, 1, 2]"`` arrive as lists (papermill's ``-p`` keeps them as strings)."""
    import yaml

    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    if text.lstrip().startswith(("[", "{")):
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ValueError(f"parameter value {text!r} looks like a list or mapping but is not valid YAML: {err}") from err
    return text


# ------------------------------------------------------------------------------------ execution
@dataclasses.dataclass
class NotebookRun:
    """How one notebook's execution went."""

    name: str  # the notebook's stem
    notebook: Path  # the source notebook
    output_dir: Path  # results/<profile>/<stem>/
    executed: Path  # the executed copy, kept also when the notebook failed
    status: str  # "ok" or "failed"
    wall_time_s: float | None  # None when the worker process died
    error: dict | None = None  # {"ename", "evalue", "cell_index", "exec_count"} when failed

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def describe(self) -> str:
        """One line: the notebook, and for a failure the cell and the error."""
        if self.ok:
            return f"{self.name}: ok ({_duration(self.wall_time_s)})"
        err = self.error or {}
        where = f" in cell [{err['exec_count']}]" if err.get("exec_count") is not None else ""
        return (f"{self.name}: FAILED{where}: {err.get('ename', 'Error')}: {err.get('evalue', '')} "
                f"(executed notebook kept at {self.executed})")


@dataclasses.dataclass
class SuiteResult:
    """Everything a suite run did."""

    profile: str
    root: Path  # results/<profile>/
    runs: list[NotebookRun]
    index: Path  # results/<profile>/index.md

    @property
    def ok(self) -> bool:
        return all(run.ok for run in self.runs)

    @property
    def failures(self) -> list[NotebookRun]:
        return [run for run in self.runs if not run.ok]

    def summary(self) -> str:
        lines = [run.describe() for run in self.runs]
        verdict = ("all notebooks ran" if self.ok else
                   f"{len(self.failures)} of {len(self.runs)} notebook(s) failed: "
                   + ", ".join(run.name for run in self.failures))
        return "\n".join(lines + [f"{verdict}; index: {self.index}"])


def _execute(job: dict) -> dict:
    """Run one notebook through papermill; never raises (it also runs in worker processes, where
    papermill's exceptions would not survive pickling), returns the outcome as a plain dict."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    output_dir = Path(job["executed"]).parent
    output_dir.mkdir(parents=True, exist_ok=True)
    began = time.time()
    started = time.perf_counter()
    error = None
    try:
        papermill.execute_notebook(
            job["notebook"], job["executed"], parameters=job["parameters"], kernel_name=job["kernel"],
            cwd=job["cwd"], log_output=False, progress_bar=False,
        )
    except PapermillExecutionError as err:
        error = {"ename": err.ename, "evalue": err.evalue, "cell_index": err.cell_index,
                 "exec_count": err.exec_count}
    except Exception as err:  # a dead kernel, a missing kernelspec, an unwritable folder: still a failure to report
        error = {"ename": type(err).__name__, "evalue": str(err), "cell_index": None, "exec_count": None}
    wall_time_s = time.perf_counter() - started
    _relativise_recorded_paths(Path(job["executed"]), Path(job["cwd"]))
    # 2 s of slack: file times tick more coarsely than time.time(), and an earlier run is older anyway
    moved = [] if error else set_aside_stale(output_dir, began - 2.0)
    return {"name": job["name"], "error": error, "wall_time_s": wall_time_s, "set_aside": moved}


PREVIOUS_DIR = ".previous"  # inside a notebook's output folder: files an earlier run wrote and this one did not


def set_aside_stale(output_dir: str | os.PathLike, since: float) -> list[str]:
    """After a successful run, move the files of ``output_dir`` not written since ``since`` (an earlier
    run's table or figure this run no longer makes) into ``output_dir/.previous/``, keeping their relative
    paths, so that the folder and the index show one run's output only; nothing is deleted. A failed run
    leaves the folder alone. Returns the moved paths, relative to ``output_dir``."""
    output_dir = Path(output_dir)
    moved = []
    for path in sorted(output_dir.rglob("*")):
        relative = path.relative_to(output_dir)
        if (not path.is_file() or relative.parts[0] == PREVIOUS_DIR or path.name == STATUS_FILE
                or path.stat().st_mtime >= since):
            continue
        target = output_dir / PREVIOUS_DIR / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        moved.append(relative.as_posix())
    for folder in sorted((d for d in output_dir.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts)):
        if PREVIOUS_DIR not in folder.relative_to(output_dir).parts and not any(folder.iterdir()):
            folder.rmdir()  # a subfolder only the earlier run used
    return moved


def _relativise_recorded_paths(executed: Path, cwd: Path) -> None:
    """Papermill records the absolute input and output paths in the executed notebook; keep them
    relative to the project instead, so committed results do not name someone's checkout."""
    if not executed.is_file():
        return
    nb = nbformat.read(executed, as_version=4)
    recorded = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        if recorded.get(key):
            recorded[key] = _relative_to_cwd(Path(recorded[key]), cwd)
    with atomic_write(executed) as tmp:
        nbformat.write(nb, tmp)


def _relative_to_cwd(path: Path, cwd: Path) -> str:
    """``path`` relative to the kernel's working directory when inside it, so executed notebooks
    do not record the absolute location of someone's checkout."""
    try:
        return path.resolve().relative_to(cwd.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def checked_selection(profile: str, only: Iterable[str] | str | None, jobs: int, params: dict | None,
                      notebooks_dir: str | os.PathLike | None) -> tuple[list[Path], dict]:
    """The notebooks a suite run (or its compute plan) covers, and its extra parameters, after checking
    the profile, ``jobs`` and that no parameter is one the runner sets itself."""
    if profile not in PROFILE_NAMES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILE_NAMES)}")
    if int(jobs) < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs!r}")
    params = dict(params or {})
    clash = [k for k in REQUIRED_PARAMETERS if k in params]
    if clash:
        raise ValueError(f"{', '.join(clash)} are set by the runner; use the profile argument and results_root "
                         "instead")
    directory = Path(notebooks_dir) if notebooks_dir is not None else default_notebooks_dir()
    selected = select_notebooks(discover_notebooks(directory), only)
    if not selected:
        raise FileNotFoundError(f"no NN_name.ipynb notebooks in {directory}")
    return selected, params


def run_suite(profile: str, only: Iterable[str] | str | None = None, jobs: int = 1,
              results_root: str | os.PathLike | None = None, extra_params: dict | None = None,
              progress: bool = True, *, notebooks_dir: str | os.PathLike | None = None,
              kernel: str | None = None) -> SuiteResult:
    """Execute the suite's notebooks (or those ``only`` names) at ``profile``.

    - ``jobs``: notebooks run in parallel worker processes when > 1 (trained models are shared
      through the run store, which locks, so this is safe);
    - ``results_root``: default :func:`csnet.paths.results_dir` (``CSNET_RESULTS``);
    - ``extra_params``: passed to every selected notebook, each of which must declare them;
    - ``notebooks_dir``: where to find ``NN_*.ipynb`` (default ``<project>/notebooks``);
    - ``kernel``: default :func:`default_kernel`.

    Every notebook's parameters are checked before any runs. A failing notebook does not stop the
    others; inspect :attr:`SuiteResult.failures`. Writes ``<root>/<profile>/index.md`` at the end.
    """
    selected, extra_params = checked_selection(profile, only, jobs, extra_params, notebooks_dir)  # before any kernel

    root = Path(results_root) if results_root is not None else results_dir()
    profile_dir = root / profile
    cwd = project_root()
    kernel = kernel or default_kernel()

    planned = []
    for nb in selected:
        output_dir = profile_dir / nb.stem
        params = {"profile": profile, "output_dir": _relative_to_cwd(output_dir, cwd), **extra_params}
        validate_parameters(nb, params)
        planned.append({"name": nb.stem, "notebook": str(nb), "executed": str(output_dir / f"{nb.stem}.ipynb"),
                          "parameters": params, "kernel": kernel, "cwd": str(cwd)})

    outcomes = _run_jobs(planned, int(jobs), progress, profile)

    runs = []
    for job in planned:
        outcome = outcomes[job["name"]]
        run = NotebookRun(name=job["name"], notebook=Path(job["notebook"]), output_dir=Path(job["executed"]).parent,
                          executed=Path(job["executed"]), status="failed" if outcome["error"] else "ok",
                          wall_time_s=outcome["wall_time_s"], error=outcome["error"])
        _write_status(run, profile, kernel)
        runs.append(run)
    index = write_index(profile_dir)
    return SuiteResult(profile=profile, root=profile_dir, runs=runs, index=index)


def _run_jobs(planned: list[dict], jobs: int, progress: bool, profile: str) -> dict[str, dict]:
    from tqdm.auto import tqdm

    outcomes: dict[str, dict] = {}
    bar = tqdm(total=len(planned), desc=f"suite {profile}", unit="notebook", disable=not progress)
    try:
        if jobs == 1 or len(planned) == 1:
            for job in planned:
                bar.set_postfix_str(job["name"])
                outcomes[job["name"]] = outcome = _execute(job)
                _report(bar, outcome, progress)
        else:
            # spawn: a fresh interpreter per worker, no forked copy of this process's threads or kernels
            context = multiprocessing.get_context("spawn")
            workers = min(jobs, len(planned))
            with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                                        initializer=_share_cores, initargs=(workers,)) as pool:
                futures = {pool.submit(_execute, job): job for job in planned}
                for future in concurrent.futures.as_completed(futures):
                    try:
                        outcome = future.result()
                    except Exception as err:  # the worker process itself died (e.g. killed for memory)
                        outcome = {"name": futures[future]["name"], "wall_time_s": None,
                                   "error": {"ename": type(err).__name__, "evalue": str(err) or "worker process died",
                                             "cell_index": None, "exec_count": None}}
                    outcomes[outcome["name"]] = outcome
                    _report(bar, outcome, progress)
    finally:
        bar.close()
    return outcomes


def _share_cores(workers: int) -> None:
    """Give each parallel notebook's kernel its share of the cores (unless the user set a thread count).

    torch's intra-op threads spin while they wait; with more busy threads than cores a small network runs
    many times slower (measured here: 0.06 s against 0.9 s per step on 2 cores under load)."""
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))


def _report(bar, outcome: dict, progress: bool) -> None:
    if progress:
        status = "ok" if outcome["error"] is None else f"FAILED ({outcome['error']['ename']})"
        moved = outcome.get("set_aside") or []
        aside = f"; {len(moved)} file(s) of an earlier run moved to {PREVIOUS_DIR}/" if moved else ""
        bar.write(f"  {outcome['name']}: {status} in {_duration(outcome['wall_time_s'])}{aside}")
    bar.update()


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _write_status(run: NotebookRun, profile: str, kernel: str) -> None:
    record = {"notebook": run.notebook.name, "profile": profile, "status": run.status,
              "wall_time_s": None if run.wall_time_s is None else round(run.wall_time_s, 3), "kernel": kernel, "error": run.error}
    with atomic_write(run.output_dir / STATUS_FILE) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------- index
def write_index(profile_dir: str | os.PathLike) -> Path:
    """Write ``<profile_dir>/index.md`` (atomically): per notebook folder, its status and wall time
    from the last suite run, relative links to its executed notebook, tables, figures and other
    files, and every figure shown as an image (its PNG), so the whole study reads on one page. Folders the suite never ran but that hold an executed ``<stem>.ipynb`` are listed with
    status "unknown"."""
    profile_dir = Path(profile_dir)
    folders = sorted((d for d in profile_dir.iterdir() if d.is_dir() and not d.name.startswith(".")
                      and ((d / STATUS_FILE).is_file() or (d / f"{d.name}.ipynb").is_file())),
                     key=_suite_order) if profile_dir.is_dir() else []
    lines = [f"# Results: profile `{profile_dir.name}`", "",
             "Written by `csnet suite run`; links are relative to this file.", ""]
    if folders:
        lines += ["| notebook | status | wall time |", "|---|---|---|"]
        for folder in folders:
            status = _read_status(folder)
            lines.append(f"| [{folder.name}](#{_anchor(folder.name)}) | {status['status']} | "
                         f"{_duration(status.get('wall_time_s'))} |")
        lines.append("")
    else:
        lines += ["No notebook has written results here yet.", ""]
    for folder in folders:
        lines += _index_section(profile_dir, folder)
    path = profile_dir / INDEX_FILE
    profile_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        tmp.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return path


def _suite_order(folder: Path):
    match = re.match(r"^(\d+)_", folder.name)
    return (int(match.group(1)) if match else sys.maxsize, folder.name)


def _anchor(name: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "", name.lower().replace(" ", "-"))


def _read_status(folder: Path) -> dict:
    try:
        return json.loads((folder / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"status": "unknown (not run by the suite)", "wall_time_s": None, "error": None}


def _link(profile_dir: Path, path: Path, text: str | None = None) -> str:
    rel = path.relative_to(profile_dir).as_posix()
    return f"[{text or path.name}]({quote(rel)})"


def _index_section(profile_dir: Path, folder: Path) -> list[str]:
    status = _read_status(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts)
                   and p.name != STATUS_FILE)
    executed = folder / f"{folder.name}.ipynb"
    lines = [f"## {folder.name}", "", f"- status: **{status['status']}**"]
    if status.get("wall_time_s") is not None:
        lines.append(f"- wall time: {_duration(status['wall_time_s'])}")
    if status.get("error"):
        err = status["error"]
        cell = f" in cell [{err['exec_count']}]" if err.get("exec_count") is not None else ""
        lines.append(f"- error{cell}: `{err.get('ename')}: {_one_line(err.get('evalue', ''))}`")
    if executed in files:
        lines.append(f"- executed notebook: {_link(profile_dir, executed)}")

    def grouped(exts: tuple[str, ...]) -> dict[Path, list[Path]]:
        groups: dict[Path, list[Path]] = {}
        for p in files:
            if p.suffix in exts and p != executed:
                groups.setdefault(p.with_suffix(""), []).append(p)
        return groups

    tables = grouped(_TABLE_EXTS)
    figures = grouped(_FIGURE_EXTS)
    shown = {p for group in (*tables.values(), *figures.values()) for p in group} | {executed}
    for title, groups, exts in (("tables", tables, _TABLE_EXTS), ("figures", figures, _FIGURE_EXTS)):
        if groups:
            lines.append(f"- {title}:")
            for stem, paths in groups.items():
                links = " · ".join(_link(profile_dir, p, p.suffix[1:])
                                   for p in sorted(paths, key=lambda q: exts.index(q.suffix)))
                lines.append(f"  - {stem.relative_to(folder).as_posix()}: {links}")
    others = [p for p in files if p not in shown]
    if others:
        lines.append("- other files: " + ", ".join(_link(profile_dir, p, p.relative_to(folder).as_posix())
                                                   for p in others))
    gallery = [p for paths in figures.values() for p in paths if p.suffix == ".png"]
    if gallery:
        lines += ["", f"### {folder.name}: figures", ""]
        for png in gallery:
            name = png.with_suffix("").relative_to(folder).as_posix()
            lines += [f"**{name}**", "", f"![{name}]({quote(png.relative_to(profile_dir).as_posix())})", ""]
    return lines + [""]


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split()).replace("`", "'")
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------------------------ stripping
_VOLATILE_CELL_METADATA = ("execution", "papermill")  # timings papermill/JupyterLab add on every run
_VOLATILE_NOTEBOOK_METADATA = ("papermill",)


def strip_outputs(path: str | os.PathLike, *, check_only: bool = False) -> bool:
    """Remove outputs, execution counts and run timings from a notebook, in place and atomically.

    Cell tags and all other metadata stay (the ``parameters`` tag must survive, or papermill
    injects parameters in the wrong place). Returns whether the file changed (with
    ``check_only``: whether it would, leaving it untouched).
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    before = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for key in _VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
    for key in _VOLATILE_NOTEBOOK_METADATA:
        nb.metadata.pop(key, None)
    if nb == before:  # compared as data: a clean notebook is never rewritten for formatting alone
        return False
    if not check_only:
        with atomic_write(path) as tmp:
            nbformat.write(nb, tmp)
    return True
