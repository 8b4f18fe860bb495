"""The look of every figure the suite writes: seaborn's ``paper`` context (every font size, none set
by figure code), a colour-blind palette, sizes in inches for a two-column paper, one display name and
one colour per identifier (mechanism, task, site, …), and fonts embedded as TrueType so that PDFs are
editable and accepted by publishers.

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
# The paper context's smallest size is 8.8 pt (tick labels, legends); below this scale it would fall under 7 pt.
MIN_FONT_SCALE = 0.8
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
    Every font size comes from the paper context (≥ 8.8 pt at ``font_scale=1``); figure code sets none.

    Works both as a call (the style stays for the session) and as a context manager (the previous
    rcParams come back when the block ends). ``rc`` overrides individual rcParams.
    """
    if font_scale < MIN_FONT_SCALE:
        raise ValueError(f"font_scale {font_scale} would print tick labels under 7 pt; use at least {MIN_FONT_SCALE}")
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


# ----------------------------------------------------------------------------- names and colours
# ONE table of display names: every identifier a figure or table shows (tasks, degradation labels,
# fusion sites, mechanisms, prompt sources, text encoders, probe spaces and methods). Composite task
# keys ("rain+haze") are shown part by part; an identifier not listed here is shown as it is.
DISPLAY_NAMES: dict[str, str] = {
    # tasks (csnet.degrade.SINGLE_TASKS) and primitives / prompt labels (csnet.degrade.LABELS)
    "denoise_15": "Noise σ=15", "denoise_25": "Noise σ=25", "denoise_50": "Noise σ=50",
    "derain": "Rain", "dehaze": "Haze", "deblur": "Blur", "lowlight": "Low light",
    "noise": "Noise", "rain": "Rain", "haze": "Haze", "blur": "Blur", "low": "Low light",
    # fusion sites (csnet.models.restormer.SITES)
    "skip_fusion_level1": "Skip L1", "skip_fusion_level2": "Skip L2", "skip_fusion_level3": "Skip L3",
    "bottleneck_fusion": "Bottleneck",
    # mechanisms (csnet.models.FUSIONS) and the variant of notebook 01
    "none": "None (Restormer)", "implicit_prompt": "Implicit prompt", "channel_attention": "Channel attention",
    "soft_gate": "Soft gate", "cross_attention": "Cross-attention", "hard_select": "Hard select (CSNet)",
    "random_select": "Random select", "hard_select+mask_noise": "Hard select + mask noise",
    # prompt sources
    "P_v": "Image prompt", "P_t": "Text prompt", "image": "Image prompt", "text": "Text prompt",
    # text encoders (csnet.prompts)
    "l2_supercat": "WordLlama L2", "wordllama": "WordLlama L2", "onehot": "One-hot",
    # probe spaces and importance methods (analysis.sensitivity)
    "output": "Site output", "selection": "Selection (κĈ)",
    "ablation": "Ablation", "gradient": "Gradient", "activation": "Activation",
    "gradient_x_activation": "Gradient × activation", "conductance": "Conductance",
    # Table I rows (analysis.table1)
    "all channels (same network)": "All channels",
    "all channels scaled to K/κĈ (same network)": "All, scaled K/κĈ",
    "random sets of the same size": "Random sets",
    "baseline without selection (Restormer, fusion none)": "Restormer (no selection)",
    # sweeps (analysis.fusion_comparison)
    "omega": "Keep ratio ω", "kappa": "Expansion κ", "estimator": "Gradient estimator",
    # gradient estimators of hard selection (csnet.models.fusion.ESTIMATORS)
    "straight_through": "Straight-through", "gumbel": "Gumbel top-K",
}

# Multi-word identifiers that free text (recogniser names, titles) carries as they are.
DISPLAY_PHRASES: dict[str, str] = {"wordllama l2_supercat": "WordLlama L2"}


def display_name(identifier) -> str:
    """The name a reader sees for ``identifier`` (a task, site, mechanism, …): from
    :data:`DISPLAY_NAMES`; composites part by part (``rain+haze``, ``rain_haze`` → "Rain + Haze"); a Table I row
    "channels for <label>" as "<Label> channels"; anything else unchanged."""
    text = str(identifier)
    if text in DISPLAY_NAMES:
        return DISPLAY_NAMES[text]
    for joiner in ("+", "_"):  # task keys join parts with "+", prompt labels with "_" (rain_haze)
        parts = text.split(joiner)
        if len(parts) > 1 and all(part in DISPLAY_NAMES for part in parts):
            return " + ".join(DISPLAY_NAMES[part] for part in parts)
    if text.startswith("channels for "):
        return f"{display_name(text[len('channels for '):])} channels"
    return text


