"""Figures of notebook 05 (do the rankings hold as training grows?): test PSNR against the training
budget per task, with the classical references and the degraded input as horizontal lines, against
three axes (optimiser steps, CPU seconds, training FLOPs); and the gap of hard selection to each other
mechanism against the budget."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter, NullLocator, ScalarFormatter

from analysis import style

AXES = {
    "budget": ("training steps (log scale)", "steps"),
    "train_seconds": ("CPU seconds of training, 1 thread (log scale)", "seconds"),
    "train_flops": ("training FLOPs, network forward + backward (log scale)", "FLOPs"),
}
REFERENCE_STYLES = ("--", ":", "-.", (0, (5, 1)))


def _log_axis(ax, ticks: Sequence[float] | None = None) -> None:
    """Log x axis; with ``ticks`` (the budgets) labelled at exactly those values as plain numbers."""
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    if ticks is not None:
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.set_xticks(list(ticks), [f"{int(t)}" for t in ticks])
        ax.xaxis.set_minor_locator(NullLocator())


def _legend_below(fig, axes, title: str, ncols: int = 3) -> None:
    """One legend for every panel (each label once), below the panels."""
    handles, labels = {}, []
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in handles:
                handles[label] = handle
                labels.append(label)
    fig.legend([handles[label] for label in labels], labels, loc="outside lower center", ncols=ncols, title=title)


def curves_figure(curve_table: pd.DataFrame, lines: pd.DataFrame, tasks: Sequence[str], mechanisms: Sequence[str], *,
                  x: str = "budget", title: str = "", interval: str = "95% CI over seeds × photos"):
    """PSNR against ``x`` (``budget``, ``train_seconds`` or ``train_flops``; log axis), one panel per task,
    one fixed colour per mechanism with its interval band (``lo``/``hi``); ``lines`` (``method``, ``task``,
    ``psnr``: references and the degraded input) as horizontal lines in their own colours."""
    if x not in AXES:
        raise ValueError(f"x must be one of {list(AXES)}, got {x!r}")
    tasks = list(tasks)
    ncols = min(3, len(tasks))
    nrows = int(np.ceil(len(tasks) / ncols))
    fig, axes = style.figure("page", height=1.9 * nrows + 0.6, nrows=nrows, ncols=ncols, squeeze=False)
    for index, task in enumerate(tasks):
        ax = axes.flat[index]
        frame = curve_table[curve_table["task"] == task]
        for mechanism in mechanisms:
            line = frame[frame["mechanism"] == mechanism].sort_values(x)
            if line.empty:
                continue
            colour = style.colour(mechanism)
            ax.plot(line[x], line["psnr"], marker="o", markersize=2.5, color=colour,
                    label=style.display_name(mechanism))
            if line["lo"].notna().any():
                ax.fill_between(line[x], line["lo"], line["hi"], color=colour, alpha=0.18, linewidth=0)
        shown = lines[lines["task"] == task]
        for n, (method, value) in enumerate(zip(shown["method"], shown["psnr"])):
            ax.axhline(value, color=style.colour(method), linestyle=REFERENCE_STYLES[n % len(REFERENCE_STYLES)],
                       linewidth=0.8, label=style.display_name(method))
        _log_axis(ax, sorted(curve_table["budget"].unique()) if x == "budget" else None)
        ax.set_title(style.display_name(task))
        ax.set_xlabel(AXES[x][1])
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    fig.supylabel("PSNR (dB)")
    _legend_below(fig, axes.flat, style.wrap(f"x: {AXES[x][0]}; bands: {interval}; lines: references on the same "
                                             "photos", 100))
    if title:
        fig.suptitle(style.wrap(title, 90))
    return fig


def gap_figure(gaps: pd.DataFrame, tasks: Sequence[str], *, reference: str = "hard_select", title: str = "",
               interval: str = "95% CI over seeds × photos"):
    """``reference`` − each other mechanism against the budget (log axis), one panel per task (and the
    pooled "all tasks"), the other mechanism's colour, its interval band and a zero line."""
    tasks = list(tasks)
    ncols = min(3, len(tasks))
    nrows = int(np.ceil(len(tasks) / ncols))
    fig, axes = style.figure("page", height=1.9 * nrows + 0.6, nrows=nrows, ncols=ncols, squeeze=False,
                             sharey=True)
    for index, task in enumerate(tasks):
        ax = axes.flat[index]
        frame = gaps[gaps["task"] == task]
        for other in dict.fromkeys(frame["other"]):
            line = frame[frame["other"] == other].sort_values("budget")
            colour = style.colour(other)
            ax.plot(line["budget"], line["estimate"], marker="o", markersize=2.5, color=colour,
                    label=f"− {style.display_name(other)}")
            ax.fill_between(line["budget"], line["lo"], line["hi"], color=colour, alpha=0.18, linewidth=0)
        ax.axhline(0.0, color="black", linewidth=0.6)
        _log_axis(ax, sorted(gaps["budget"].unique()))
        ax.set_title(style.display_name(task))
        ax.set_xlabel("steps")
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    fig.supylabel("PSNR gap (dB)")
    _legend_below(fig, axes.flat, f"{style.display_name(reference)} − other, against training steps (log scale); "
                  f"bands: {interval}")
    if title:
        fig.suptitle(style.wrap(title, 90))
    return fig
