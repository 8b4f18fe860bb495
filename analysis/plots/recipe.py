"""The figure of the recipe sweep (``csnet bench --recipe``, :mod:`analysis.recipe`): validation PSNR at
the full budget (mean over tasks) for each value of each stage's factor, per mechanism, with the mean
over mechanisms that each stage chooses by, and the chosen value's tick label in bold."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from analysis import style

TITLES = {"lr": "Peak learning rate", "schedule": "Schedule after warm-up",
          "patch": "Patch side × batch (equal pixels)", "selection_start": "Selection block starts as"}
VALUE_NAMES = {"cosine": "cosine", "wsd": "warm-up, stable, decay", "projection": "projection (paper)",
               "identity": "identity (residual)"}
CRITERION = "mean over mechanisms (the choice)"


def _per_seed(rows: pd.DataFrame, column: str) -> pd.DataFrame:
    """Mean validation PSNR over tasks per (value, fusion, seed) at the full budget."""
    from csnet.recipe import final_rows

    rows = final_rows(rows).copy()
    rows["shape"] = rows["patch"].astype(int).astype(str) + "×" + rows["batch"].astype(int).astype(str)
    return rows.groupby([column, "fusion", "seed"], sort=False)["psnr"].mean().reset_index()


def _lr_label(value: float) -> str:
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def recipe_figure(table: pd.DataFrame, title: str = ""):
    """One panel per stage: per mechanism the mean over seeds (line or point; band or bars = the seeds'
    range), the mean over mechanisms as a black dashed line (across each value's group of points), the best value's tick in bold
    (:func:`csnet.recipe.choose`'s rule: tasks, then seeds, then mechanisms, equal weights)."""
    from csnet.recipe import STAGES, choose, factor_column

    stages = [stage for stage in STAGES if (table["stage"] == stage).any()]
    if not stages:
        raise ValueError("the recipe table has no rows to draw")
    ncols = min(2, len(stages))
    nrows = int(np.ceil(len(stages) / ncols))
    fig, axes = style.figure("page", height=2.1 * nrows + 0.8, nrows=nrows, ncols=ncols, squeeze=False, sharey=True)
    handles: dict[str, Any] = {}
    for ax, stage in zip(axes.flat, stages):
        column = factor_column(stage)
        per_seed = _per_seed(table[table["stage"] == stage], column)
        fusions = list(dict.fromkeys(per_seed["fusion"]))
        summary = per_seed.groupby([column, "fusion"], sort=False)["psnr"].agg(["mean", "min", "max"]).reset_index()
        criterion = summary.groupby(column, sort=False)["mean"].mean()  # equal weight per mechanism
        best = choose(table, stage)[0]
        best = str(best).replace("x", "×") if column == "shape" else best
        if stage == "lr":
            values = sorted(criterion.index)
            for fusion in fusions:
                line = summary[summary["fusion"] == fusion].sort_values("lr")
                handles.setdefault(fusion, ax.plot(line["lr"], line["mean"], marker="o", markersize=3,
                                                   color=style.colour(fusion))[0])
                ax.fill_between(line["lr"], line["min"], line["max"], color=style.colour(fusion), alpha=0.2,
                                linewidth=0)
            handles.setdefault(CRITERION, ax.plot(values, criterion.reindex(values).to_numpy(), linestyle="--",
                                                  color="black")[0])
            ax.set_xscale("log")
            ax.minorticks_off()
            ax.set_xticks(values, [_lr_label(v) for v in values])
            labels, chosen = ax.get_xticklabels(), [np.isclose(v, best) for v in values]
        else:
            values = list(dict.fromkeys(summary[column]))
            width = 0.8 / max(len(fusions), 1)
            for k, fusion in enumerate(fusions):
                part = summary[summary["fusion"] == fusion].set_index(column).reindex(values)
                x = np.arange(len(values)) - 0.4 + width * (k + 0.5)
                handles.setdefault(fusion, ax.errorbar(x, part["mean"], yerr=[part["mean"] - part["min"],
                                                                              part["max"] - part["mean"]],
                                                       fmt="o", markersize=3, color=style.colour(fusion),
                                                       capsize=1.5, linewidth=0.8))
            centres = np.arange(len(values))
            ax.hlines(criterion.reindex(values).to_numpy(), centres - 0.45, centres + 0.45, colors="black",
                      linestyles="--", linewidth=1.0, zorder=1)
            ax.set_xticks(np.arange(len(values)), [VALUE_NAMES.get(str(v), str(v)) for v in values])
            labels, chosen = ax.get_xticklabels(), [str(v) == str(best) for v in values]
        for label, is_best in zip(labels, chosen):
            label.set_fontweight("bold" if is_best else "normal")
        ax.set_title(TITLES[stage])
    for ax in list(axes.flat)[len(stages):]:
        ax.set_visible(False)
    fig.supylabel("validation PSNR (dB), mean over tasks")
    order = [name for name in handles if name != CRITERION] + [CRITERION]
    fig.legend([handles[name] for name in order], [style.display_name(name) for name in order],
               loc="outside lower center", ncols=3,
               title="full budget; bands and bars: range over seeds; bold tick: chosen value")
    if title:
        fig.suptitle(style.wrap(title, 80))
    return fig
