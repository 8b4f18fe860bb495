"""Notebook 04's statistics: accuracy with crossed seed × photo intervals, recogniser comparisons with
three-way verdicts, the restoration cost of predicted prompts, and the verdict paragraph.

Units: accuracy is a fraction in the tables of :func:`accuracy_table`; the comparisons of
:func:`recogniser_comparisons` are in percentage points (estimate, interval, margin and seed SD), the
unit the verdict and the README state them in. The patches of one photo are not independent: every
interval resamples seeds and photos (crossed), every test is a t over seeds.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from analysis import stats
from analysis.recognition import FREQUENCY, IMPLICIT, TEXT


PHOTO = "photo"  # the crossed factor of the recognition tests: patches of one photo are not independent
HEADLINE_MARGIN = stats.MARGINS["accuracy"]


def accuracy_table(predictions: pd.DataFrame, by: Sequence[str], *, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Accuracy per group with a 95% interval from a bootstrap that resamples seeds and photos (crossed).

    The accuracy is the mean over seeds of the mean over photos of each photo's patch accuracy (photos
    are the images; patches of one photo are not independent). ``n`` counts distinct patches,
    ``n_seeds`` and ``n_photos`` the units resampled."""
    by = list(by)
    if "seed" not in predictions:
        predictions = predictions.assign(seed=0)
    rows = []
    for key, group in predictions.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        ci = stats.mean_interval(group, "correct", n_boot=n_boot, seed=seed, image_col=PHOTO)
        rows.append({**dict(zip(by, key)), "accuracy": ci["estimate"], "lo": ci["lo"], "hi": ci["hi"],
                     "n": int(group["patch"].nunique()), "n_seeds": ci["n_seeds"], "n_photos": ci["n_images"],
                     "seed_sd": ci["seed_sd"]})
    return pd.DataFrame(rows)


def formatted_accuracy(table: pd.DataFrame, columns: str, order: Sequence[str], index: str = "recogniser") -> pd.DataFrame:
    """``accuracy [lo, hi]`` strings, ``index`` values as rows and ``columns`` values (in ``order``) as
    columns, for LaTeX and Markdown."""
    cells = table.assign(cell=[f"{a:.2f} [{lo:.2f}, {hi:.2f}]" for a, lo, hi in
                               zip(table["accuracy"], table["lo"], table["hi"])])
    wide = cells.pivot_table(index=index, columns=columns, values="cell", aggfunc="first", sort=False)
    wide = wide.reindex(columns=[c for c in order if c in wide.columns])
    wide.columns.name = None
    return wide.reset_index().fillna("")


