"""Reading the recipe sweep (``csnet bench --recipe``): time to quality and the figure.

*Time to quality* (issue 12, item 3): per mechanism, the CPU minutes of training (1 thread, process
time) until validation PSNR reaches a classical restorer on the same validation photos: scikit-image's
NL-means at σ25, the dark channel prior on haze, and (the issue's target for rain) the rainy input
+ 3 dB. Between milestones the crossing is interpolated linearly in steps and CPU seconds; where the
budget ends first, the row says how far the model got and extrapolates the step count from the
milestone curve (PSNR linear in log steps through the last two milestones), marked as an
extrapolation. Such an extrapolation assumes the curve keeps its late slope, which a schedule that
decays to zero at the budget does not: read it as an order of magnitude.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

# (task, reference restorer of analysis.classical.REFERENCES, margin in dB the model must reach above it)
TARGETS = (
    ("denoise_25", "NL-means (scikit-image)", 0.0),
    ("dehaze", "dark channel prior (He et al. 2009)", 0.0),
    ("derain", "degraded input", 3.0),
)
TTQ_COLUMNS = ("fusion", "seed", "task", "target", "target_psnr", "reached", "step", "cpu_minutes", "how",
               "last_step", "last_cpu_minutes", "last_psnr", "gap_db")
REACHED = "reached at or before the first milestone (an upper bound)"
INTERPOLATED = "interpolated between milestones"
EXTRAPOLATED = "extrapolated (PSNR linear in log steps through the last two milestones)"
STALLED = "not reached; not improving over the last two milestones, so not extrapolated"
SINGLE = "not reached; a single milestone, so not extrapolated"
FAR = "not reached; the extrapolation lies beyond 1000× the budget (step and minutes left infinite)"
FAR_FACTOR = 1000.0  # extrapolating further than this many budgets says nothing


def reference_scores(tasks: Sequence[str], split: str = "val", max_images: int | None = None,
                     max_side: int | None = None, targets: Sequence[tuple[str, str, float]] = TARGETS
                     ) -> pd.DataFrame:
    """Mean PSNR of each target's classical restorer on ``split``'s photos of its task (the images the
    recipe sweep evaluates on): ``task``, ``method``, ``psnr``, ``margin_db``, ``target_psnr``, ``images``."""
    from analysis.classical import evaluate_references

    rows = []
    for task, method, margin in targets:
        if task not in tasks:
            continue
        scores = evaluate_references([task], [method], max_images=max_images, max_side=max_side, split=split)
        psnr = float(scores["psnr"].mean())
        rows.append({"task": task, "method": method, "psnr": psnr, "margin_db": margin,
                     "target_psnr": psnr + margin, "images": len(scores)})
    return pd.DataFrame(rows, columns=["task", "method", "psnr", "margin_db", "target_psnr", "images"])


def crossing(steps: Sequence[float], cpu_seconds: Sequence[float], psnr: Sequence[float],
             target: float) -> dict[str, Any]:
    """When a milestone curve (``steps`` ascending, CPU seconds and PSNR at each) reaches ``target``:
    ``reached``, ``step``, ``cpu_minutes``, ``how`` (one of ``REACHED``, ``INTERPOLATED``,
    ``EXTRAPOLATED``, ``STALLED``)."""
    steps, cpu, psnr = (np.asarray(v, dtype=float) for v in (steps, cpu_seconds, psnr))
    if steps.size == 0:
        raise ValueError("a milestone curve needs at least one point")
    if np.any(np.diff(steps) <= 0):
        raise ValueError(f"milestone steps must increase, got {steps.tolist()}")
    above = np.flatnonzero(psnr >= target)
    if above.size:
        i = int(above[0])
        if i == 0:
            return {"reached": True, "step": steps[0], "cpu_minutes": cpu[0] / 60, "how": REACHED}
        share = (target - psnr[i - 1]) / (psnr[i] - psnr[i - 1])
        return {"reached": True, "step": steps[i - 1] + share * (steps[i] - steps[i - 1]),
                "cpu_minutes": (cpu[i - 1] + share * (cpu[i] - cpu[i - 1])) / 60, "how": INTERPOLATED}
    if steps.size < 2:
        return {"reached": False, "step": math.nan, "cpu_minutes": math.nan, "how": SINGLE}
    if psnr[-1] <= psnr[-2]:
        return {"reached": False, "step": math.nan, "cpu_minutes": math.nan, "how": STALLED}
    slope = (psnr[-1] - psnr[-2]) / (math.log(steps[-1]) - math.log(steps[-2]))  # dB per e-fold of steps
    folds = (target - psnr[-1]) / slope
    if folds > math.log(FAR_FACTOR):
        return {"reached": False, "step": math.inf, "cpu_minutes": math.inf, "how": FAR}
    step = steps[-1] * math.exp(folds)
    return {"reached": False, "step": step, "cpu_minutes": step * cpu[-1] / steps[-1] / 60, "how": EXTRAPOLATED}


def time_to_quality(curves: pd.DataFrame, references: pd.DataFrame) -> pd.DataFrame:
    """One row per (mechanism, seed, target task), plus ``seed="mean"`` on the seed-mean curve.

    ``curves``: recipe rows of one recipe (``fusion``, ``seed``, ``task``, ``step``, ``cpu_seconds``,
    ``psnr``); ``references``: :func:`reference_scores`."""
    rows = []
    for _, target in references.iterrows():
        task = target["task"]
        on_task = curves[curves["task"] == task]
        for fusion, per_fusion in on_task.groupby("fusion", sort=False):
            per_seed = [(seed, group) for seed, group in per_fusion.groupby("seed", sort=True)]
            mean = per_fusion.groupby("step", as_index=False)[["cpu_seconds", "psnr"]].mean()
            for seed, group in [*per_seed, ("mean", mean)]:
                group = group.sort_values("step").drop_duplicates("step")
                found = crossing(group["step"], group["cpu_seconds"], group["psnr"], target["target_psnr"])
                last = group.iloc[-1]
                rows.append({"fusion": fusion, "seed": seed, "task": task,
                             "target": target["method"] + (f" + {target['margin_db']:g} dB"
                                                           if target["margin_db"] else ""),
                             "target_psnr": target["target_psnr"], **found, "last_step": int(last["step"]),
                             "last_cpu_minutes": last["cpu_seconds"] / 60, "last_psnr": last["psnr"],
                             "gap_db": last["psnr"] - target["target_psnr"]})
    return pd.DataFrame(rows, columns=list(TTQ_COLUMNS))


# --------------------------------------------------------------------------------------------------
# Outputs


def write_outputs(table: pd.DataFrame, summary: pd.DataFrame, ttq: pd.DataFrame, folder, name: str,
                  title: str = "") -> dict[str, Any]:
    """Write ``<name>_summary.csv``, ``<name>_time_to_quality.csv`` and ``<name>.png/.pdf`` under
    ``folder`` (the recipe CSV itself is written row by row by the sweep). Returns the paths."""
    from analysis.outputs import OutputDir, write_csv

    out = OutputDir(folder)
    paths: dict[str, Any] = {
        "summary": write_csv(summary, out / f"{name}_summary.csv"),
        "time_to_quality": write_csv(ttq, out / f"{name}_time_to_quality.csv"),
    }
    if not table.empty:
        from analysis.plots.recipe import recipe_figure

        paths["figure"] = out.figure(recipe_figure(table, title), name)
    return paths


def summarise_choice(choice: Any) -> Mapping[str, Any]:
    """The chosen recipe as plain values (for the manifest and the printout)."""
    return {"lr": choice.lr, "schedule": choice.schedule, "patch": choice.patch[0], "batch": choice.patch[1],
            "selection_start": choice.selection_start, "given": dict(choice.given)}
