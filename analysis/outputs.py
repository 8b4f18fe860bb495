"""A notebook's output folder: tables, figures, JSON and the manifest, all written atomically.

Every notebook writes through one :class:`OutputDir`, so that what it produced is uniform (CSV for
data, LaTeX and Markdown for papers, PDF and PNG for figures) and reproducible: figures carry no
creation dates and are byte-identical when re-drawn from the same numbers, and ``manifest.json``
records what produced them (parameters, seeds, git commit, package versions, text encoder, device,
wall time), without host or user names.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from csnet.io import atomic_write
from csnet.paths import project_root

# Distributions whose versions go into every manifest (PyPI names).
MANIFEST_PACKAGES = (
    "torch", "numpy", "pandas", "scipy", "scikit-image", "scikit-learn", "captum", "open_clip_torch",
    "wordllama", "matplotlib", "seaborn", "papermill", "csnet-suite",
)

# Metadata that would otherwise differ between two saves of the same figure.
_PDF_METADATA = {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None}
_PNG_METADATA = {"Software": None}

FloatFormat = str | Callable[[float], str] | None


class OutputDir:
    """The folder a notebook writes into (created if missing).

    ``started`` is when the work began (``time.time()`` seconds or an aware ``datetime``); by default
    the moment this object is created. The manifest's wall time counts from it. The checkout's git state
    is read here too, so that the manifest names the code that began the work, not whatever the checkout
    holds when the work ends.
    """

    def __init__(self, path: str | os.PathLike, *, started: float | dt.datetime | None = None):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        if isinstance(started, dt.datetime):
            started = started.timestamp()
        self.started = time.time() if started is None else float(started)
        self.git_at_start = git_state()
        self._written: list[Path] = []

    def __repr__(self) -> str:
        return f"OutputDir({str(self.path)!r})"

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    # ----------------------------------------------------------------------------------- tables
    def table(self, df: pd.DataFrame, name: str, *, index: bool = False, caption: str | None = None,
              float_format: FloatFormat = None, formats: tuple[str, ...] = ("csv", "tex", "md"),
              higher_is_better: Sequence[str] = (), lower_is_better: Sequence[str] = (),
              best_rows: Sequence[bool] | None = None) -> "Written":
        """Write ``name.csv`` (full precision) and, for a paper-sized table, ``name.tex`` (booktabs
        ``table`` float with caption and label ``tab:<name>``) and ``name.md``, rendered by
        :mod:`analysis.tables` (PSNR 2 decimals, SSIM 3, p-values 2 significant digits, counts as
        integers, mean ± std merged, best bold in the declared columns, symbols in math mode).

        ``float_format`` ("{:.2f}", "%.2f" or a callable) formats the floats no rule covers.
        ``formats`` picks the copies (the CSV always); a table longer than
        :data:`analysis.tables.LONG_TABLE_ROWS` rows is data and gets the CSV only. ``caption`` is plain
        text (escaped for LaTeX); without one the table's name is its caption.
        ``higher_is_better`` / ``lower_is_better`` name the numeric columns whose best value is bold,
        among ``best_rows`` (default: every row). Returns ``{"csv": path, "tex": path, "md": path}``.
        """
        from analysis import tables

        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"table {name!r}: expected a pandas DataFrame, got {type(df).__name__}")
        unknown = set(formats) - {"csv", "tex", "md"}
        if unknown or "csv" not in formats:
            raise ValueError(f"formats must include 'csv' and be among csv, tex, md; got {formats}")
        tables._generic(float_format)  # rejects a malformed format before anything is written
        if len(df) > tables.LONG_TABLE_ROWS:
            formats = ("csv",)
        paths = {ext: self.path / f"{name}.{ext}" for ext in formats}

        with atomic_write(paths["csv"]) as tmp:
            df.to_csv(tmp, index=index, lineterminator="\n")
        if "tex" in paths or "md" in paths:
            shown, bold, numeric = tables.display_frame(df, float_format=float_format,
                                                        higher_is_better=higher_is_better,
                                                        lower_is_better=lower_is_better, best_rows=best_rows)
            if "tex" in paths:
                _write_text(paths["tex"], tables.to_latex(shown, bold, numeric, index=index, label=f"tab:{name}",
                                                          caption=caption or name.replace("_", " ")))
            if "md" in paths:
                _write_text(paths["md"], tables.to_markdown(shown, bold, numeric, caption=caption, index=index))

        self._record(*paths.values())
        return Written(paths, self.path)

    # ---------------------------------------------------------------------------------- figures
    def figure(self, fig, name: str, *, dpi: int = 300, close: bool = True) -> dict[str, Path]:
        """Save ``fig`` as ``name.pdf`` and ``name.png`` with fonts embedded and no dates, so the
        same figure gives the same bytes run after run; then show it inline when running in a Jupyter
        kernel (so executed notebooks carry the plot) and close it. With ``close=False`` the figure stays
        open and the notebook's own backend shows it. Returns ``{"pdf": path, "png": path}``."""
        import matplotlib as mpl
        import matplotlib.pyplot as plt

        from analysis.style import REPRODUCIBLE_RC

        paths = {ext: self.path / f"{name}.{ext}" for ext in ("pdf", "png")}
        with mpl.rc_context(REPRODUCIBLE_RC):
            with atomic_write(paths["pdf"]) as tmp:
                fig.savefig(tmp, format="pdf", metadata=_PDF_METADATA)
            with atomic_write(paths["png"]) as tmp:
                fig.savefig(tmp, format="png", dpi=dpi, metadata=_PNG_METADATA)
        if close:
            if in_kernel():
                from IPython.display import display

                display(fig)
            plt.close(fig)
        self._record(*paths.values())
        return Written(paths, self.path)

    def data(self, df: pd.DataFrame, name: str) -> Path:
        """A long data table (one row per image, patch or channel) as ``name`` — CSV only, gzipped when
        ``name`` ends in ``.gz`` (:func:`write_csv`) — recorded in the manifest under that exact name."""
        path = write_csv(df, self.path / name)
        self._record(path)
        return WrittenPath(path)

    # ------------------------------------------------------------------------------------- json
    def json(self, obj: Any, name: str) -> Path:
        """Write ``obj`` as ``name.json`` (``name`` may already end in ``.json``).

        numpy scalars and arrays, paths, dataclasses, sets and pandas objects are converted; NaN and
        infinities become ``null`` so the file is strict JSON.
        """
        path = self.path / (name if name.endswith(".json") else f"{name}.json")
        _write_text(path, json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")
        self._record(path)
        return WrittenPath(path)

    # --------------------------------------------------------------------------------- manifest
    def manifest(self, params: dict, *, seeds=None, text_encoder: dict | None = None,
                 device: str | None = None, extra: dict | None = None) -> Path:
        """Write ``manifest.json``: what produced this folder.

        - ``parameters``: the notebook's parameters as given;
        - ``seeds``: the seeds used;
        - ``git``: ``{"commit": sha or None, "dirty": bool or None}`` of the project checkout when this
          object was created (``None`` outside a git repository or before the first commit; *dirty*
          counts tracked files only); ``git_changed_during_run``: the state now, present only when the
          checkout changed while the work ran (a commit or an edit meanwhile);
        - ``versions``: Python and the packages in :data:`MANIFEST_PACKAGES` (``None`` if absent);
        - ``text_encoder``: the encoder really used (its ``.info``), not the one asked for;
        - ``device``: ``device`` as used (e.g. ``"cuda:0"``), or what torch finds when not given;
        - ``started_utc``, ``wall_time_s``: counted from ``started`` (see the class);
        - ``files``: what this object wrote before the manifest, relative to the folder;
        - ``extra``: anything else the notebook wants recorded.

        No host name, user name or absolute path is recorded by this method.
        """
        wall = time.time() - self.started
        git_now = git_state()
        record = {
            "parameters": params,
            "seeds": seeds,
            "git": self.git_at_start,
            "versions": package_versions(),
            "text_encoder": text_encoder,
            "device": device_info(device),
            "started_utc": dt.datetime.fromtimestamp(self.started, dt.timezone.utc).isoformat(timespec="seconds"),
            "wall_time_s": round(wall, 3),
            "files": [p.relative_to(self.path).as_posix() for p in self._written],
            "extra": extra,
        }
        if git_now != self.git_at_start:
            record["git_changed_during_run"] = git_now
        return self.json(record, "manifest")

    def files(self) -> list[Path]:
        """Every file written through this object, in order (a file written twice appears once)."""
        return list(self._written)

    def _record(self, *paths: Path) -> None:
        for path in paths:
            if path not in self._written:
                self._written.append(path)


# ------------------------------------------------------------------------------------- helpers
class Written(dict):
    """``{kind: path}`` of what a write produced; shown by its file names only, so that a notebook
    cell ending in ``out.table(...)`` or ``out.figure(...)`` prints no absolute path."""

    def __init__(self, paths: dict[str, Path], root: Path):
        super().__init__(paths)
        self._root = root

    def __repr__(self) -> str:
        return "written: " + ", ".join(p.name for p in self.values())

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(repr(self))


class WrittenPath(type(Path())):
    """A path that shows as its file name only (see :class:`Written`)."""

    def __repr__(self) -> str:
        return f"written: {self.name}"

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(repr(self))


def in_kernel() -> bool:
    """Whether this code runs in a Jupyter kernel (JupyterLab, papermill), where figures display inline."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def write_csv(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """A long data table as CSV only, atomically (no LaTeX or Markdown copy: too long to read).
    A path ending in ``.gz`` is gzip-compressed without a name or time in the header, so equal tables
    give equal bytes (notebook 04's per-patch predictions at cpu: 8.2 MB as text, 0.26 MB compressed;
    pandas reads either as it is)."""
    import gzip

    from csnet.io import atomic_write

    path = Path(path)
    with atomic_write(path) as tmp:
        if path.name.endswith(".gz"):
            tmp.write_bytes(gzip.compress(df.to_csv(index=False, lineterminator="\n").encode(), mtime=0))
        else:
            df.to_csv(tmp, index=False, lineterminator="\n")
    return path


def _write_text(path: Path, text: str) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def to_jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON types (see :meth:`OutputDir.json`)."""
    if obj is None or isinstance(obj, (bool, str, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (os.PathLike,)):
        return Path(obj).as_posix()
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return [to_jsonable(v) for v in sorted(obj, key=repr)]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, pd.DataFrame):
        return to_jsonable(obj.to_dict(orient="records"))
    if isinstance(obj, pd.Series):
        return to_jsonable(obj.to_dict())
    if isinstance(obj, (dt.datetime, dt.date, pd.Timestamp)):
        return obj.isoformat()
    raise TypeError(f"cannot write a {type(obj).__name__} to JSON: convert it to numbers, strings, lists or dicts")


def git_state(root: str | os.PathLike | None = None) -> dict:
    """``{"commit": HEAD sha or None, "dirty": bool or None}`` for the checkout at ``root``
    (default: the project root). Untracked files (e.g. fresh results) do not make it dirty."""
    root = Path(root) if root is not None else project_root()

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    if git("rev-parse", "--is-inside-work-tree") != "true":
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "--verify", "--quiet", "HEAD") or None,
            "dirty": None if status is None else bool(status)}


def package_versions(packages: tuple[str, ...] = MANIFEST_PACKAGES) -> dict[str, str | None]:
    """Python's version and each distribution's installed version (``None`` when not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_info(device: str | None = None) -> dict:
    """What computed the results: ``{"type": "cpu"|"cuda", "name": ..., "torch_threads": n}``.

    ``device`` is the device the notebook used; when ``None``, CUDA is reported if torch sees it.
    """
    import torch

    kind = torch.device(device).type if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
    info: dict[str, Any] = {"type": kind, "torch_threads": torch.get_num_threads()}
    if kind == "cuda":
        index = torch.device(device).index if device is not None else None
        index = torch.cuda.current_device() if index is None else index
        info["name"] = torch.cuda.get_device_name(index)
        info["cuda"] = torch.version.cuda
    else:
        info["name"] = _cpu_model() or platform.machine()
    return info


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None