def confusion(predictions: pd.DataFrame, labels: Sequence[str], columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Row-normalised confusion matrix (true label rows × predicted label columns)."""
    columns = list(columns or labels)
    table = pd.crosstab(predictions["label"], predictions["predicted"])
    table = table.reindex(index=list(labels), columns=columns, fill_value=0)
    return table.div(table.sum(axis=1).replace(0, np.nan), axis=0)


def zero_shot_summary(predictions: pd.DataFrame, *, n_boot: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """Generalised zero-shot accuracy per recogniser: seen classes, held-out classes and their harmonic
    mean (candidates = seen + held-out labels), and the held-out classes among held-out labels only."""
    rows = []
    for recogniser, group in predictions.groupby("recogniser", sort=False):
        row = {"recogniser": recogniser}
        for part, mask in (("seen", (group["evaluation"] == "generalised") & (group["kind"] != "held-out composite")),
                           ("held-out", (group["evaluation"] == "generalised") & (group["kind"] == "held-out composite")),
                           ("held-out among held-out", group["evaluation"] == "held-out only")):
            if mask.any():
                result = accuracy_table(group[mask].assign(_all=0), ["_all"], n_boot=n_boot, seed=seed).iloc[0]
                row.update({f"{part} accuracy": result["accuracy"], f"{part} lo": result["lo"],
                            f"{part} hi": result["hi"], f"{part} n": result["n"]})
        seen, held = row.get("seen accuracy", np.nan), row.get("held-out accuracy", np.nan)
        row["harmonic mean"] = 2 * seen * held / (seen + held) if seen + held > 0 else 0.0
        rows.append(row)
    return pd.DataFrame(rows)


def recogniser_comparison(predictions: pd.DataFrame, a: str, b: str, *, n_boot: int = 2000, seed: int = 0,
                          margin: float = HEADLINE_MARGIN, mixed: bool = True) -> dict | None:
    """Recogniser ``a`` − ``b`` in accuracy: per-seed means over photos, paired t over seeds (both are
    trained at a seed on the same patches and features), crossed seed × photo interval, equivalence
    margin ±``margin``; ``None`` when either recogniser is missing."""
    left, right = predictions[predictions["recogniser"] == a], predictions[predictions["recogniser"] == b]
    if left.empty or right.empty:
        return None
    return stats.compare(left, right, "correct", paired=True, margin=margin, n_boot=n_boot, seed=seed, mixed=mixed,
                         image_col=PHOTO)


def downstream_summary(table: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05,
                       mixed: bool = True) -> pd.DataFrame:
    """Per task: mean PSNR with predicted and oracle prompts, their difference (the same run: paired t
    over seeds, crossed seed × image interval, Holm over tasks, three-way verdict) and the run's
    recognition accuracy on those images."""
    rows = []
    for task, group in table.groupby("task", sort=False):
        result = stats.compare(group.assign(psnr=group["psnr_image_prompt"]), group.assign(psnr=group["psnr_text_prompt"]),
                               "psnr", paired=True, n_boot=n_boot, seed=seed, mixed=mixed)
        rows.append({"task": task, "psnr_image_prompt": group["psnr_image_prompt"].mean(),
                     "psnr_text_prompt": group["psnr_text_prompt"].mean(), "delta_psnr": result["estimate"],
                     "recognition_accuracy": group["correct"].mean(), **result})
    return stats.add_verdicts(pd.DataFrame(rows), alpha=alpha, unit="dB")


COMPARISON_SCOPES = {"all classes": ("single", "composite"), "composites": ("composite",)}  # scope → kinds


def _largest_closed(predictions: pd.DataFrame, largest_set: str) -> pd.DataFrame:
    """Closed-set predictions on the largest task set, its single and composite classes."""
    return predictions[(predictions["evaluation"] == "closed") & (predictions["task_set"] == largest_set)
                       & predictions["kind"].isin(["single", "composite"])]


def recogniser_comparisons(predictions: pd.DataFrame, text_recogniser: str, largest_set: str, *,
                           n_boot: int = 2000, alpha: float = 0.05, mixed: bool = True) -> pd.DataFrame:
    """The text-anchored recogniser named in advance against the frequency and implicit baselines on the
    largest set, over all classes and over composites alone: one row per (baseline, scope), Holm over
    the rows present, three-way verdicts. Estimates, intervals, margin, seed SD and the smallest
    detectable difference are in percentage points (accuracy × 100). Empty when the text recogniser
    or both baselines are missing."""
    closed = _largest_closed(predictions, largest_set)
    points = closed.assign(correct=100.0 * closed["correct"].astype(float))
    rows = []
    for baseline in (FREQUENCY, IMPLICIT):
        for scope, kinds in COMPARISON_SCOPES.items():
            frame = points[points["kind"].isin(kinds)]
            result = recogniser_comparison(frame, text_recogniser, baseline, n_boot=n_boot, mixed=mixed,
                                           margin=100.0 * HEADLINE_MARGIN)
            if result is not None:
                rows.append({"recogniser": text_recogniser, "baseline": baseline, "scope": scope,
                             "unit": "points", **result})
    return stats.add_verdicts(pd.DataFrame(rows), alpha=alpha, unit="points")


# ----------------------------------------------------------------------------- verdict


def class_growth_drop(growth: pd.DataFrame) -> dict[str, float]:
    """Accuracy at the most classes minus at the fewest, per recogniser scored on more than one set
    (negative: it degrades as types multiply)."""
    out = {}
    for recogniser, group in growth.groupby("recogniser", sort=False):
        group = group.sort_values("n_classes")
        if group["n_classes"].nunique() < 2:
            continue
        out[recogniser] = float(group["accuracy"].iloc[-1] - group["accuracy"].iloc[0])
    return out


def verdict(predictions: pd.DataFrame, growth: pd.DataFrame, zero_shot: pd.DataFrame | None,
            downstream: pd.DataFrame | None, text_recogniser: str, largest_set: str, *,
            comparisons: pd.DataFrame | None = None, n_boot: int = 2000, alpha: float = 0.05,
            mixed: bool = True) -> str:
    """One paragraph computed from the tables (never written by hand).

    ``text_recogniser`` is the text-anchored recogniser named in advance (the notebook's first text
    encoder; choosing the best one after the fact would bias the comparison). It is compared with the
    frequency and implicit baselines on the largest set, over all classes and over composites alone
    (paired over patches, Holm-adjusted over the four tests); then how each recogniser's accuracy changes
    as the types grow, zero-shot accuracy on held-out composites, and the restoration cost of predicted
    prompts."""
    closed = _largest_closed(predictions, largest_set)
    if closed.empty:
        return "No predictions on the largest task set: nothing to compare."
    accuracy = closed.groupby("recogniser")["correct"].mean()
    parts = []
    if text_recogniser in accuracy.index:
        others = [f"{name} {accuracy[name]:.1%}" for name in accuracy.index
                  if name.startswith(TEXT) and name != text_recogniser]
        parts.append(f"on the {largest_set} set, {text_recogniser} recognises {accuracy[text_recogniser]:.1%} of "
                     f"{closed['patch'].nunique()} test patches"
                     + (f" (other text encoders: {', '.join(others)})" if others else ""))
        if comparisons is None:
            comparisons = recogniser_comparisons(predictions, text_recogniser, largest_set, n_boot=n_boot,
                                                 alpha=alpha, mixed=mixed)
        for row in comparisons.to_dict("records"):
            parts.append(stats.verdict_sentence(f"{text_recogniser} − {row['baseline'].split(' (')[0]} on {row['scope']}",
                                                row, unit="points", digits=1, crossed="photos"))
        if not comparisons.empty:
            parts.append(stats.design_sentence(int(comparisons["n_seeds"].min()), float(comparisons["seed_sd"].median()),
                                               unit="points", family_size=len(comparisons)))
    drops = class_growth_drop(growth)
    if drops:
        lo, hi = int(growth["n_classes"].min()), int(growth["n_classes"].max())
        parts.append(f"from {lo} to {hi} classes accuracy changes by "
                     + ", ".join(f"{100 * d:+.1f} points for the {r.split(' (')[0] if r in (FREQUENCY, IMPLICIT) else r}"
                                 for r, d in drops.items()))
        if FREQUENCY in drops and len(drops) > 1:
            worst = drops[FREQUENCY] < min(d for r, d in drops.items() if r != FREQUENCY)
            parts.append("the frequency cues lose the most as types multiply" if worst
                         else "the frequency cues do not lose the most as types multiply")
    if zero_shot is not None and not zero_shot.empty and "held-out accuracy" in zero_shot:
        parts.append("held-out composites recognised zero-shot among all labels: "
                     + ", ".join(f"{row['recogniser']} {row['held-out accuracy']:.1%}"
                                 for _, row in zero_shot.iterrows()))
    if downstream is not None and not downstream.empty:
        parts.append(stats.summarise_verdicts("predicted − oracle text prompt, restoring with hard_select", downstream,
                                              unit="tasks")
                     + f" (mean ΔPSNR {downstream['delta_psnr'].mean():+.2f} dB)")
    return stats.join_verdicts(parts)
