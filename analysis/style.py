"""The look of every figure the suite writes: seaborn's ``paper`` context, a colour-blind palette,
sizes in inches for a two-column paper, and fonts embedded as TrueType so that PDFs are editable and
accepted by publishers.

Usage in a notebook::

    from analysis.style import paper_style, figure
    paper_style()                      # applies for the rest of the session
    fig, ax = figure("column")         # 3.5 in wide

or, to restore the previous settings afterwards::

    with paper_style():
        fig, ax = figure("page", height=2.5)
"""
from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import seaborn as sns

COLUMN_WIDTH = 3.5  # inches: one column of a two-column (IEEE) paper
PAGE_WIDTH = 7.16  # inches: the full text width of the same layout
GOLDEN = (5**0.5 - 1) / 2  # height / width when no height is given
PALETTE = "colorblind"  # seaborn's colour-blind-safe qualitative palette
SEQUENTIAL_CMAP = "viridis"  # perceptually uniform, readable in grey and by colour-blind readers
DIVERGING_CMAP = "vlag"  # for signed differences (e.g. ΔPSNR), centred on zero by the caller

# rcParams that make files reproducible and fonts embedded; applied by paper_style() and also by
# analysis.outputs.OutputDir.figure() at save time, so a figure saved without the style still embeds fonts.
REPRODUCIBLE_RC = {
    "pdf.fonttype": 42,  # TrueType, not Type 3 bitmaps
    "ps.fonttype": 42,
    "svg.hashsalt": "csnet",  # fixed ids in SVG output
    "svg.fonttype": "none",  # text stays text in SVG
}

_PAPER_RC = {
    **REPRODUCIBLE_RC,
    "figure.dpi": 150,
    "savefig.dpi": 300,
    "figure.constrained_layout.use": True,
    "image.cmap": SEQUENTIAL_CMAP,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
}


class _StyleContext:
    """Returned by :func:`paper_style`: the style is already applied; leaving a ``with`` block
    restores the rcParams that were in force before."""

    def __init__(self, saved: dict):
        self._saved = saved

    def __enter__(self) -> "_StyleContext":
        return self

    def __exit__(self, *exc) -> None:
        # dict.update bypasses the validators (and deprecation warnings) of rcParams.__setitem__,
        # as matplotlib's own rc_context does.
        dict.update(mpl.rcParams, self._saved)


def paper_style(font_scale: float = 1.0, rc: dict | None = None) -> _StyleContext:
    """Apply the paper style now (seaborn ``context="paper"``, colour-blind palette, embedded fonts).

    Works both as a call (the style stays for the session) and as a context manager (the previous
    rcParams come back when the block ends). ``rc`` overrides individual rcParams.
    """
    saved = dict(mpl.rcParams.copy())
    sns.set_theme(context="paper", style="ticks", palette=PALETTE, font_scale=font_scale,
                  rc={**_PAPER_RC, **(rc or {})})
    return _StyleContext(saved)


def figure_size(width: str | float = "column", height: float | None = None) -> tuple[float, float]:
    """``(width, height)`` in inches. ``width`` is ``"column"``, ``"page"`` or inches; ``height``
    defaults to the golden ratio of the width."""
    if isinstance(width, str):
        widths = {"column": COLUMN_WIDTH, "page": PAGE_WIDTH}
        if width not in widths:
            raise ValueError(f"width {width!r} is not one of {sorted(widths)} (or a number of inches)")
        inches = widths[width]
    else:
        inches = float(width)
    if inches <= 0 or (height is not None and height <= 0):
        raise ValueError(f"figure sizes must be positive inches, got width={width!r}, height={height!r}")
    return inches, (inches * GOLDEN if height is None else float(height))


def figure(width: str | float = "column", height: float | None = None, *, nrows: int = 1,
           ncols: int = 1, **subplots_kw):
    """A new ``(fig, axes)`` sized for the paper, laid out with constrained layout.

    Extra keyword arguments go to :func:`matplotlib.pyplot.subplots` (``sharex``, ``squeeze``, …).
    """
    subplots_kw.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, figsize=figure_size(width, height), **subplots_kw)
