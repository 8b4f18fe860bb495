"""Statistics for the studies, with the training seed as the unit of replication.

A training study's independent replicate is the **seed**: the test photos repeat in every seed (a
second, crossed factor), and the patches or images of one photo are not independent. Every comparison
here therefore

- averages over images within each seed and tests the per-seed means across seeds: a paired t-test
  (``scipy.stats.ttest_rel``) where the seeds pair (conditions of one trained network), Welch's t-test
  (``scipy.stats.ttest_ind``) where they do not (separately trained models whose initialisations differ);
- gives an interval from a bootstrap that resamples seeds and images independently (crossed), so both
  sources of variance are in it (scipy's ``bootstrap`` resamples one axis only);
- counts the seeds that agree in sign ("k of n seeds");
- fits a ``statsmodels`` mixed model (seed and image as variance components) as a model-based
  cross-check column;
- tests equivalence within a margin by two one-sided t-tests (TOST) over the same per-seed means;
- corrects over each study's declared family with Holm (``statsmodels.stats.multitest``);
- ends as one of three verdicts: *different*, *equivalent within ±m* or *inconclusive*, and an
  inconclusive design that could not have reached significance says so (``underpowered``).

What the studies leave unknown: a t-test over 3–5 seed means assumes those means are roughly normal;
the crossed percentile bootstrap is narrow with so few seeds (it is reported, the verdict uses the t-test).
Every resampling draws from ``numpy.random.default_rng(seed)``.
"""
from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

# Default equivalence margins per metric (the smallest difference the studies treat as meaningful).
MARGINS = {"psnr": 0.25, "ssim": 0.01, "accuracy": 0.05, "jaccard": 0.05}
# An inconclusive design is "underpowered" when 80% power after Holm needs an effect larger than this
# many seed standard deviations of the difference (a paired t over 2 seeds always is).
MAX_DETECTABLE_SD = 4.0
POWER = 0.8
VERDICTS = ("different", "equivalent", "inconclusive")


def margin_for(metric: str) -> float:
    """The documented default equivalence margin of ``metric`` (see ``MARGINS``)."""
    if metric not in MARGINS:
        raise ValueError(f"no default margin for metric {metric!r}; known: {sorted(MARGINS)} (pass margin=)")
    return MARGINS[metric]


def _check_ci(ci: float) -> None:
    if not 0 < ci < 1:
        raise ValueError(f"ci must be a coverage in (0, 1), e.g. 0.95; got {ci!r}")


# ----------------------------------------------------------------------------- seed × image tables
def seed_image_matrix(df: pd.DataFrame, value: str, *, seed_col: str = "seed",
                      image_col: str = "image") -> pd.DataFrame:
    """Seeds × images table of ``value``, averaging any further rows per cell (random draws, patches).

    Cells a seed lacks stay NaN; :func:`compare` keeps only images every seed has."""
    missing = [c for c in (value, seed_col, image_col) if c not in df.columns]
    if missing:
        raise ValueError(f"columns {missing} not in the frame; it has {list(df.columns)}")
    values = pd.to_numeric(df[value], errors="coerce").astype(float)  # booleans (correct) count as 0/1
    if not np.isfinite(values.to_numpy(dtype=float)).all():
        raise ValueError(f"{value} has non-finite values: drop or fix them before comparing")
    return df.assign(**{value: values}).pivot_table(index=seed_col, columns=image_col, values=value,
                                                     aggfunc="mean", sort=True)


def _complete(*matrices: pd.DataFrame) -> list[pd.DataFrame]:
    """The matrices restricted to the images every one of them has for every seed."""
    images = None
    for m in matrices:
        full = m.columns[m.notna().all(axis=0)]
        images = full if images is None else images.intersection(full)
    return [m[images] for m in matrices]


