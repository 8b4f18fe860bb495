"""Every figure function of analysis.plots, drawn on small synthetic data at the largest layout the
notebooks use (7 mechanisms, 4 sites, 5 tasks, 11 classes, long names), is checked as a reviewer would:
no matplotlib warning (constrained layout collapsing axes is one), no axes of (near) zero size, no text
outside the canvas, no overlapping tick labels, no font under 7 pt, no raw identifier where a display
name exists, and the same colour for a mechanism or task in every figure."""
from __future__ import annotations

import itertools
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from analysis import style  # noqa: E402
from analysis import table1  # noqa: E402
from analysis.plots import before_after as before_after_plots  # noqa: E402
from analysis.plots import fusion as fusion_plots  # noqa: E402
from analysis.plots import recipe as recipe_plots  # noqa: E402
from analysis.plots import recognition as recognition_plots  # noqa: E402
from analysis.plots import sensitivity as sensitivity_plots  # noqa: E402
from analysis.plots import table1 as table1_plots  # noqa: E402

MIN_POINTS = 7.0
MECHANISMS = ["none", "implicit_prompt", "channel_attention", "soft_gate", "cross_attention", "hard_select",
              "random_select"]
SITES = ["skip_fusion_level1", "skip_fusion_level2", "skip_fusion_level3", "bottleneck_fusion"]
TASKS = ["denoise_15", "denoise_25", "denoise_50", "derain", "dehaze"]
LABELS = ["noise", "rain", "haze"]
CLASSES = ["noise", "rain", "haze", "blur", "low", "rain+haze", "lowlight+haze", "noise+rain", "haze+rain+noise",
           "denoise_50", "deblur"]
RECOGNISERS = ["text anchors: open_clip ViT-B-32 (random init — no weights offline)",
               "frequency cues (AdaIR-style)", "implicit prompts (PromptIR-style)"]


# ----------------------------------------------------------------------------- the checks


def _undrawn_tick_labels(fig) -> set[int]:
    """Tick labels matplotlib keeps but does not draw (ticks outside the axis' view interval)."""
    hidden = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            tolerance = 1e-9 * max(1.0, abs(hi - lo))
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not lo - tolerance <= tick.get_loc() <= hi + tolerance:
                    hidden.update({id(tick.label1), id(tick.label2)})
    return hidden


def _tick_labels(axis):
    lo, hi = sorted(axis.get_view_interval())
    tolerance = 1e-9 * max(1.0, abs(hi - lo))
    return [tick.label1 for tick in axis.get_major_ticks()
            if lo - tolerance <= tick.get_loc() <= hi + tolerance and tick.label1.get_visible()
            and tick.label1.get_text().strip()]


def _visible_texts(fig):
    hidden = _undrawn_tick_labels(fig)
    for text in fig.findobj(Text):
        if id(text) in hidden:
            continue
        if text.get_visible() and text.get_text().strip() and text.get_figure() is not None:
            ax = getattr(text, "axes", None)
            if ax is not None and not ax.get_visible():
                continue
            yield text


def _overlap(a, b, slack: float = 0.5) -> bool:
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > slack) and (min(a.y1, b.y1) - max(a.y0, b.y0) > slack)


