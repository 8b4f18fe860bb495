"""A study's design: how many seeds each comparison gets, and re-analysis of a study's committed
per-image tables without training (``reuse_tables``).

The headline comparisons (Table I own channels against the baseline; hard_select against none,
soft_gate and cross_attention; the recogniser comparisons) need more seeds than the rest to detect
sub-dB differences: at the cpu profile they default to at least ``HEADLINE_MIN_SEEDS["cpu"]`` seeds,
the other comparisons to the profile's seeds (3 at cpu). Which effect a design can detect is
:func:`analysis.stats.design_sentence`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

HEADLINE_MIN_SEEDS = {"cpu": 5}  # profile name → at least this many seeds for the headline comparisons
OTHER_MIN_SEEDS = {"cpu": 3}
SKIPPED = "Skipped with `reuse_tables=True` (it needs the trained models): {what}."


def _extend(seeds: Sequence[int], n: int) -> list[int]:
    seeds = list(dict.fromkeys(int(s) for s in seeds))
    extra = (s for s in range(max(seeds, default=-1) + 1, 10**6))
    while len(seeds) < n:
        seeds.append(next(extra))
    return seeds


def study_seeds(profile, seeds: Iterable[int] | None = None) -> list[int]:
    """The seeds of a study's ordinary comparisons: ``seeds`` when given, else the profile's, extended to
    ``OTHER_MIN_SEEDS`` of the profile (consecutive new seeds after the largest)."""
    if seeds is not None:
        return list(seeds)
    return _extend(profile.seeds, OTHER_MIN_SEEDS.get(profile.name, 0))


def headline_seeds(profile, seeds: Iterable[int] | None = None, *, base: Sequence[int] = ()) -> list[int]:
    """The seeds of a study's headline comparisons: ``seeds`` when given, else ``base`` (the study's
    seeds) extended to ``HEADLINE_MIN_SEEDS`` of the profile (≥ 5 at cpu)."""
    if seeds is not None:
        return list(seeds)
    start = list(base) or list(profile.seeds)
    return _extend(start, HEADLINE_MIN_SEEDS.get(profile.name, len(start)))


def read_table(folder: str | Path, name: str) -> pd.DataFrame:
    """A per-image table a previous run of the notebook wrote into ``folder`` (``name`` with its
    suffix, e.g. ``per_image.csv`` or ``importance.csv.gz``)."""
    path = Path(folder) / name
    if not path.is_file():
        present = sorted(p.name for p in Path(folder).glob("*.csv*")) if Path(folder).is_dir() else []
        raise FileNotFoundError(f"reuse_tables=True needs {path}, which is missing; run the notebook once without "
                                f"reuse_tables to write it (tables present: {present or 'none'})")
    return pd.read_csv(path)


def previous_manifest(folder: str | Path) -> dict:
    """The manifest of the run that wrote the reused tables (its runs, seeds and text encoder)."""
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"reuse_tables=True needs {path} (the manifest of the run that trained the models)")
    return json.loads(path.read_text())


def skipped(what: str) -> str:
    """The sentence a notebook shows for a section that needs the trained models in reuse mode."""
    return SKIPPED.format(what=what)


def keep(folder: str | Path, names: Iterable[str]) -> list[Path]:
    """Mark files an earlier run wrote into ``folder`` and this run keeps unchanged (the reused per-image
    tables, the figures of sections that need the models) as part of this run, by touching them, so the
    suite runner does not set them aside as stale. Missing names are ignored; returns the touched paths."""
    touched = []
    for name in names:
        for path in sorted(Path(folder).glob(name)):
            if path.is_file():
                path.touch()
                touched.append(path)
    return touched


PAIRED_SEEDS_SINCE = 2  # csnet.profiles.TRAINING_VERSION from which seeds pair across mechanisms (issue 12)


def runs_training_version(reuse_tables: bool, previous: dict | None = None) -> int:
    """The ``TRAINING_VERSION`` the study's models were trained at: this code's when the notebook trains
    (the run store reaches only runs of the current version), the one the previous manifest recorded when
    it re-analyses committed tables (``extra.training_version``; a manifest without it predates the
    field, whose runs were trained at version 1)."""
    from csnet.profiles import TRAINING_VERSION

    if not reuse_tables:
        return TRAINING_VERSION
    return int(((previous or {}).get("extra") or {}).get("training_version", 1))


def seeds_pair(training_version: int, paired_seeds: bool | None = None) -> bool:
    """Whether a comparison across mechanisms may pair its seeds. Since ``TRAINING_VERSION`` 2 every
    mechanism starts at a seed from the same backbone weights and sees the same batches, so per-seed
    differences pair (paired t); before, they did not (Welch t). ``paired_seeds`` None follows the models'
    version; True for models that do not pair is refused, False (Welch) is always allowed."""
    pairs = training_version >= PAIRED_SEEDS_SINCE
    if paired_seeds is None:
        return pairs
    if paired_seeds and not pairs:
        raise ValueError(f"paired_seeds=True, but these models were trained at TRAINING_VERSION {training_version}, "
                         f"whose seeds do not pair across mechanisms (paired since {PAIRED_SEEDS_SINCE}); "
                         f"use None or False")
    return bool(paired_seeds)
