"""Figures of notebook 01 (Table I, channel misallocation): the ΔPSNR heatmap and the channel-set overlap."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from analysis import style
from analysis.table1 import own_condition


def delta_heatmap(summary: pd.DataFrame, tasks: Sequence[str], labels: Sequence[str], title: str):
    """ΔPSNR of every row of Table I against each column's own-channel entry (0 on the diagonal), mean
    over seeds. Page width: the rows' names stay on one line each and the cells hold their numbers."""
    import seaborn as sns

    table = summary.set_index("channels")[[f"{t}_psnr" for t in tasks]]
    table.columns = list(tasks)
    own = {task: table.loc[own_condition(lab), task] for task, lab in zip(tasks, labels)
           if own_condition(lab) in table.index}
    delta = table.apply(lambda col: col - own.get(col.name, np.nan))
    delta.index = style.display_names(delta.index)
    delta.columns = style.display_names(delta.columns)
    fig, ax = style.figure("page", height=max(2.3, 0.9 + 0.22 * len(delta)))  # room for the bar's label
    finite = np.abs(delta.to_numpy(dtype=float))
    limit = float(np.nanmax(finite)) if np.isfinite(finite).any() else 1.0
    annot = delta.round(1) + 0.0  # + 0.0 turns the -0.0 of a rounded small negative into 0.0
    sns.heatmap(delta, annot=annot, fmt=".1f", cmap="RdBu", center=0, vmin=-(limit or 1.0), vmax=limit or 1.0,
                ax=ax, cbar_kws={"label": "ΔPSNR vs own channels (dB)\nmean over seeds"})
    ax.set_xlabel("evaluated task")
    ax.set_ylabel("")
    ax.tick_params(axis="x", labelrotation=0)
    ax.set_title(style.wrap(title, 90))
    return fig


def jaccard_figure(overlap: pd.DataFrame):
    """Jaccard overlap of the tasks' channel sets, one panel per fusion site (mean over seeds), one colour
    scale (0–1) for every panel."""
    import seaborn as sns

    sites = list(dict.fromkeys(overlap["site"]))
    fig, axes = style.figure("page", height=2.3, ncols=len(sites), squeeze=False)
    for col, (ax, site) in enumerate(zip(axes[0], sites)):
        square = overlap[overlap["site"] == site].pivot_table(index="a", columns="b", values="jaccard", sort=False)
        square.index = style.display_names(square.index)
        square.columns = style.display_names(square.columns)
        sns.heatmap(square, annot=True, fmt=".2f", vmin=0, vmax=1, cmap=style.SEQUENTIAL_CMAP, cbar=False, ax=ax,
                    square=True, yticklabels=col == 0)
        ax.set_title(style.display_name(site))
        ax.set_xlabel("")
        ax.set_ylabel("")
        # upright names when they fit side by side (each panel is about 1.4 in wide)
        ax.tick_params(axis="x", labelrotation=90 if sum(len(str(c)) for c in square.columns) > 18 else 0)
        ax.tick_params(axis="y", labelrotation=0)
    fig.colorbar(axes[0][0].collections[0], ax=axes[0].tolist(), label="Jaccard\n(mean over seeds)", shrink=0.8)
    return fig