def check_figure(fig) -> None:
    """Fail on what a reviewer would reject; see the module docstring."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    dpi = fig.dpi
    canvas = fig.bbox
    for ax in fig.axes:
        if not ax.get_visible() or not ax.axison:
            continue
        box = ax.get_window_extent(renderer)
        smallest = 0.03 if hasattr(ax, "_colorbar") else 0.4
        assert box.width / dpi >= smallest and box.height / dpi >= smallest, (
            f"axes {ax.get_title()!r} is {box.width / dpi:.2f} × {box.height / dpi:.2f} in: (near) zero size")
    for text in _visible_texts(fig):
        assert text.get_fontsize() >= MIN_POINTS, f"{text.get_text()!r} is {text.get_fontsize():.1f} pt"
        box = text.get_window_extent(renderer)
        assert (box.x0 >= canvas.x0 - 1 and box.y0 >= canvas.y0 - 1 and box.x1 <= canvas.x1 + 1
                and box.y1 <= canvas.y1 + 1), f"text {text.get_text()!r} leaves the canvas ({box} vs {canvas})"
    labels = _label_texts(fig)
    boxes = [t.get_window_extent(renderer) for t in labels]
    for (ta, a), (tb, b) in itertools.combinations(zip(labels, boxes), 2):
        assert not _overlap(a, b, slack=1.0), f"{ta.get_text()!r} and {tb.get_text()!r} overlap"
    for ax in fig.axes:
        if not ax.get_visible() or not ax.axison:
            continue
        for axis in (ax.xaxis, ax.yaxis):
            labels = _tick_labels(axis)
            boxes = [t.get_window_extent(renderer) for t in labels]
            for (ta, a), (tb, b) in itertools.combinations(zip(labels, boxes), 2):
                assert not _overlap(a, b), f"tick labels {ta.get_text()!r} and {tb.get_text()!r} overlap"


def _label_texts(fig) -> list:
    """Titles, axis labels, suptitle and legend entries: the texts that must never overlap each other."""
    texts = [fig._suptitle] if fig._suptitle is not None else []
    for legend in list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]:
        texts += list(legend.get_texts()) + [legend.get_title()]
    for ax in fig.axes:
        if ax.get_visible() and ax.axison:
            texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]
    return [t for t in texts if t is not None and t.get_visible() and t.get_text().strip()]


def raw_identifiers(fig) -> set[str]:
    """Identifiers that have a display name but appear raw in a visible text of ``fig``."""
    found = set()
    for text in _visible_texts(fig):
        for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text.get_text()):
            if "_" in word and word in style.DISPLAY_NAMES:
                found.add(word)
    return found


# ----------------------------------------------------------------------------- synthetic tables

RNG = np.random.default_rng(0)


def table1_summary():
    rows = []
    for condition in table1.condition_order(LABELS):
        row = {"channels": condition, "n_seeds": 3}
        for task in TASKS:
            row[f"{task}_psnr"] = 20 + 10 * RNG.random()
            row[f"{task}_psnr_std"] = RNG.random()
            row[f"{task}_ssim"] = RNG.random()
            row[f"{task}_ssim_std"] = 0.01
        rows.append(row)
    return pd.DataFrame(rows)


def importance_frame():
    rows = []
    for mechanism, site, task in itertools.product(MECHANISMS, SITES, TASKS):
        scale = 3.0 if site == "skip_fusion_level1" else 0.02
        for channel in range(24):
            rows.append({"mechanism": mechanism, "seed": 0, "site": site, "space": "output", "task": task,
                         "label": task, "method": "ablation", "channel": channel,
                         "importance": scale * RNG.standard_normal(), "n_images": 4})
    return pd.DataFrame(rows)


def site_rows(value: str, per: tuple = ("seed",)):
    rows = []
    for mechanism, site, seed in itertools.product(MECHANISMS, SITES, range(3)):
        rows.append({"mechanism": mechanism, "site": site, "seed": seed, "space": "output", "method": "ablation",
                     value: RNG.random(), "chance": 0.2})
    return pd.DataFrame(rows)


def figures():
    """(name, figure factory) for every figure function in analysis.plots."""
    summary = table1_summary()
    overlap = pd.DataFrame([{"site": s, "a": a, "b": b, "jaccard": RNG.random()}
                            for s in SITES for a in LABELS for b in LABELS])
    importance = importance_frame()
    correlations = pd.DataFrame([{"space": space, "mechanism": m, "pair": pair, "site": s, "spearman": RNG.random()}
                                 for space in ("output", "selection") for m in MECHANISMS
                                 for pair in ("ablation vs gradient", "ablation vs activation", "gradient vs activation")
                                 for s in SITES])
    sens_summary = pd.DataFrame({"mechanism": MECHANISMS, "between_task_jaccard": np.linspace(0.2, 0.8, 7),
                                 "between_task_jaccard_lo": np.linspace(0.1, 0.7, 7),
                                 "between_task_jaccard_hi": np.linspace(0.3, 0.9, 7), "chance_jaccard": 0.1})
    points = pd.DataFrame([{"mechanism": m, "site": s, "label": lab, "x": RNG.random(), "y": RNG.random()}
                           for m in MECHANISMS[:3] for s in SITES for lab in CLASSES[:5] for _ in range(4)])
    sweep = []
    for name, values in (("omega", [0.25, 0.5, 0.75]), ("kappa", [1.0, 2.0, 4.0]),
                         ("estimator", ["straight_through", "gumbel"])):
        for value, task in itertools.product(values, TASKS):
            psnr = 25 + RNG.random()
            sweep.append({"sweep": name, "value": value, "variant": f"{name}={value}", "task": task,
                          "default": value in (0.5, 2.0, "straight_through"), "psnr": psnr,
                          "psnr_lo": psnr - 0.5, "psnr_hi": psnr + 0.5})
    sweep = pd.DataFrame(sweep)
    bars = pd.DataFrame([{"method": m, "task": t, "psnr": 25.0 + RNG.random(), "lo": 24.0, "hi": 26.5}
                         for m in MECHANISMS for t in TASKS])
    floor = pd.DataFrame({"task": TASKS, "psnr": np.linspace(15, 22, len(TASKS))})
    matrices = {name: pd.DataFrame(RNG.dirichlet(np.ones(len(CLASSES)), len(CLASSES)), index=CLASSES,
                                   columns=CLASSES) for name in RECOGNISERS}
    small = {name: pd.DataFrame(np.eye(3), index=LABELS, columns=LABELS) for name in RECOGNISERS[:2]}
    growth = pd.DataFrame([{"recogniser": r, "n_classes": n, "accuracy": 0.5, "lo": 0.4, "hi": 0.6}
                           for r in RECOGNISERS for n in (3, 5, 11)])
    visual = RNG.standard_normal((60, 2))
    anchors = np.zeros((len(CLASSES), 2)) + RNG.standard_normal((len(CLASSES), 2)) * 0.01  # all in one spot
    downstream = pd.DataFrame({"task": TASKS, "psnr_image_prompt": 25.0, "psnr_text_prompt": 26.0})
    long_title = ("Channel sensitivity of every mechanism — quick profile, 3 seeds, 5 tasks, text prompts at test, "
                  "channel ablation in the output space (numbers not meaningful)")
    before_after = pd.DataFrame([{"mechanism": m, "arm": arm, "condition": condition, "task": t,
                                  "psnr": 25.0 + RNG.random(), "psnr_std": 0.3}
                                 for m in MECHANISMS[:5] for t in TASKS
                                 for arm, condition in (("before", "image, whole"), ("after", "image, tiled"))])
    references = pd.DataFrame([{"method": method, "task": t, "psnr": 22.0 + RNG.random()}
                               for t in TASKS for method in ("degraded input", "NL-means (scikit-image)")])
    recipe_rows = []
    trials = ([("lr", f, lr, "cosine", 48, 8, "projection") for lr in (2e-4, 1e-3, 2e-3, 4e-3)
               for f in ("none", "hard_select")]
              + [("schedule", f, 2e-3, sch, 48, 8, "projection") for sch in ("cosine", "wsd") for f in ("none", "hard_select")]
              + [("patch", f, 2e-3, "wsd", p, b, "projection") for p, b in ((32, 18), (48, 8), (96, 2))
                 for f in ("none", "hard_select")]
              + [("selection_start", f, 2e-3, "wsd", 32, 18, start) for start in ("projection", "identity")
                 for f in ("hard_select", "soft_gate", "random_select")])
    for (stage, fusion, lr, schedule, patch, batch, start), seed, task in itertools.product(trials, (0, 1), TASKS):
        recipe_rows.append({"stage": stage, "fusion": fusion, "seed": seed, "lr": lr, "schedule": schedule,
                            "patch": patch, "batch": batch, "selection_start": start, "step": 300, "task": task,
                            "psnr": 22 + RNG.random(), "run": f"{fusion}-{stage}-{lr}-{schedule}-{patch}-{start}-{seed}"})
    recipe_table = pd.DataFrame(recipe_rows)
    return {
        "recipe.recipe_figure": lambda: recipe_plots.recipe_figure(recipe_table, title=long_title),
        "before_after.before_after_figure": lambda: before_after_plots.before_after_figure(
            before_after, references, TASKS, MECHANISMS[:5], title=long_title),
        "table1.delta_heatmap": lambda: table1_plots.delta_heatmap(
            summary, TASKS, [t.split("_")[0].replace("denoise", "noise").replace("de", "") for t in TASKS],
            "hard_select — quick (3 seeds)"),
        "table1.jaccard_figure": lambda: table1_plots.jaccard_figure(overlap),
        "sensitivity.heatmap_figure": lambda: sensitivity_plots.heatmap_figure(
            importance, MECHANISMS, "output", "ablation", 0, TASKS, long_title, "dB"),
        "sensitivity.correlation_figure": lambda: sensitivity_plots.correlation_figure(correlations),
        "sensitivity.heatmap_figure[small]": lambda: sensitivity_plots.heatmap_figure(
            importance[importance["task"].isin(TASKS[:3])], MECHANISMS[:1], "output", "ablation", 0, TASKS[:3], "t", "dB"),
        "table1.delta_heatmap[small]": lambda: table1_plots.delta_heatmap(
            summary.iloc[:3], TASKS[:3], ["noise"] * 3, "t"),
        "sensitivity.correlation_figure[small]": lambda: sensitivity_plots.correlation_figure(
            correlations[correlations["mechanism"].isin(MECHANISMS[:1])]),
        "sensitivity.overlap_figure": lambda: sensitivity_plots.overlap_figure(
            site_rows("between_task_jaccard")),
        "sensitivity.agreement_figure": lambda: sensitivity_plots.agreement_figure(site_rows("precision")),
        "sensitivity.readout_figure": lambda: sensitivity_plots.readout_figure(site_rows("accuracy")),
        "sensitivity.summary_figure": lambda: sensitivity_plots.summary_figure(sens_summary),
        "sensitivity.embedding_figure": lambda: sensitivity_plots.embedding_figure(points, long_title),
        "fusion.sweep_figure[omega]": lambda: fusion_plots.sweep_figure(sweep, "omega", TASKS, "hard_select — quick"),
        "fusion.sweep_figure[kappa]": lambda: fusion_plots.sweep_figure(sweep, "kappa", TASKS, "hard_select — quick"),
        "fusion.sweep_figure[estimator]": lambda: fusion_plots.sweep_figure(sweep, "estimator", TASKS, "t"),
        "fusion.bar_figure": lambda: fusion_plots.bar_figure(bars, TASKS, MECHANISMS, floor=floor, title=long_title),
        "recognition.confusion_figure": lambda: recognition_plots.confusion_figure(matrices, long_title),
        "recognition.confusion_figure[small]": lambda: recognition_plots.confusion_figure(small, "t"),
        "recognition.growth_figure": lambda: recognition_plots.growth_figure(growth, long_title),
        "recognition.embedding_figure": lambda: recognition_plots.embedding_figure(
            visual, list(RNG.choice(CLASSES, 60)), anchors, CLASSES, ["rain+haze"],
            "t-SNE of visual prompts — text anchors: wordllama l2_supercat — smoke (numbers not meaningful)",
            ("t-SNE 1", "t-SNE 2")),
        "recognition.downstream_figure": lambda: recognition_plots.downstream_figure(downstream, long_title),
    }


FIGURES = figures()


@pytest.fixture(autouse=True)
def _paper_style():
    with style.paper_style():
        yield
    plt.close("all")


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figure_passes_the_reviewer_checks(name):
    fig = FIGURES[name]()
    check_figure(fig)
    assert not raw_identifiers(fig), f"{name} shows raw identifiers {raw_identifiers(fig)}"


def test_checks_catch_what_they_should():
    """The checks fail on a collapsed layout, a small font, text off the canvas and overlapping ticks."""
    fig, ax = style.figure("column", height=0.3)
    ax.set_yticks(range(12), [f"a rather long row label number {i}" for i in range(12)])
    with pytest.raises((UserWarning, AssertionError)):
        check_figure(fig)
    fig, ax = style.figure("column")
    ax.set_title("tiny", fontsize=5)
    with pytest.raises(AssertionError, match="pt"):
        check_figure(fig)
    fig, ax = style.figure("column", layout=None)
    fig.text(0.95, 0.5, "this text runs far past the right edge of the canvas")
    with pytest.raises(AssertionError, match="canvas"):
        check_figure(fig)
    fig, ax = style.figure("column")
    ax.set_xticks(range(10), [f"label {i} long" for i in range(10)])
    with pytest.raises(AssertionError, match="overlap"):
        check_figure(fig)


def test_delta_heatmap_survives_long_row_labels():
    """Notebook 01's main figure: every Table I row, at the width it is written, keeps a real heatmap."""
    fig = FIGURES["table1.delta_heatmap"]()
    check_figure(fig)
    heat = fig.axes[0]
    assert heat.get_window_extent().height / fig.dpi > 1.0


