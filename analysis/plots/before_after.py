"""The figure of issue 12's before/after table (:mod:`analysis.before_after`): validation PSNR of every
mechanism under the first studies' recipe and protocol (open marker) and under today's (filled),
joined by a line, one panel per task, with the classical restorers and the degraded input on the same
photos as vertical lines."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from analysis import style
from analysis.before_after import PROTOCOL

LINE_STYLES = ("--", ":", "-.", (0, (5, 1)))
ARM_LABELS = {"before": "before: the first studies' recipe (lr 2e-4, cosine), image prompt of the whole photo",
              "after": "after: the profile's recipe, image prompt of tiles"}


def _arm(summary_table: pd.DataFrame, task: str, arm: str) -> pd.DataFrame:
    rows = summary_table[(summary_table["task"] == task) & (summary_table["arm"] == arm)
                         & (summary_table["condition"] == PROTOCOL[arm])]
    return rows.set_index("mechanism")


def before_after_figure(summary_table: pd.DataFrame, references: pd.DataFrame, tasks: Sequence[str],
                        mechanisms: Sequence[str], *, title: str = ""):
    """``summary_table``: :func:`analysis.before_after.summary`; ``references``: per-image rows of
    :func:`analysis.classical.evaluate_references` on the validation photos (their mean is drawn).
    Bars: SD over seeds of the per-seed means."""
    tasks, mechanisms = list(tasks), list(mechanisms)
    ncols = min(3, len(tasks))
    nrows = int(np.ceil(len(tasks) / ncols))
    fig, axes = style.figure("page", height=0.32 * len(mechanisms) * nrows + 1.4, nrows=nrows, ncols=ncols,
                             squeeze=False, sharey=True)
    y = np.arange(len(mechanisms))[::-1]
    handles, labels = [], []
    for arm, filled in (("before", False), ("after", True)):
        handles.append(Line2D([], [], marker="o", linestyle="none", color="black",
                              markerfacecolor="black" if filled else "white"))
        labels.append(ARM_LABELS[arm])
    for index, task in enumerate(tasks):
        ax = axes.flat[index]
        before, after = _arm(summary_table, task, "before"), _arm(summary_table, task, "after")
        for i, mechanism in enumerate(mechanisms):
            colour = style.colour(mechanism)
            if mechanism in before.index and mechanism in after.index:
                ax.plot([before.loc[mechanism, "psnr"], after.loc[mechanism, "psnr"]], [y[i], y[i]], color=colour,
                        linewidth=1.0, alpha=0.6)
            for rows, filled in ((before, False), (after, True)):
                if mechanism not in rows.index:
                    continue
                row = rows.loc[mechanism]
                ax.errorbar(row["psnr"], y[i], xerr=row["psnr_std"] if np.isfinite(row["psnr_std"]) else None,
                            fmt="o", markersize=4, color=colour, markerfacecolor=colour if filled else "white",
                            capsize=1.5, linewidth=0.8)
        means = references[references["task"] == task].groupby("method", sort=False)["psnr"].mean()
        for n, (method, value) in enumerate(means.items()):
            line = ax.axvline(value, color=style.colour(method), linestyle=LINE_STYLES[n % len(LINE_STYLES)],
                              linewidth=0.8)
            if style.display_name(method) not in labels:
                handles.append(line)
                labels.append(style.display_name(method))
        ax.set_yticks(y, [style.display_name(m) for m in mechanisms])
        ax.set_title(style.display_name(task))
        ax.set_xlabel("PSNR (dB)")
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    fig.legend(handles, [style.wrap(label, 40) for label in labels], loc="outside lower center", ncols=2,
               title="validation photos; bars: SD over seeds; lines: references on the same photos")
    if title:
        fig.suptitle(style.wrap(title, 80))
    return fig
