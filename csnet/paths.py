"""Where the suite keeps its caches, trained runs and results.

Every location can be moved by an environment variable, so that a cluster job, a test or a second
checkout can point the suite elsewhere without touching code:

- ``CSNET_CACHE``: cached test sets and text embeddings (default ``<project>/.cache``);
- ``CSNET_RUNS``: the run store of trained models. Default: ``<CSNET_CACHE>/runs`` when ``CSNET_CACHE``
  is set, else the user's cache, ``$XDG_CACHE_HOME/csnet/runs`` or ``~/.cache/csnet/runs`` (the
  convention of torch and Hugging Face caches), so trained models outlive a checkout and a fresh clone
  on the same machine reuses them;
- ``CSNET_RESULTS``: what the notebooks write (default ``<project>/results``).
"""
from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The checkout this package was installed from (editable install) or the working directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def cache_dir(*parts: str) -> Path:
    """A folder under the cache root, created on first use."""
    root = Path(os.environ.get("CSNET_CACHE", project_root() / ".cache"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def user_cache_root() -> Path:
    """The user's cache folder for this suite: ``$XDG_CACHE_HOME/csnet``, else ``~/.cache/csnet``
    (not created)."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "csnet"


def runs_root() -> Path:
    """Where the run store lives (not created): ``CSNET_RUNS``, else ``<CSNET_CACHE>/runs`` when
    ``CSNET_CACHE`` is set, else ``user_cache_root() / "runs"``."""
    override = os.environ.get("CSNET_RUNS")
    if override:
        return Path(override)
    if os.environ.get("CSNET_CACHE"):
        return Path(os.environ["CSNET_CACHE"]) / "runs"
    return user_cache_root() / "runs"


def runs_dir() -> Path:
    """The run store's root folder, created on first use."""
    path = runs_root()
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir(*parts: str) -> Path:
    """A folder under the results root (not created: callers decide)."""
    return Path(os.environ.get("CSNET_RESULTS", project_root() / "results")).joinpath(*parts)
