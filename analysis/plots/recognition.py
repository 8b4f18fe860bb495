"""Figures of notebook 04 (degradation recognition): confusion matrices, accuracy against the number
of classes, embeddings of the visual prompts with the text anchors, and restoration with predicted
against oracle prompts."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from analysis import style

# Matrices with more classes than this carry no numbers in their cells (they would not fit at 7 pt).
ANNOTATE_UP_TO = 6


def confusion_figure(matrices: Mapping[str, pd.DataFrame], title: str):
    """One row-normalised confusion matrix per recogniser, one colour scale (0–1) for all panels; the
    true labels named once per row of panels."""
    import seaborn as sns

    n = len(matrices)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    classes = max((len(m) for m in matrices.values()), default=1)
    side = 0.5 + 0.16 * classes
    heading = style.wrap(title, 75)
    # room below each square for rotated class names (up to ~20 characters) and above it for a 3-line title
    fig, axes = style.figure("page", height=(side + 2.3) * nrows + 0.2 * (heading.count("\n") + 2),
                             nrows=nrows, ncols=ncols, squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for i, (ax, (name, matrix)) in enumerate(zip(axes.flat, matrices.items())):
        shown = matrix.copy()
        shown.index = style.display_names(shown.index)
        shown.columns = style.display_names(shown.columns)
        sns.heatmap(shown, annot=len(shown.columns) <= ANNOTATE_UP_TO, fmt=".2f", vmin=0, vmax=1,
                    cmap=style.SEQUENTIAL_CMAP, cbar=False, ax=ax, square=True, yticklabels=i % ncols == 0,
                    xticklabels=True)
        ax.set_title(style.wrap(name, 18 if ncols == 3 else 24))  # three panels abreast: ~18 characters each
        ax.set_xlabel("predicted")
        ax.set_ylabel("true" if i % ncols == 0 else "")
        ax.tick_params(axis="x", labelrotation=90)
        ax.tick_params(axis="y", labelrotation=0)
    fig.colorbar(axes.flat[0].collections[0], ax=axes.ravel().tolist(), shrink=0.5, label="fraction of true class")
    fig.suptitle(heading)
    return fig


def growth_figure(growth: pd.DataFrame, title: str, interval: str = "95% CI"):
    """Accuracy against the number of degradation classes, one line per recogniser, with the interval
    of the ``lo``/``hi`` columns (``interval`` names it) and the chance level."""
    fig, ax = style.figure("column", height=3.6)
    recognisers = list(dict.fromkeys(growth["recogniser"]))
    dodge = 0.08  # recognisers side by side at each class count, so equal accuracies do not hide each other
    for i, (colour, recogniser) in enumerate(zip(style.colours(recognisers), recognisers)):
        group = growth[growth["recogniser"] == recogniser].sort_values("n_classes")
        ax.errorbar(group["n_classes"] + (i - (len(recognisers) - 1) / 2) * dodge, group["accuracy"],
                    yerr=[group["accuracy"] - group["lo"], group["hi"] - group["accuracy"]],
                    marker="o", ms=3, capsize=2, lw=1, color=colour, label=style.wrap(recogniser, 45))
    n_classes = sorted(growth["n_classes"].unique())
    ax.set_xticks(n_classes)
    ax.set_xlabel("degradation classes")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.plot(n_classes, [1 / n for n in n_classes], ls=":", color="grey", lw=0.8, label="chance")
    fig.legend(loc="outside lower center", ncols=1, title=f"mean; {style.bars_note(interval)}")
    ax.set_title(style.wrap(title, 36))
    return fig


def embedding_figure(visual_2d: np.ndarray, labels: Sequence[str], anchors_2d: np.ndarray,
                     anchor_labels: Sequence[str], held_out: Sequence[str], title: str, axis_names=("1", "2")):
    """Visual prompts (dots, coloured by true label) with the text anchors drawn in as stars of their
    label's colour (held-out labels' anchors as open stars). The anchors are named by colour in the
    legend, not by text beside the star, so that no two names can overlap."""
    from matplotlib.lines import Line2D

    fig, ax = style.figure("page", height=3.4)
    order = list(dict.fromkeys(list(anchor_labels) + list(labels)))
    colours = dict(zip(order, style.colours(order)))
    labels = np.asarray(labels)
    for label in order:
        mask = labels == label
        if mask.any():
            ax.scatter(visual_2d[mask, 0], visual_2d[mask, 1], s=5, alpha=0.6, color=colours[label], lw=0)
    for point, label in zip(anchors_2d, anchor_labels):
        held = label in held_out
        ax.scatter(point[0], point[1], marker="*", s=90, facecolor="none" if held else colours[label],
                   edgecolor=colours[label] if held else "black", lw=0.8, zorder=3)
    handles = [Line2D([], [], marker="o", linestyle="", markersize=4, color=colours[label]) for label in order]
    names = [style.display_name(label) + (" (held out)" if label in held_out else "") for label in order]
    handles += [Line2D([], [], marker="*", linestyle="", markersize=8, markerfacecolor="grey",
                       markeredgecolor="black"),
                Line2D([], [], marker="*", linestyle="", markersize=8, markerfacecolor="none",
                       markeredgecolor="grey")]
    names += ["text anchor", "text anchor (held out)"]
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    fig.legend(handles, names, loc="outside right upper", ncols=1)
    ax.set_title(style.wrap(title, 50))
    return fig


def downstream_figure(summary: pd.DataFrame, title: str):
    """Mean PSNR per task with predicted (image, P_v) and oracle (text, P_t) prompts: means over seeds
    and images, no bars (the paired difference's interval is in the notebook's ``downstream_psnr`` table)."""
    fig, ax = style.figure("column", height=2.8)
    x = np.arange(len(summary))
    ax.bar(x - 0.2, summary["psnr_image_prompt"], width=0.4, color=style.colour("P_v"),
           label="predicted: " + style.display_name("P_v"))
    ax.bar(x + 0.2, summary["psnr_text_prompt"], width=0.4, color=style.colour("P_t"),
           label="oracle: " + style.display_name("P_t"))
    ax.set_xticks(x, [style.wrap(name, 8) for name in style.display_names(summary["task"])])
    ax.set_ylabel("PSNR (dB)")
    low = float(min(summary["psnr_image_prompt"].min(), summary["psnr_text_prompt"].min()))
    ax.set_ylim(max(0.0, low - 3), None)
    fig.legend(loc="outside lower center", ncols=1, title="mean over seeds and images (no bars)")
    ax.set_title(style.wrap(title, 36))
    return fig
