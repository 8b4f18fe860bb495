"""Statistics for the studies: paired bootstrap comparisons, confidence intervals, mean ± std over
seeds, Holm's correction, and sentences built only from computed numbers.

Every resampling draws from ``numpy.random.default_rng(seed)``: the same inputs and seed give the
same numbers. Resamples are drawn as whole matrices (in chunks whose size depends only on the data
size, so chunking never changes the result), not in a Python loop.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd

_CHUNK_ELEMENTS = 4_000_000  # resample matrix entries held in memory at once (~32 MB of float64)


def _as_finite_vector(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float).reshape(-1) if np.ndim(x) else np.asarray([x], dtype=float)
    if arr.size == 0:
        raise ValueError(f"{name} is empty: need at least one value")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name} has {int(bad.sum())} non-finite value(s) (NaN or inf) at positions "
                         f"{np.flatnonzero(bad)[:10].tolist()}: drop or fix them before comparing")
    return arr


def _check_ci(ci: float) -> None:
    if not 0 < ci < 1:
        raise ValueError(f"ci must be a coverage in (0, 1), e.g. 0.95; got {ci!r}")


def _bootstrap_stats(x: np.ndarray, n_boot: int, rng: np.random.Generator,
                     statistic: Callable[..., np.ndarray]) -> np.ndarray:
    """``statistic`` of ``n_boot`` resamples of ``x`` with replacement, shape ``(n_boot,)``."""
    n = x.size
    rows = max(1, _CHUNK_ELEMENTS // n)
    out = np.empty(n_boot)
    for start in range(0, n_boot, rows):
        stop = min(start + rows, n_boot)
        idx = rng.integers(0, n, size=(stop - start, n))  # (rows, n)
        out[start:stop] = statistic(x[idx], axis=1)
    return out


def _interval(samples: np.ndarray, ci: float) -> tuple[float, float]:
    tail = (1 - ci) / 2
    lo, hi = np.quantile(samples, [tail, 1 - tail])
    return float(lo), float(hi)


def bootstrap_ci(x, *, n_boot: int = 10_000, seed: int = 0, ci: float = 0.95,
                 statistic: Callable[..., np.ndarray] = np.mean) -> dict:
    """Percentile bootstrap interval of ``statistic`` (default the mean) of ``x``.

    ``statistic`` must accept ``axis=``. Returns ``{"estimate", "lo", "hi", "n", "ci"}``.
    """
    _check_ci(ci)
    x = _as_finite_vector(x, "x")
    rng = np.random.default_rng(seed)
    lo, hi = _interval(_bootstrap_stats(x, n_boot, rng, statistic), ci)
    return {"estimate": float(statistic(x, axis=0)), "lo": lo, "hi": hi, "n": int(x.size), "ci": ci}


def _sign_flip_p(d: np.ndarray, n_perm: int, rng: np.random.Generator) -> float:
    """Two-sided p of the mean of ``d`` under the null that each difference is symmetric about 0.

    Exact (every sign pattern) when 2**n <= n_perm; otherwise Monte Carlo with the +1 correction,
    so p is never 0.
    """
    n = d.size
    observed = abs(d.mean())
    tolerance = 1e-12 * max(1.0, float(np.abs(d).max()))
    if n <= 30 and 2**n <= n_perm:
        patterns = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) * 2 - 1  # (2**n, n) of ±1
        means = np.abs(patterns @ d) / n
        return float(np.mean(means >= observed - tolerance))
    rows = max(1, _CHUNK_ELEMENTS // n)
    extreme = 0
    for start in range(0, n_perm, rows):
        stop = min(start + rows, n_perm)
        signs = rng.integers(0, 2, size=(stop - start, n)) * 2 - 1  # (rows, n) of ±1
        extreme += int(np.count_nonzero(np.abs(signs @ d) / n >= observed - tolerance))
    return (extreme + 1) / (n_perm + 1)


def paired_bootstrap(a, b, n_boot: int = 10_000, seed: int = 0, ci: float = 0.95, *,
                     test: str = "signflip") -> dict:
    """Compare paired measurements (e.g. per-image PSNR of two settings): ``d = a - b``.

    Returns ``{"mean_diff", "lo", "hi", "p_value", "n", "ci"}``: the mean difference, its percentile
    bootstrap interval, and a two-sided p-value. ``test="signflip"`` (default) is the paired
    permutation test (each difference's sign flipped at random; exact for small ``n``);
    ``test="bootstrap"`` is twice the smaller bootstrap tail beyond zero (with the +1 correction).
    """
    _check_ci(ci)
    tests = ("signflip", "bootstrap")
    if test not in tests:
        raise ValueError(f"test {test!r} is not one of {tests}")
    a = _as_finite_vector(a, "a")
    b = _as_finite_vector(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"paired samples need the same length: a has {a.size}, b has {b.size}")
    d = a - b
    rng = np.random.default_rng(seed)
    boot = _bootstrap_stats(d, n_boot, rng, np.mean)
    lo, hi = _interval(boot, ci)
    if test == "signflip":
        p = _sign_flip_p(d, n_boot, rng)
    elif np.all(d == 0):
        p = 1.0
    else:
        tail = min(np.count_nonzero(boot <= 0), np.count_nonzero(boot >= 0))
        p = min(1.0, (2 * tail + 1) / (n_boot + 1))  # +1: a finite resample never proves p = 0
    return {"mean_diff": float(d.mean()), "lo": lo, "hi": hi, "p_value": float(p), "n": int(d.size), "ci": ci}


def holm(pvals) -> np.ndarray | pd.Series:
    """Holm–Bonferroni adjusted p-values, in the input's order (a Series keeps its index).

    Reject at level α where the adjusted p ≤ α; this controls the family-wise error rate.
    """
    values = np.asarray(pvals, dtype=float).reshape(-1)
    if np.isnan(values).any() or (values < 0).any() or (values > 1).any():
        raise ValueError(f"p-values must lie in [0, 1] without NaN; got {values.tolist()}")
    m = values.size
    order = np.argsort(values, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * values[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    if isinstance(pvals, pd.Series):
        return pd.Series(adjusted, index=pvals.index, name=pvals.name)
    return adjusted


def mean_std_over_seeds(df: pd.DataFrame, by: str | Sequence[str], value: str | Sequence[str], *,
                        seed_col: str = "seed") -> pd.DataFrame:
    """Mean ± sample std (ddof 1) across seeds, per group.

    Rows are first averaged within each (group, seed), e.g. over images, so every seed counts once.
    Returns one row per group with ``<value>_mean``, ``<value>_std`` for each value and ``n_seeds``;
    std is NaN with a single seed. Without a ``seed_col`` column, all rows are one seed.
    """
    by = [by] if isinstance(by, str) else list(by)
    values = [value] if isinstance(value, str) else list(value)
    missing = [c for c in by + values if c not in df.columns]
    if missing:
        raise ValueError(f"columns {missing} not in the frame; it has {list(df.columns)}")
    frame = df if seed_col in df.columns else df.assign(**{seed_col: 0})
    per_seed = frame.groupby(by + [seed_col], sort=False, dropna=False)[values].mean().reset_index()
    grouped = per_seed.groupby(by, sort=False, dropna=False)
    out = grouped[values].agg(["mean", "std"])
    out.columns = [f"{v}_{stat}" for v, stat in out.columns]
    out["n_seeds"] = grouped[seed_col].nunique()
    return out.reset_index()


# ------------------------------------------------------------------------ sentences from numbers
def format_p(p: float, *, threshold: float = 0.001) -> str:
    """``"p = 0.012"`` or ``"p < 0.001"``."""
    return f"p < {threshold:g}" if p < threshold else f"p = {p:.3f}"


def format_mean_std(mean: float, std: float | None, digits: int = 2) -> str:
    """``"31.49 ± 0.12"``; only the mean when std is missing (a single seed)."""
    if std is None or not np.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def format_diff(result: dict, *, unit: str = "dB", digits: int = 2) -> str:
    """A :func:`paired_bootstrap` result as ``"+1.23 dB (95% CI +0.80 to +1.60), p = 0.003, n = 68"``."""
    ci = int(round(result.get("ci", 0.95) * 100))
    unit = f" {unit}" if unit else ""
    return (f"{result['mean_diff']:+.{digits}f}{unit} ({ci}% CI {result['lo']:+.{digits}f} to "
            f"{result['hi']:+.{digits}f}), {format_p(result['p_value'])}, n = {result['n']}")


def format_verdict(subject: str, hits, *, unit: str = "columns", significant=None) -> str:
    """A count sentence computed from booleans, e.g. ``"own channels best in 3 of 3 columns,
    significant in 2"``.

    ``hits[i]`` says whether the claim holds in item ``i``; ``significant[i]`` (optional) whether
    item ``i``'s comparison is significant; only items that are both count as significant.
    """
    hits = np.asarray(hits, dtype=bool).reshape(-1)
    sentence = f"{subject} in {int(hits.sum())} of {hits.size} {unit}"
    if significant is not None:
        significant = np.asarray(significant, dtype=bool).reshape(-1)
        if significant.shape != hits.shape:
            raise ValueError(f"significant has {significant.size} entries, hits has {hits.size}")
        sentence += f", significant in {int((hits & significant).sum())}"
    return sentence


def join_verdicts(parts: Sequence[str]) -> str:
    """Clauses joined by semicolons into one sentence, capitalised and ended with a full stop."""
    text = "; ".join(p.strip().rstrip(".") for p in parts if p and p.strip())
    return text[:1].upper() + text[1:] + "." if text else ""