def test_sensitivity_panels_share_one_colour_scale():
    fig = FIGURES["sensitivity.heatmap_figure"]()
    limits = {tuple(ax.collections[0].get_clim()) for ax in fig.axes if ax.collections and not hasattr(ax, "_colorbar")}
    assert len(limits) == 1


def test_estimator_sweep_joins_no_categories():
    fig = FIGURES["fusion.sweep_figure[estimator]"]()
    joined = [line for line in fig.axes[0].get_lines() if line.get_linestyle() not in ("None", "", " ")
              and len(line.get_xdata()) > 2]
    assert not joined


def test_a_mechanism_and_a_task_have_one_colour_everywhere():
    assert style.colour("hard_select") == style.MECHANISM_COLOURS["hard_select"]
    assert len(set(style.colours(MECHANISMS))) == len(MECHANISMS)
    assert len(set(style.colours(TASKS))) == len(TASKS)
    bar = FIGURES["fusion.bar_figure"]()
    hard = [p for p in bar.axes[0].patches if p.get_label() == style.display_name("hard_select")
            or p.get_facecolor()[:3] == pytest.approx(style.colour("hard_select"))]
    assert hard
    unknown = style.colours(RECOGNISERS)
    assert len(set(unknown)) == len(unknown)


def test_display_names():
    assert style.display_name("denoise_25") == "Noise σ=25"
    assert style.display_name("skip_fusion_level1") == "Skip L1"
    assert style.display_name("bottleneck_fusion") == "Bottleneck"
    assert style.display_name("P_v") == "Image prompt" and style.display_name("P_t") == "Text prompt"
    assert style.display_name("rain+haze") == "Rain + Haze" == style.display_name("rain_haze")
    assert style.display_name("low_haze") == "Low light + Haze"
    assert style.display_name("l2_supercat") == "WordLlama L2"
    assert style.display_text("text anchors: wordllama l2_supercat") == "text anchors: WordLlama L2"
    assert style.display_name(table1.own_condition("noise")) == "Noise channels"
    assert style.display_name("something else") == "something else"
    # a variant key joined by "+" is named whole in titles (notebook 01's mask-noise heatmap)
    assert style.display_text("hard_select+mask_noise — cpu") == "Hard select + mask noise — cpu"


def test_delta_heatmap_prints_no_negative_zero():
    summary = pd.DataFrame({"channels": [table1.own_condition("noise"), "tiny loss"],
                            "denoise_25_psnr": [30.0, 29.96]})
    fig = table1_plots.delta_heatmap(summary, ["denoise_25"], ["noise"], "t")
    texts = [t.get_text() for t in fig.axes[0].texts]
    plt.close(fig)
    assert texts == ["0.0", "0.0"], texts


def test_no_figure_code_sets_a_font_size():
    root = Path(__file__).resolve().parents[1] / "analysis"
    pattern = re.compile(r"fontsize|labelsize|annot_kws|[\"']size[\"']|prop=")
    offenders = [f"{path.name}:{n}" for path in root.rglob("*.py") for n, line in
                 enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert not offenders, offenders