# ----------------------------------------------------------------------------- crossed bootstrap
def crossed_bootstrap(a: np.ndarray, b: np.ndarray | None = None, *, paired: bool = True, n_boot: int = 2000,
                      seed: int = 0, ci: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of mean(a) − mean(b) (or mean(a) alone) resampling seeds and images independently.

    ``a`` and ``b`` are ``(..., n_seeds, n_images)`` arrays over the same images (leading axes are a
    batch, e.g. simulated studies). Each resample draws seeds with replacement (one draw shared by both
    arms when ``paired``, one per arm otherwise) and, independently, images (shared by both arms: the
    photos are the same). A resample's statistic is a weighted mean with multinomial counts as weights,
    so no resampled copy of the data is built. Returns ``(lo, hi)`` of the batch shape."""
    _check_ci(ci)
    rng = np.random.default_rng(seed)
    a = np.asarray(a, dtype=float)
    n_seeds, n_images = a.shape[-2:]
    images = rng.multinomial(n_images, np.full(n_images, 1 / n_images), size=n_boot) / n_images  # (B, I)

    def seed_weights(n: int) -> np.ndarray:
        return rng.multinomial(n, np.full(n, 1 / n), size=n_boot) / n  # (B, S)

    seeds_a = seed_weights(n_seeds)
    if b is None:
        boot = np.einsum("bs,...si,bi->...b", seeds_a, a, images)
    else:
        b = np.asarray(b, dtype=float)
        if paired:
            if b.shape != a.shape:
                raise ValueError(f"paired arms need the same seeds and images: {a.shape} vs {b.shape}")
            boot = np.einsum("bs,...si,bi->...b", seeds_a, a - b, images)
        else:
            if b.shape[-1] != n_images:
                raise ValueError(f"both arms need the same images: {n_images} vs {b.shape[-1]}")
            seeds_b = seed_weights(b.shape[-2])
            boot = (np.einsum("bs,...si,bi->...b", seeds_a, a, images)
                    - np.einsum("bs,...si,bi->...b", seeds_b, b, images))
    tail = (1 - ci) / 2
    lo, hi = np.quantile(boot, [tail, 1 - tail], axis=-1)
    return lo, hi


def mean_interval(df: pd.DataFrame, value: str, *, n_boot: int = 2000, seed: int = 0, ci: float = 0.95,
                  seed_col: str = "seed", image_col: str = "image") -> dict:
    """Mean of ``value`` (over per-seed means of complete images) with its crossed seed × image
    bootstrap interval: ``{"estimate", "lo", "hi", "n_seeds", "n_images", "seed_sd"}``."""
    (matrix,) = _complete(seed_image_matrix(df, value, seed_col=seed_col, image_col=image_col))
    if matrix.size == 0:
        raise ValueError(f"no complete seed × image table of {value!r} (seeds {list(matrix.index)})")
    lo, hi = crossed_bootstrap(matrix.to_numpy(), n_boot=n_boot, seed=seed, ci=ci)
    per_seed = matrix.mean(axis=1)
    return {"estimate": float(per_seed.mean()), "lo": float(lo), "hi": float(hi), "n_seeds": int(len(matrix)),
            "n_images": int(matrix.shape[1]), "seed_sd": float(per_seed.std(ddof=1)) if len(matrix) > 1 else np.nan}


# ----------------------------------------------------------------------------- tests over seeds
def seed_tests(a: np.ndarray, b: np.ndarray, *, paired: bool, margin: float | None = None) -> dict:
    """t-tests over per-seed means: ``a``, ``b`` are ``(..., n_seeds)`` (batch axes allowed).

    Returns arrays ``estimate`` (mean(a) − mean(b)), ``p_value`` (two-sided, paired or Welch),
    ``p_equivalence`` (TOST against ±``margin``: the larger of the two one-sided p-values; NaN without a
    margin), ``seed_sd`` (SD of the per-seed differences when paired, the pooled SD otherwise)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        estimate = a.mean(axis=-1) - b.mean(axis=-1)
        if paired:
            p = sps.ttest_rel(a, b, axis=-1).pvalue
            sd = np.std(a - b, axis=-1, ddof=1)
        else:
            p = sps.ttest_ind(a, b, axis=-1, equal_var=False).pvalue
            sd = np.sqrt((np.var(a, axis=-1, ddof=1) + np.var(b, axis=-1, ddof=1)) / 2)
        p_eq = np.full(np.shape(estimate), np.nan)
        if margin is not None:
            test = (lambda x, y, alt: sps.ttest_rel(x, y, axis=-1, alternative=alt)) if paired else \
                (lambda x, y, alt: sps.ttest_ind(x, y, axis=-1, equal_var=False, alternative=alt))
            lower = test(a + margin, b, "greater").pvalue  # H0: diff ≤ −margin
            upper = test(a - margin, b, "less").pvalue  # H0: diff ≥ +margin
            p_eq = np.maximum(lower, upper)
    # Identical arms (every seed difference exactly 0): no evidence of a difference.
    p = np.where(np.isnan(p) & (np.abs(estimate) == 0), 1.0, p)
    return {"estimate": estimate, "p_value": p, "p_equivalence": p_eq, "seed_sd": sd}


def mixed_model(a: pd.DataFrame, b: pd.DataFrame, *, paired: bool) -> dict:
    """Model-based cross-check: a linear mixed model with seed and image as variance components.

    Paired: the per-(seed, image) differences ~ 1, seed and image random; unpaired: values ~ arm with
    seed (within arm) and image random. Returns ``{"estimate_mixed", "p_mixed"}`` (Wald z); NaN where
    the fit fails (e.g. a singular design)."""
    import statsmodels.formula.api as smf

    if paired:
        frame = (a - b).stack().rename("y").reset_index()
        frame.columns = ["seed", "image", "y"]
        formula, term = "y ~ 1", "Intercept"
    else:
        frame = pd.concat([m.stack().rename("y").reset_index().set_axis(["seed", "image", "y"], axis=1)
                           .assign(arm=arm) for arm, m in ((1, a), (0, b))], ignore_index=True)
        frame["seed"] = frame["arm"].astype(str) + ":" + frame["seed"].astype(str)
        formula, term = "y ~ arm", "arm"
    frame["one"] = 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = smf.mixedlm(formula, frame, groups="one",
                              vc_formula={"seed": "0 + C(seed)", "image": "0 + C(image)"}).fit(reml=True)
        estimate, p = float(fit.fe_params[term]), float(fit.pvalues[term])
    except (ValueError, np.linalg.LinAlgError):
        estimate, p = np.nan, np.nan
    return {"estimate_mixed": estimate, "p_mixed": p if np.isfinite(p) else np.nan}


def compare(a: pd.DataFrame, b: pd.DataFrame, value: str, *, paired: bool, margin: float | None = None,
            n_boot: int = 2000, seed: int = 0, ci: float = 0.95, mixed: bool = True,
            seed_col: str = "seed", image_col: str = "image") -> dict:
    """Compare ``value`` between two tidy tables (one row per seed and image, or more rows per cell).

    ``paired``: the seeds pair (the same trained network under two conditions); only common seeds are
    used. Otherwise Welch's t over the two arms' seed means. Returns the estimate (a − b), the crossed
    bootstrap interval, p (t over seeds), p of equivalence within ``margin`` (TOST; default from
    ``MARGINS`` when ``value`` names a metric), sign agreement, seed SD, sizes and the mixed-model
    cross-check. Holm and the verdict come from :func:`add_verdicts` over the study's family."""
    if margin is None and value in MARGINS:
        margin = MARGINS[value]
    ma = seed_image_matrix(a, value, seed_col=seed_col, image_col=image_col)
    mb = seed_image_matrix(b, value, seed_col=seed_col, image_col=image_col)
    if paired:
        common = ma.index.intersection(mb.index)
        ma, mb = ma.loc[common], mb.loc[common]
    ma, mb = _complete(ma, mb)
    n_images = ma.shape[1]
    if n_images == 0 or len(ma) == 0 or len(mb) == 0:
        raise ValueError(f"no seed and image in common between the two arms (seeds {list(ma.index)} vs "
                         f"{list(mb.index)})")
    sa, sb = ma.mean(axis=1), mb.mean(axis=1)  # per-seed means over images
    tests = seed_tests(sa.to_numpy(), sb.to_numpy(), paired=paired, margin=margin)
    lo, hi = crossed_bootstrap(ma.to_numpy(), mb.to_numpy(), paired=paired, n_boot=n_boot, seed=seed, ci=ci)
    estimate = float(tests["estimate"])
    shared = sa.index.intersection(sb.index)
    per_seed = (sa[shared] - sb[shared]) if len(shared) else pd.Series(dtype=float)
    out = {"estimate": estimate, "lo": float(lo), "hi": float(hi), "ci": ci,
           "p_value": float(tests["p_value"]), "p_equivalence": float(tests["p_equivalence"]),
           "margin": np.nan if margin is None else float(margin),
           "test": f"{'paired' if paired else 'Welch'} t over seeds",
           "paired": paired, "n_seeds": int(min(len(sa), len(sb))), "n_images": int(n_images),
           "seeds_agree": int((np.sign(per_seed) == np.sign(estimate)).sum()) if estimate != 0 else 0,
           "n_seed_pairs": int(len(per_seed)), "seed_sd": float(tests["seed_sd"]),
           "per_seed": ", ".join(f"{v:+.2f}" for v in per_seed)}
    if mixed:
        out.update(mixed_model(ma, mb, paired=paired))
    return out


# ----------------------------------------------------------------------------- families and verdicts
def holm(pvals) -> np.ndarray | pd.Series:
    """Holm–Bonferroni adjusted p-values in the input's order (a Series keeps its index); NaN stays NaN."""
    from statsmodels.stats.multitest import multipletests

    values = np.asarray(pvals, dtype=float).reshape(-1)
    finite = ~np.isnan(values)
    if (values[finite] < 0).any() or (values[finite] > 1).any():
        raise ValueError(f"p-values must lie in [0, 1]; got {values.tolist()}")
    adjusted = np.full(values.size, np.nan)
    if finite.any():
        adjusted[finite] = multipletests(values[finite], method="holm")[1]
    if isinstance(pvals, pd.Series):
        return pd.Series(adjusted, index=pvals.index, name=pvals.name)
    return adjusted


@lru_cache(maxsize=256)
def _detectable_sd(n_seeds: int, alpha: float, family_size: int, power: float, paired: bool) -> float:
    from statsmodels.stats.power import TTestIndPower, TTestPower

    if n_seeds < 2:
        return float("inf")
    solver = TTestPower() if paired else TTestIndPower()
    kwargs = {"nobs": n_seeds} if paired else {"nobs1": n_seeds, "ratio": 1.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            d = float(solver.solve_power(alpha=alpha / family_size, power=power, **kwargs))
        except (ValueError, RuntimeError):
            return float("inf")
    return d if np.isfinite(d) and d < 1e3 else float("inf")


def detectable_effect(n_seeds: int, seed_sd: float = 1.0, *, alpha: float = 0.05, family_size: int = 1,
                      power: float = POWER, paired: bool = True) -> float:
    """Smallest true difference detected with ``power`` by the t over ``n_seeds`` seeds at α / family_size
    (the first Holm step), in the units of ``seed_sd`` (statsmodels' TTestPower / TTestIndPower);
    ``inf`` below 2 seeds. With ``seed_sd=1`` it is the effect in seed standard deviations."""
    if not np.isfinite(seed_sd):
        return float("inf")
    return _detectable_sd(int(n_seeds), float(alpha), int(family_size), float(power), bool(paired)) * seed_sd


def underpowered(n_seeds: int, *, alpha: float = 0.05, family_size: int = 1, paired: bool = True) -> bool:
    """True when the design cannot sensibly reach α after Holm over the family: 80% power would need an
    effect above ``MAX_DETECTABLE_SD`` seed SDs (always so for 2 seeds or fewer)."""
    if n_seeds <= 2:
        return True
    return detectable_effect(n_seeds, alpha=alpha, family_size=family_size, paired=paired) > MAX_DETECTABLE_SD


def _seeds(n) -> str:
    return f"{n} seed" if n == 1 else f"{n} seeds"


def verdict_label(p_holm: float, p_equivalence_holm: float, margin: float, *, alpha: float, n_seeds: int,
                  family_size: int, paired: bool, unit: str = "") -> str:
    """The three-way verdict of one comparison (the one rule every study uses)."""
    if np.isfinite(p_holm) and p_holm < alpha:
        return "different"
    if np.isfinite(p_equivalence_holm) and p_equivalence_holm < alpha:
        return f"equivalent within ±{margin:g}{' ' + unit if unit else ''}"
    if underpowered(n_seeds, alpha=alpha, family_size=family_size, paired=paired):
        need = detectable_effect(n_seeds, alpha=alpha, family_size=family_size, paired=paired)
        reach = f"80% power needs ≥ {need:.1f} seed SDs" if np.isfinite(need) else "no t-test over seeds"
        return (f"inconclusive (underpowered: {_seeds(n_seeds)} cannot reliably reach α = {alpha:g} after Holm "
                f"over {family_size}; {reach})")
    return "inconclusive"


def add_verdicts(table: pd.DataFrame, *, alpha: float = 0.05, family: str | Sequence[str] | None = None,
                 unit: str = "") -> pd.DataFrame:
    """Holm over each family (rows sharing the ``family`` columns; the whole table when None) of both
    the difference and the equivalence p-values, and the verdict of every row.

    Adds ``family_size``, ``p_holm``, ``p_equivalence_holm``, ``verdict`` and ``detectable`` (smallest
    difference at 80% power given the row's seed SD, in the value's unit)."""
    out = table.copy()
    if out.empty:
        return out.assign(family_size=[], p_holm=[], p_equivalence_holm=[], verdict=[], detectable=[])
    groups = [out.index] if family is None else [g.index for _, g in out.groupby(family, sort=False, dropna=False)]
    for index in groups:
        out.loc[index, "family_size"] = len(index)
        out.loc[index, "p_holm"] = holm(out.loc[index, "p_value"].to_numpy())
        out.loc[index, "p_equivalence_holm"] = holm(out.loc[index, "p_equivalence"].to_numpy())
    out["family_size"] = out["family_size"].astype(int)
    out["verdict"] = [verdict_label(r.p_holm, r.p_equivalence_holm, r.margin, alpha=alpha, n_seeds=r.n_seeds,
                                    family_size=r.family_size, paired=r.paired, unit=unit)
                      for r in out.itertuples()]
    out["detectable"] = [detectable_effect(r.n_seeds, r.seed_sd, alpha=alpha, family_size=r.family_size,
                                           paired=r.paired) for r in out.itertuples()]
    return out


# ------------------------------------------------------------------------ sentences from numbers
def format_p(p: float, *, threshold: float = 0.001) -> str:
    """``"p = 0.012"`` or ``"p < 0.001"``; ``"p n/a"`` when no test was possible."""
    if not np.isfinite(p):
        return "p n/a"
    return f"p < {threshold:g}" if p < threshold else f"p = {p:.3f}"


def format_mean_std(mean: float, std: float | None, digits: int = 2) -> str:
    """``"31.49 ± 0.12"``; only the mean when std is missing (a single seed)."""
    if std is None or not np.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def verdict_sentence(subject: str, row, *, unit: str = "dB", digits: int = 2, scale: float = 1.0) -> str:
    """One comparison as a sentence with its unit, e.g. ``"own − noise's set on derain: +0.18 dB (95% CI
    −0.04 to +0.40 over seeds and images), 2 of 3 seeds agree, paired t over 3 seeds p = 0.310
    (Holm p = 0.930): inconclusive"``. ``row`` is a mapping or a row of :func:`add_verdicts`; ``scale``
    multiplies the estimate and interval (e.g. 100 for accuracy in points)."""
    get = row.get if hasattr(row, "get") else (lambda k, d=None: getattr(row, k, d))
    u = f" {unit}" if unit else ""
    ci = int(round(get("ci", 0.95) * 100))
    agree = (f"{get('seeds_agree')} of {_seeds(get('n_seed_pairs'))} agree, " if get("n_seed_pairs", 0) else "")
    test = str(get("test")).replace("over seeds", f"over {_seeds(get('n_seeds'))}")
    estimate, lo, hi = (scale * get(k) for k in ("estimate", "lo", "hi"))
    return (f"{subject}: {estimate:+.{digits}f}{u} ({ci}% CI {lo:+.{digits}f} to {hi:+.{digits}f} "
            f"over seeds and images), {agree}{test} "
            f"{format_p(get('p_value'))} (Holm {format_p(get('p_holm'))}): {get('verdict')}")


def summarise_verdicts(subject: str, table: pd.DataFrame, *, unit: str = "comparisons") -> str:
    """Counts of the three verdicts, e.g. ``"hard_select against the others: different in 2 of 6
    comparisons (lower in 2), equivalent in 1, inconclusive in 3 (3 underpowered)"``."""
    if table.empty:
        return f"{subject}: no comparisons"
    verdicts = table["verdict"].astype(str)
    different = verdicts == "different"
    lower = int((different & (table["estimate"] < 0)).sum())
    higher = int((different & (table["estimate"] > 0)).sum())
    inconclusive = verdicts.str.startswith("inconclusive")
    weak = int(verdicts.str.contains("underpowered").sum())
    text = (f"{subject}: different in {int(different.sum())} of {len(table)} {unit} "
            f"(higher in {higher}, lower in {lower}), equivalent in {int(verdicts.str.startswith('equivalent').sum())}, "
            f"inconclusive in {int(inconclusive.sum())}")
    return text + (f" ({weak} underpowered)" if weak else "")


def design_sentence(n_seeds: int, seed_sd: float, *, unit: str = "dB", alpha: float = 0.05, family_size: int = 1,
                    paired: bool = True) -> str:
    """What the design can detect: the smallest effect at 80% power given the measured seed SD."""
    effect = detectable_effect(n_seeds, seed_sd, alpha=alpha, family_size=family_size, paired=paired)
    u = f" {unit}" if unit else ""
    if not np.isfinite(effect):
        return f"With {_seeds(n_seeds)} no seed-level test is possible."
    return (f"With {n_seeds} seeds ({'paired' if paired else 'Welch'} t, α = {alpha:g} after Holm over "
            f"{family_size}) and a measured seed SD of {seed_sd:.2f}{u}, differences of {effect:.2f}{u} or more "
            f"are detected with {POWER:.0%} power.")


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


def format_count(subject: str, hits, *, unit: str = "columns") -> str:
    """A descriptive count computed from booleans, e.g. ``"own channels best in 3 of 3 columns"``
    (no inference: the verdicts say what is significant)."""
    hits = np.asarray(hits, dtype=bool).reshape(-1)
    return f"{subject} in {int(hits.sum())} of {hits.size} {unit}"


def join_verdicts(parts: Sequence[str]) -> str:
    """Clauses joined by semicolons into one sentence, capitalised and ended with a full stop."""
    text = "; ".join(p.strip().rstrip(".") for p in parts if p and p.strip())
    return text[:1].upper() + text[1:] + "." if text else ""