def display_names(identifiers) -> list[str]:
    return [display_name(i) for i in identifiers]


def _colourblind(i: int) -> tuple[float, float, float]:
    return tuple(sns.color_palette(PALETTE, 10)[i])


# seaborn "colorblind": 0 blue, 1 orange, 2 green, 3 red, 4 purple, 5 brown, 6 pink, 7 grey, 8 olive, 9 cyan
MECHANISM_COLOURS: dict[str, tuple[float, float, float]] = {
    "none": _colourblind(7), "implicit_prompt": _colourblind(0), "channel_attention": _colourblind(2),
    "soft_gate": _colourblind(4), "cross_attention": _colourblind(9), "hard_select": _colourblind(1),
    "random_select": _colourblind(6), "hard_select+mask_noise": _colourblind(5),
    # the classical references of analysis.classical (drawn with the mechanisms in notebook 03)
    "degraded input": (0.0, 0.0, 0.0), "NL-means (scikit-image)": _colourblind(5),
    "wavelet BayesShrink (scikit-image)": _colourblind(8), "dark channel prior (He et al. 2009)": _colourblind(3),
}
TASK_COLOURS: dict[str, tuple[float, float, float]] = {
    # noise levels as light → dark blues, far enough apart to tell; the primitive "noise" as σ=25
    "denoise_15": tuple(sns.color_palette("Blues", 7)[2]), "denoise_25": _colourblind(0),
    "denoise_50": mpl.colors.to_rgb("#08306b"), "noise": _colourblind(0),
    "derain": _colourblind(2), "rain": _colourblind(2), "dehaze": _colourblind(1), "haze": _colourblind(1),
    "deblur": _colourblind(4), "blur": _colourblind(4), "lowlight": _colourblind(5), "low": _colourblind(5),
    "rain+haze": _colourblind(6), "lowlight+haze": _colourblind(8), "noise+rain": _colourblind(3),
    "haze+rain+noise": _colourblind(7), "low+haze": _colourblind(8),
}
PROMPT_COLOURS: dict[str, tuple[float, float, float]] = {
    "P_v": _colourblind(0), "image": _colourblind(0), "P_t": _colourblind(1), "text": _colourblind(1),
}
_FALLBACK = [tuple(c) for c in sns.color_palette("dark", 10)]


def colour(identifier) -> tuple[float, float, float]:
    """The fixed colour of a mechanism, reference or task (the same in every figure). Identifiers that
    are neither get a colour from a separate dark palette, chosen from the name itself (stable run to run)."""
    import zlib

    text = str(identifier)
    if text in MECHANISM_COLOURS:
        return MECHANISM_COLOURS[text]
    if text in TASK_COLOURS:
        return TASK_COLOURS[text]
    if text in PROMPT_COLOURS:
        return PROMPT_COLOURS[text]
    return _FALLBACK[zlib.crc32(text.encode()) % len(_FALLBACK)]


def colours(identifiers) -> list[tuple[float, float, float]]:
    """:func:`colour` of each identifier; where two unknown identifiers would share a colour, the
    later one takes the next free colour of the fallback palette."""
    chosen: list = []
    for identifier in identifiers:
        c = colour(identifier)
        if c in chosen and not _fixed(identifier):
            free = [f for f in _FALLBACK if f not in chosen]
            c = free[0] if free else c
        chosen.append(c)
    return chosen


def _fixed(identifier) -> bool:
    return any(str(identifier) in table for table in (MECHANISM_COLOURS, TASK_COLOURS, PROMPT_COLOURS))


def display_text(text) -> str:
    """Free text (a title, a recogniser's name) with every identifier of :data:`DISPLAY_NAMES` that
    contains an underscore replaced by its display name (``hard_select — quick`` → "Hard select (CSNet) — quick")."""
    import re

    for phrase, name in DISPLAY_PHRASES.items():
        text = str(text).replace(phrase, name)
    return re.sub(r"[A-Za-z_][A-Za-z0-9_]*",
                  lambda m: DISPLAY_NAMES.get(m.group(0), m.group(0)) if "_" in m.group(0) else m.group(0), str(text))


def wrap(text: str, width: int = 40) -> str:
    """``text`` (through :func:`display_text`) broken into lines of at most ``width`` characters, for
    titles and legend entries."""
    import textwrap

    text = display_text(text)
    return "\n".join(textwrap.wrap(text, width)) or text


def bars_note(interval: str) -> str:
    """What the error bars of a figure are, for its legend or axis label (one wording everywhere)."""
    return f"bars: {interval}"
