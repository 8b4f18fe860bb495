"""Figures of notebook 02 (channel sensitivity): importance heatmaps, agreement between attribution
methods, top-k overlap between tasks, selection agreement, readout accuracy, embeddings and the one
number per mechanism."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from analysis import style
from analysis.sensitivity import _units, importance_matrix


def _sorted_columns(matrix: pd.DataFrame) -> pd.DataFrame:
    """Channels ordered by the task that uses them most, then by that importance (descending)."""
    values = matrix.to_numpy()
    if values.size == 0:
        return matrix
    owner = values.argmax(axis=0)
    peak = values.max(axis=0)
    order = np.lexsort((-peak, owner))
    return matrix.iloc[:, order]


def heatmap_figure(importance: pd.DataFrame, mechanisms: Sequence[str], space: str, method: str, seed: int,
                   tasks: Sequence[str], title: str, unit: str):
    """Task × channel importance, one panel per (mechanism, site), channels sorted by their top task.
    One colour scale for every panel (symmetric about 0, up to the largest |importance| of the figure),
    so that panels compare: a deep site that barely moves PSNR looks pale."""
    import seaborn as sns

    data = importance[(importance["space"] == space) & (importance["method"] == method)
                      & (importance["seed"] == seed)]
    mechanisms = [m for m in mechanisms if m in set(data["mechanism"])]
    sites = list(dict.fromkeys(data["site"]))
    values = np.abs(data["importance"].to_numpy(dtype=float))
    limit = float(np.nanmax(values)) if np.isfinite(values).any() else 0.0
    limit = limit or 1.0
    n_tasks = max(1, len([t for t in tasks if t in set(data["task"])]))
    fig, axes = style.figure("page", height=max(2.6, 0.9 + (0.25 + 0.16 * n_tasks) * max(1, len(mechanisms))),
                             nrows=max(1, len(mechanisms)), ncols=max(1, len(sites)), squeeze=False,
                             sharex=False, sharey=False)
    for row, mechanism in enumerate(mechanisms):
        for col, site in enumerate(sites):
            ax = axes[row][col]
            group = data[(data["mechanism"] == mechanism) & (data["site"] == site)]
            matrix = _sorted_columns(importance_matrix(group, [t for t in tasks if t in set(group["task"])]))
            matrix.index = style.display_names(matrix.index)
            sns.heatmap(matrix, ax=ax, cmap=style.DIVERGING_CMAP, center=0, vmin=-limit, vmax=limit,
                        xticklabels=False, yticklabels=col == 0, cbar=False)
            ax.set_xlabel(f"{matrix.shape[1]} channels" if row == len(mechanisms) - 1 else "")
            ax.set_ylabel(style.wrap(style.display_name(mechanism), 12) if col == 0 else "")
            ax.tick_params(axis="y", labelrotation=0)
            if row == 0:
                ax.set_title(style.display_name(site))
    if mechanisms and sites:
        fig.colorbar(axes[0][0].collections[0], ax=axes.ravel().tolist(), shrink=0.6,
                     label=f"importance ({unit})\nseed {seed}, one scale")
    fig.suptitle(style.wrap(title, 75))
    return fig


def correlation_figure(correlations: pd.DataFrame):
    """Spearman ρ between attribution methods (mean over tasks and seeds): one panel per space, rows
    (mechanism, method pair) shared between panels, one colour scale (−1…1)."""
    import seaborn as sns

    spaces = list(dict.fromkeys(correlations["space"]))
    tables = {}
    for space in spaces:
        data = correlations[correlations["space"] == space]
        tables[space] = data.pivot_table(index=["mechanism", "pair"], columns="site", values="spearman", sort=False)
    rows = list(dict.fromkeys(key for table in tables.values() for key in table.index))
    # tall enough for the colour bar's two-line label, however few rows
    fig, axes = style.figure("page", height=max(2.6, 1.4 + 0.19 * len(rows)), ncols=max(1, len(spaces)), squeeze=False)
    for col, (ax, space) in enumerate(zip(axes[0], spaces)):
        table = tables[space].reindex(rows)
        table.index = [f"{style.display_name(m)}: {_pair_name(p)}" for m, p in table.index]
        table.columns = style.display_names(table.columns)
        sns.heatmap(table, annot=True, fmt=".2f", vmin=-1, vmax=1, cmap=style.DIVERGING_CMAP, center=0, ax=ax,
                    cbar=col == len(spaces) - 1, yticklabels=col == 0,
                    cbar_kws={"label": "Spearman ρ\n(mean over tasks, seeds)"})
        ax.set_title(style.display_name(space))
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(axis="x", labelrotation=90)
    return fig


def _pair_name(pair: str) -> str:
    """``ablation~gradient`` (any separator among ~ / vs -) as "Ablation–Gradient"."""
    import re

    parts = [p for p in re.split(r"\s*(?:~|/| vs |-)\s*", str(pair)) if p]
    return "–".join(style.display_names(parts)) if len(parts) > 1 else style.display_name(pair)


def _site_bars(data: pd.DataFrame, value: str, ylabel: str, chance: pd.Series | float, chance_label: str,
               interval: str, top: float = 1.05):
    """Bars of ``value`` per site (x) and mechanism (fixed colours), mean over the rows of each cell with
    their SD as bars (``interval`` says over what), a dashed chance level per site, legend on top."""
    import seaborn as sns
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    fig, ax = style.figure("column", height=3.2)
    sites = list(dict.fromkeys(data["site"]))
    mechanisms = list(dict.fromkeys(data["mechanism"]))
    shown = data.assign(site=style.display_names(data["site"]), mechanism=style.display_names(data["mechanism"]))
    palette = dict(zip(style.display_names(mechanisms), style.colours(mechanisms)))
    sns.barplot(data=shown, x="site", y=value, hue="mechanism", palette=palette, errorbar="sd", ax=ax, saturation=1,
                legend=False, err_kws={"linewidth": 0.8}, capsize=0.1)
    levels = chance.reindex(sites).to_numpy() if isinstance(chance, pd.Series) else np.full(len(sites), chance)
    for i, level in enumerate(levels):
        ax.hlines(level, i - 0.4, i + 0.4, colors="black", linestyles="dashed", linewidth=0.8)
    handles = [Patch(facecolor=palette[m]) for m in palette]
    handles.append(Line2D([], [], color="black", linestyle="dashed", linewidth=0.8))
    # the chance entry wrapped: two columns of a one-column figure hold ~20 characters each
    fig.legend(handles, list(palette) + [style.wrap(chance_label, 16)], loc="outside upper center", ncols=2,
               title=f"mean; {style.bars_note(interval)}")
    ax.set_ylim(0, top)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("")
    return fig


def overlap_figure(rank_stats: pd.DataFrame, method: str = "ablation", space: str = "output"):
    """Mean between-task Jaccard of the top-k channels per site and mechanism, with the chance level."""
    data = _units(rank_stats, space, method)
    return _site_bars(data, "between_task_jaccard", "between-task Jaccard\n(top-k channels)",
                      data.groupby("site", sort=False)["chance"].mean(), "chance (random k-sets)", "SD over seeds")


def agreement_figure(agreement: pd.DataFrame, method: str = "ablation"):
    """Fraction of captum's K most sensitive expanded channels that the model keeps, per site."""
    data = agreement[agreement["method"] == method]
    return _site_bars(data, "precision", "kept among the\ntop-K sensitive", data.groupby("site", sort=False)["chance"].mean(),
                      "chance K/κĈ", "SD over seeds and tasks")


