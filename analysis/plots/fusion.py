"""Figures of notebook 03 (hard selection against the other fusion mechanisms, Table II): grouped PSNR
bars per task and mechanism, and the ω / κ / estimator sweeps of hard selection."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from analysis import style


def sweep_figure(sweep_table: pd.DataFrame, sweep: str, tasks: Sequence[str], title: str = "",
                 interval: str = "95% CI"):
    """PSNR against the swept value, one colour per task, with the interval of the ``psnr_lo``/``psnr_hi``
    columns (``interval`` names it); the default point ringed. Numeric sweeps (ω, κ) are lines with a
    band on a numeric axis; the estimator is categorical: points with error bars, never joined."""
    frame = sweep_table[sweep_table["sweep"] == sweep]
    fig, ax = style.figure("column", height=2.8)
    categorical = not all(isinstance(v, (int, float, np.floating, np.integer)) for v in frame["value"])
    categories = list(dict.fromkeys(frame["value"])) if categorical else None
    shown = [t for t in tasks if not frame[frame["task"] == t].empty]
    dodge = 0.6 / max(1, len(shown))
    for i, task in enumerate(shown):
        line = frame[frame["task"] == task]
        colour = style.colour(task)
        if categorical:
            x = np.array([categories.index(v) for v in line["value"]], dtype=float) + (i - (len(shown) - 1) / 2) * dodge
        else:
            x = line["value"].to_numpy(dtype=float)
        order = np.argsort(x, kind="stable")
        x, psnr = x[order], line["psnr"].to_numpy()[order]
        lo, hi = line["psnr_lo"].to_numpy()[order], line["psnr_hi"].to_numpy()[order]
        label = style.display_name(task)
        if categorical:
            ax.errorbar(x, psnr, yerr=[psnr - lo, hi - psnr], fmt="o", markersize=3, capsize=2, color=colour,
                        label=label)
        else:
            ax.plot(x, psnr, marker="o", markersize=3, color=colour, label=label)
            ax.fill_between(x, lo, hi, color=colour, alpha=0.15, linewidth=0)
        default = line["default"].to_numpy(dtype=bool)[order]
        ax.scatter(x[default], psnr[default], s=40, facecolors="none", edgecolors=colour, linewidths=0.8)
    if categorical:
        ax.set_xticks(range(len(categories)), style.display_names(categories))
        ax.set_xlim(-0.5, len(categories) - 0.5)
    ax.set_xlabel(style.display_name(sweep))
    ax.set_ylabel("PSNR (dB)")
    fig.legend(loc="outside lower center", ncols=3,
               title=style.wrap(f"mean; {'bars' if categorical else 'bands'}: {interval}; ringed: default", 44))
    if title:
        ax.set_title(style.wrap(title, 36))
    return fig


def bar_figure(bars: pd.DataFrame, tasks: Sequence[str], methods: Sequence[str], *,
               floor: pd.DataFrame | None = None, title: str = "", interval: str = "95% CI"):
    """Grouped bars: PSNR per task (groups) and mechanism (fixed colours) with whiskers from the ``lo``/``hi``
    columns (``interval`` names them); ``floor`` (rows ``task``, ``psnr``: the degraded input) drawn as a
    dashed black line per task."""
    tasks, methods = list(tasks), list(methods)
    fig, ax = style.figure("page", height=3.0)
    width = 0.8 / max(1, len(methods))
    for i, method in enumerate(methods):
        rows = bars[bars["method"] == method].set_index("task")
        x = np.array([tasks.index(t) for t in rows.index]) + (i - (len(methods) - 1) / 2) * width
        yerr = np.vstack([rows["psnr"] - rows["lo"], rows["hi"] - rows["psnr"]])
        ax.bar(x, rows["psnr"], width=width, color=style.colour(method), label=style.display_name(method), yerr=yerr,
               error_kw={"elinewidth": 0.6, "capsize": 1.5})
    if floor is not None and not floor.empty:
        shown = floor[floor["task"].isin(tasks)]
        for n, (task, value) in enumerate(zip(shown["task"], shown["psnr"])):
            centre = tasks.index(task)
            ax.hlines(value, centre - 0.42, centre + 0.42, colors="black", linestyles="--", linewidth=0.8,
                      label="degraded input" if n == 0 else None)
    ax.set_xticks(range(len(tasks)), style.display_names(tasks))
    ax.set_ylabel("PSNR (dB)")
    finite = bars[["lo"]].to_numpy(dtype=float)
    low = float(np.nanmin(finite)) if np.isfinite(finite).any() else 0.0
    if floor is not None and not floor.empty:
        low = min(low, float(floor["psnr"].min()))
    ax.set_ylim(bottom=max(0.0, low - 2.0))
    fig.legend(loc="outside lower center", ncols=4, title=f"mean; {style.bars_note(interval)}")
    if title:
        ax.set_title(style.wrap(title, 90))
    return fig