def readout_figure(readout: pd.DataFrame):
    """Cross-validated readout accuracy per site and mechanism, with the chance level."""
    return _site_bars(readout, "accuracy", "readout accuracy\n(cross-validated)",
                      readout.groupby("site", sort=False)["chance"].mean(), "chance (majority class)", "SD over seeds")


def summary_figure(summary: pd.DataFrame, interval: str = "95% CI"):
    """The one number per mechanism with its interval (``*_lo``/``*_hi`` columns, ``interval`` names
    it), in the mechanism's colour, and the chance level."""
    fig, ax = style.figure("column", height=1.1 + 0.25 * len(summary))
    y = np.arange(len(summary))
    estimate = summary["between_task_jaccard"].to_numpy(dtype=float)
    errors = np.vstack([estimate - summary["between_task_jaccard_lo"].to_numpy(dtype=float),
                        summary["between_task_jaccard_hi"].to_numpy(dtype=float) - estimate])
    for i, mechanism in enumerate(summary["mechanism"]):
        ax.errorbar(estimate[i], y[i], xerr=errors[:, i:i + 1], fmt="o", markersize=4, capsize=2,
                    color=style.colour(mechanism))
    ax.axvline(summary["chance_jaccard"].mean(), color="black", linestyle="dashed", linewidth=0.8, label="chance")
    ax.set_yticks(y, style.display_names(summary["mechanism"]))
    ax.set_ylim(-0.5, len(summary) - 0.5)
    ax.invert_yaxis()
    ax.set_xlabel("top-k Jaccard between tasks\n" + style.wrap(f"(mean; {style.bars_note(interval)})", 26))
    ax.set_xlim(0, 1)
    ax.legend(loc="lower right")
    return fig


def embedding_figure(points: pd.DataFrame, title: str):
    """Scatter of 2-D embeddings coloured by degradation (fixed task colours), one panel per
    (mechanism, site); axes carry no units (PCA / t-SNE coordinates)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    mechanisms = list(dict.fromkeys(points["mechanism"]))
    sites = list(dict.fromkeys(points["site"]))
    labels = list(dict.fromkeys(points["label"]))
    palette = dict(zip(labels, style.colours(labels)))
    fig, axes = style.figure("page", height=0.8 + 1.3 * len(mechanisms), nrows=len(mechanisms), ncols=len(sites),
                             squeeze=False)
    for row, mechanism in enumerate(mechanisms):
        for col, site in enumerate(sites):
            ax = axes[row][col]
            data = points[(points["mechanism"] == mechanism) & (points["site"] == site)]
            sns.scatterplot(data=data, x="x", y="y", hue="label", hue_order=labels, palette=palette, s=6, ax=ax,
                            legend=False, linewidth=0)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel("")
            ax.set_ylabel(style.wrap(style.display_name(mechanism), 12) if col == 0 else "")
            if row == 0:
                ax.set_title(style.display_name(site))
    handles = [plt.Line2D([], [], marker="o", linestyle="", markersize=4, color=palette[label]) for label in labels]
    fig.legend(handles, style.display_names(labels), loc="outside lower center", ncols=min(6, len(labels)),
               title="degradation")
    fig.suptitle(style.wrap(title, 75))
    return fig
