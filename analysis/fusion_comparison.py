"""Notebook 03: hard channel selection against soft gating, channel attention and cross-attention, at
equal budget — the paper's main claim (CSNet, Table II), tested on the suite's models.

Every mechanism is trained with the same data, steps, seeds and fusion sites (``configure``, the very
construction notebook 01 uses, so the run store shares ``hard_select`` and ``none`` between them) and
evaluated per task with the image encoder's prompt (P_v, the paper's test condition) and with the text
prompt of the true label (P_t, an oracle). Around that comparison:

- **interference**: each mechanism's all-in-one score against single-task models of the same size and
  budget (``none`` trained on one task group alone: the three noise levels together, rain, haze), paired
  per image; the gap (all-in-one − single-task) is the cost of sharing the network;
- **sweeps** of hard selection's keep ratio ω, expansion κ and gradient estimator;
- **reference rows** (``analysis.classical``): the degraded input and classical restorers on the same
  images, labelled as references;
- **statistics**: mean ± std over seeds; paired per-image tests (bootstrap CI, sign-flip p, Holm) of
  ``hard_select`` against every other mechanism; verdict sentences built from those numbers only;
- a table laid out like the paper's Table II, with the anchors' published numbers beside ours and
  labelled as published on their data (not comparable).

Functions take per-image score tables (one row per method × seed × task × image, as
``csnet.evaluate.evaluate`` returns) and return tables and figures; the notebook wires them together.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from analysis import stats

# The mechanisms compared (csnet.models.FUSIONS keys), in the order tables list them.
MECHANISMS = ("none", "implicit_prompt", "channel_attention", "soft_gate", "cross_attention", "hard_select",
              "random_select")
# The published method each mechanism stands for (PROTOCOL.md, "The mechanisms to compare").
ANCHORS = {"none": "Restormer", "implicit_prompt": "PromptIR", "channel_attention": "InstructIR",
           "soft_gate": "soft route of the CSB", "cross_attention": "NDR", "hard_select": "CSNet",
           "random_select": "control: fixed random channels"}
REFERENCE = "hard_select"  # the mechanism every other one is tested against

LEARNED = "ours, measured"
PUBLISHED = "published, on their data (not comparable)"
# Table II's column order: SOTS, Rain100L, CBSD68 σ = 15, 25, 50.
TABLE2_TASKS = ("dehaze", "derain", "denoise_15", "denoise_25", "denoise_50")

# The anchors' rows of the paper's Table II (3 degradations; PSNR dB / SSIM; params in millions),
# transcribed from reference/csnet-table2-3task.png; the averages agree with PROTOCOL.md's
# "Reference results" (and recompute from the five columns). Restormer is the paper's retrained one.
PUBLISHED_TABLE2 = pd.DataFrame(
    [
        ("Restormer* (retrained)", "none", 30.43, 0.975, 36.55, 0.975, 33.84, 0.931, 31.18, 0.885, 27.90, 0.790,
         31.98, 0.911, 26.13),
        ("PromptIR", "implicit_prompt", 30.58, 0.974, 36.37, 0.972, 33.98, 0.933, 31.31, 0.888, 28.06, 0.799,
         32.06, 0.913, 35.59),
        ("InstructIR", "channel_attention", 30.22, 0.959, 37.98, 0.978, 34.15, 0.933, 31.52, 0.890, 28.30, 0.804,
         32.43, 0.913, 15.80),
        ("NDR", "cross_attention", 28.64, 0.962, 35.42, 0.969, 34.01, 0.932, 31.36, 0.887, 28.10, 0.798,
         31.51, 0.910, 28.4),
        ("CSNet", "hard_select", 31.94, 0.980, 38.10, 0.982, 34.14, 0.936, 31.49, 0.893, 28.26, 0.806,
         32.79, 0.920, 30.06),
    ],
    columns=["method", "mechanism", "dehaze_psnr", "dehaze_ssim", "derain_psnr", "derain_ssim",
             "denoise_15_psnr", "denoise_15_ssim", "denoise_25_psnr", "denoise_25_ssim",
             "denoise_50_psnr", "denoise_50_ssim", "average_psnr", "average_ssim", "params_m"],
)
PUBLISHED_SOURCE = "CSNet paper, Table II (3 degradations): published, on their data (not comparable)"


def check_mechanisms(mechanisms: Sequence[str], reference: str = REFERENCE) -> list[str]:
    """``mechanisms`` as a list, after checking each is a fusion mechanism and ``reference`` is among them."""
    from csnet.models import FUSIONS

    unknown = [m for m in mechanisms if m not in FUSIONS]
    if unknown:
        raise ValueError(f"unknown mechanism(s) {unknown}; choose from {list(FUSIONS)}")
    if reference not in mechanisms:
        raise ValueError(f"mechanisms must include {reference!r}: every other mechanism is tested against it")
    return list(dict.fromkeys(mechanisms))


def method_name(mechanism: str) -> str:
    """``hard_select (CSNet)``: the mechanism with the method it stands for."""
    return f"{mechanism} ({ANCHORS[mechanism]})" if mechanism in ANCHORS else mechanism


# ----------------------------------------------------------------------------- configurations


def model_overrides(kappa: float, omega: float, estimator: str | None = None) -> dict[str, Any]:
    """ModelConfig overrides of a mechanism's runs: κ and ω always (as notebook 01), the estimator only
    when it differs from ``ModelConfig``'s default, so that the default point of every sweep is the very
    run (the same hash) of the main comparison."""
    from csnet.models import ModelConfig

    overrides: dict[str, Any] = {"kappa": kappa, "omega": omega}
    if estimator is not None and estimator != ModelConfig.estimator:
        overrides["estimator"] = estimator
    return overrides


def configure(prof, fusion: str, seed: int, *, tasks: Sequence[str], text_encoder: str, kappa: float,
              omega: float, estimator: str | None = None, **extra):
    """The ``RunConfig`` of one model, built exactly as notebook 01 builds its runs (model overrides
    for every mechanism but ``none``), so that both notebooks share the runs they have in common."""
    from csnet.profiles import run_config

    overrides = {"model": model_overrides(kappa, omega, estimator)} if fusion != "none" else {}
    return run_config(prof, fusion, seed, tasks=tuple(tasks), text_encoder=text_encoder, **overrides, **extra)


def single_task_groups(tasks: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Label → the tasks a single-task model trains on: one group per degradation label, so the three
    noise levels form one denoiser (``noise``: σ 15/25/50), as a blind single-task denoiser is trained."""
    from csnet.degrade import label_of

    groups: dict[str, list[str]] = {}
    for task in tasks:
        groups.setdefault(label_of(task), []).append(task)
    return {label: tuple(group) for label, group in groups.items()}


def sweep_points(omega_sweep: Sequence[float], kappa_sweep: Sequence[float], estimators: Sequence[str], *,
                 kappa: float, omega: float, estimator: str = "straight_through") -> pd.DataFrame:
    """The hard-selection ablation grid: ω at the default κ, κ at the default ω, each estimator at both
    defaults. One row per (sweep, value) with the ``kappa``, ``omega``, ``estimator`` it trains, and
    ``default`` marking the point shared with the main comparison."""
    rows = []
    for value in omega_sweep:
        rows.append({"sweep": "omega", "value": float(value), "kappa": kappa, "omega": float(value),
                     "estimator": estimator})
    for value in kappa_sweep:
        rows.append({"sweep": "kappa", "value": float(value), "kappa": float(value), "omega": omega,
                     "estimator": estimator})
    for value in estimators:
        rows.append({"sweep": "estimator", "value": value, "kappa": kappa, "omega": omega, "estimator": value})
    out = pd.DataFrame(rows, columns=["sweep", "value", "kappa", "omega", "estimator"])
    out["default"] = (np.isclose(out["kappa"], kappa) & np.isclose(out["omega"], omega)
                      & (out["estimator"] == estimator))
    out["variant"] = [f"κ={k:g}, ω={o:g}, {e}" for k, o, e in zip(out["kappa"], out["omega"], out["estimator"])]
    return out


# ----------------------------------------------------------------------------- evaluation


def evaluate_runs(runs: Mapping[tuple[str, int], Any], tasks: Sequence[str] | Mapping[str, Sequence[str]], *,
                  prompt_sources: Sequence[str] = ("image", "text"), evaluate_kwargs: Mapping | None = None,
                  study: str = "main") -> pd.DataFrame:
    """Per-image scores of every run. ``runs`` maps ``(method, seed)`` to a ``csnet.store.Run``;
    ``tasks`` is a list for all runs or a ``{method: tasks}`` mapping. Adds ``method``, ``mechanism``,
    ``kind`` (learned) and ``study`` columns.

    A network that reads no prompt (``none``, ``implicit_prompt``) is evaluated once and its rows are
    labelled with every prompt source: its output cannot depend on the prompt (recognition columns come
    from the image encoder either way)."""
    from csnet.evaluate import evaluate

    frames = []
    for (method, seed), run in runs.items():
        task_list = list(tasks[method] if isinstance(tasks, Mapping) else tasks)
        if not run.model.uses_prompt:
            base = evaluate(run, task_list, prompt_source="text", **dict(evaluate_kwargs or {}))
            done = [base.assign(prompt_source=source) for source in prompt_sources]
        else:
            done = [evaluate(run, task_list, prompt_source=source, **dict(evaluate_kwargs or {}))
                    for source in prompt_sources]
        for frame in done:
            frames.append(frame.assign(method=method, mechanism=run.fusion, kind=LEARNED, study=study))
    return pd.concat(frames, ignore_index=True)


def reference_rows(references: pd.DataFrame, prompt_sources: Sequence[str] = ("image", "text")) -> pd.DataFrame:
    """``analysis.classical.evaluate_references`` rows in the shape of ``evaluate_runs``' (one "seed",
    labelled for every prompt source so they sit beside either table; they read no prompt)."""
    base = references.assign(mechanism=None, seed=0, study="main")
    return pd.concat([base.assign(prompt_source=source) for source in prompt_sources], ignore_index=True)


# ----------------------------------------------------------------------------- tables


def summary(scores: pd.DataFrame, tasks: Sequence[str], prompt_source: str) -> pd.DataFrame:
    """One row per method: per-task PSNR/SSIM mean and std over seeds, and their average over tasks.

    Images are averaged within each (method, seed, task); the average is taken over tasks within each
    seed, then across seeds (std over seeds). A method without every task (a noise-only reference) has
    no average. ``kind`` tells learned models from references."""
    frame = scores[(scores["prompt_source"] == prompt_source) & scores["task"].isin(tasks)]
    per_seed = frame.groupby(["method", "kind", "seed", "task"], sort=False)[["psnr", "ssim"]].mean().reset_index()
    rows = []
    for (method, kind), group in per_seed.groupby(["method", "kind"], sort=False):
        row: dict[str, Any] = {"method": method, "kind": kind}
        for task in tasks:
            cell = group[group["task"] == task]
            for metric in ("psnr", "ssim"):
                row[f"{task}_{metric}"] = cell[metric].mean() if len(cell) else np.nan
                row[f"{task}_{metric}_std"] = cell[metric].std(ddof=1) if len(cell) > 1 else np.nan
        complete = group.groupby("seed")["task"].nunique() == len(tasks)
        averages = group[group["seed"].isin(complete[complete].index)].groupby("seed")[["psnr", "ssim"]].mean()
        for metric in ("psnr", "ssim"):
            row[f"average_{metric}"] = averages[metric].mean() if len(averages) else np.nan
            row[f"average_{metric}_std"] = averages[metric].std(ddof=1) if len(averages) > 1 else np.nan
        row["n_seeds"] = int(group["seed"].nunique())
        rows.append(row)
    return pd.DataFrame(rows)


def table2_columns(tasks: Sequence[str]) -> list[str]:
    """Our tasks in Table II's column order (dehaze, derain, σ 15/25/50), then any others in given order."""
    ordered = [t for t in TABLE2_TASKS if t in tasks]
    return ordered + [t for t in tasks if t not in ordered]


def table2(summary_frame: pd.DataFrame, tasks: Sequence[str], *, params_m: Mapping[str, float] | None = None,
           profile_label: str = "", published: pd.DataFrame = PUBLISHED_TABLE2) -> pd.DataFrame:
    """Table II's layout, numeric: rows = methods (ours, then references, then the published anchors),
    columns = ``method``, ``source``, ``<task>_psnr``/``_ssim`` (+ ``_std``) in Table II's order,
    ``average_*``, ``params_m``. Our mechanisms are named with the method they stand for
    (:func:`method_name`); ``params_m`` maps mechanism keys to millions of parameters.

    The published rows carry only the paper's columns that match our task keys, and their source says
    they are published on other data and not comparable."""
    columns = table2_columns(tasks)
    learned_source = f"{LEARNED} ({profile_label})" if profile_label else LEARNED
    rows = []
    for _, row in summary_frame.iterrows():
        learned = row["kind"] == LEARNED
        record = {"method": method_name(row["method"]) if learned else row["method"],
                  "source": learned_source if learned else row["kind"]}
        for task in columns + ["average"]:
            for metric in ("psnr", "ssim"):
                record[f"{task}_{metric}"] = row.get(f"{task}_{metric}", np.nan)
                record[f"{task}_{metric}_std"] = row.get(f"{task}_{metric}_std", np.nan)
        record["params_m"] = (params_m or {}).get(row["method"], np.nan) if learned else np.nan
        rows.append(record)
    ours = pd.DataFrame(rows)
    ours["_order"] = [0 if s.startswith(LEARNED) else 1 for s in ours["source"]]
    ours = ours.sort_values("_order", kind="stable").drop(columns="_order")
    theirs = []
    for _, row in published.iterrows():
        record = {"method": f"{row['method']} (anchor of {row['mechanism']})", "source": PUBLISHED}
        for task in columns + ["average"]:
            for metric in ("psnr", "ssim"):
                record[f"{task}_{metric}"] = row.get(f"{task}_{metric}", np.nan)
                record[f"{task}_{metric}_std"] = np.nan
        record["params_m"] = row["params_m"]
        theirs.append(record)
    return pd.concat([ours, pd.DataFrame(theirs, columns=ours.columns)], ignore_index=True)


def _cell(psnr: float, psnr_std: float, ssim: float, ssim_std: float) -> str:
    if not np.isfinite(psnr):
        return "—"
    return f"{stats.format_mean_std(psnr, psnr_std)} / {stats.format_mean_std(ssim, ssim_std, 3)}"


def formatted_table2(numeric: pd.DataFrame, tasks: Sequence[str]) -> pd.DataFrame:
    """``PSNR ± std / SSIM ± std`` strings per cell (std only with more than one seed), for LaTeX/Markdown."""
    columns = table2_columns(tasks)
    out = pd.DataFrame({"method": numeric["method"], "source": numeric["source"]})
    for task in columns + ["average"]:
        out[task] = [_cell(*values) for values in zip(numeric[f"{task}_psnr"], numeric[f"{task}_psnr_std"],
                                                      numeric[f"{task}_ssim"], numeric[f"{task}_ssim_std"])]
    out["params (M)"] = ["—" if not np.isfinite(v) else f"{v:.3g}" for v in numeric["params_m"].astype(float)]
    return out


def oracle_gap(scores: pd.DataFrame) -> pd.DataFrame:
    """Per learned method and task: PSNR with the image prompt (test condition) and with the text prompt
    of the true label (oracle), their difference, and how often the image encoder named the degradation."""
    learned = scores[scores["kind"] == LEARNED]
    table = learned.pivot_table(index=["method", "task"], columns="prompt_source", values="psnr",
                                aggfunc="mean", sort=False)
    out = pd.DataFrame({"psnr_image": table.get("image"), "psnr_text": table.get("text")}).reset_index()
    out["text_minus_image"] = out["psnr_text"] - out["psnr_image"]
    accuracy = learned[learned["prompt_source"] == "image"].groupby(["method", "task"], sort=False)["correct"].mean()
    out["recognition_accuracy"] = [accuracy.get((m, t), np.nan) for m, t in zip(out["method"], out["task"])]
    return out


# ----------------------------------------------------------------------------- statistics


def _paired(scores: pd.DataFrame, method: str, keys: list[str], metric: str) -> pd.Series:
    frame = scores[scores["method"] == method]
    return frame.groupby(keys, sort=False)[metric].mean()


def paired_tests(scores: pd.DataFrame, prompt_source: str, *, reference: str = REFERENCE,
                 others: Sequence[str] | None = None, metrics: Sequence[str] = ("psnr", "ssim"),
                 n_boot: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """``reference`` against every other learned method, per task and pooled over tasks ("all tasks").

    Pairs are (seed, image) within a task, (seed, task, image) pooled; ``mean_diff`` is reference −
    other with a percentile bootstrap CI and a sign-flip p-value, Holm-adjusted (``p_holm``) over every
    row of the same metric."""
    frame = scores[(scores["prompt_source"] == prompt_source) & (scores["kind"] == LEARNED)]
    methods = list(dict.fromkeys(frame["method"]))
    others = [m for m in (others if others is not None else methods) if m != reference and m in methods]
    tasks = list(dict.fromkeys(frame["task"]))
    rows = []
    for metric in metrics:
        for other in others:
            for task in tasks + ["all tasks"]:
                subset = frame if task == "all tasks" else frame[frame["task"] == task]
                keys = ["seed", "task", "image"]
                ours = _paired(subset, reference, keys, metric)
                theirs = _paired(subset, other, keys, metric)
                common = ours.index.intersection(theirs.index)
                if len(common) == 0:
                    continue
                result = stats.paired_bootstrap(ours.loc[common].to_numpy(), theirs.loc[common].to_numpy(),
                                                n_boot=n_boot, seed=seed)
                rows.append({"prompt_source": prompt_source, "metric": metric, "reference": reference,
                             "other": other, "task": task, "reference_mean": float(ours.loc[common].mean()),
                             "other_mean": float(theirs.loc[common].mean()), **result})
    out = pd.DataFrame(rows)
    if not out.empty:
        out["p_holm"] = np.nan
        for metric, group in out.groupby("metric"):
            out.loc[group.index, "p_holm"] = stats.holm(group["p_value"].to_numpy())
    return out


def best_counts(summary_frame: pd.DataFrame, tasks: Sequence[str], metric: str = "psnr") -> pd.Series:
    """Per task, the learned method with the highest mean ``metric`` (a Series task → method)."""
    learned = summary_frame[summary_frame["kind"] == LEARNED].set_index("method")
    return pd.Series({task: learned[f"{task}_{metric}"].idxmax() for task in tasks
                      if learned[f"{task}_{metric}"].notna().any()})


def verdict(tests: pd.DataFrame, summary_frame: pd.DataFrame, tasks: Sequence[str], *,
            reference: str = REFERENCE, alpha: float = 0.05) -> str:
    """Sentences computed from the paired tests and the summary (never written by hand): in how many
    tasks ``reference`` has the best mean PSNR of the learned methods, and against each other method
    in how many tasks it is ahead, and significantly so (Holm-adjusted p < ``alpha``)."""
    if tests.empty:
        return "No paired comparisons could be made (no common images)."
    parts = []
    best = best_counts(summary_frame, tasks)
    n_methods = int((summary_frame["kind"] == LEARNED).sum())
    parts.append(stats.format_verdict(f"the best mean PSNR of the {n_methods} mechanisms is {reference}'s",
                                      [best.get(t) == reference for t in best.index], unit="tasks"))
    psnr = tests[(tests["metric"] == "psnr") & (tests["task"] != "all tasks")]
    for other, group in psnr.groupby("other", sort=False):
        ahead = group["mean_diff"] > 0
        parts.append(stats.format_verdict(f"{reference} above {other}", ahead, unit="tasks",
                                          significant=ahead & (group["p_holm"] < alpha)))
    pooled = tests[(tests["metric"] == "psnr") & (tests["task"] == "all tasks")]
    if not pooled.empty:
        ahead = pooled["mean_diff"] > 0
        below = (pooled["mean_diff"] < 0) & (pooled["p_holm"] < alpha)
        parts.append(stats.format_verdict(f"pooled over tasks, {reference} above", ahead, unit="other mechanisms",
                                          significant=ahead & (pooled["p_holm"] < alpha))
                     + f", significantly below in {int(below.sum())}")
    return stats.join_verdicts(parts)


# ----------------------------------------------------------------------------- interference


def interference(all_in_one: pd.DataFrame, single_task: pd.DataFrame, prompt_source: str, *,
                 n_boot: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """The cost of sharing: per learned method and task, all-in-one − single-task PSNR, paired per
    (seed, image) with the single-task model of the same seed (negative = the shared network is worse).

    ``single_task`` holds the single-task models' scores (any method name; one model per task group);
    the all-in-one rows are those of ``prompt_source``. Holm-adjusted over the table."""
    frame = all_in_one[(all_in_one["prompt_source"] == prompt_source) & (all_in_one["kind"] == LEARNED)]
    specialist = single_task.groupby(["seed", "task", "image"], sort=False)[["psnr", "ssim"]].mean()
    rows = []
    for method in dict.fromkeys(frame["method"]):
        for task in dict.fromkeys(single_task["task"]):
            ours = frame[(frame["method"] == method) & (frame["task"] == task)]
            ours = ours.groupby(["seed", "task", "image"], sort=False)[["psnr", "ssim"]].mean()
            common = ours.index.intersection(specialist.index)
            if len(common) == 0:
                continue
            result = stats.paired_bootstrap(ours.loc[common, "psnr"].to_numpy(),
                                            specialist.loc[common, "psnr"].to_numpy(), n_boot=n_boot, seed=seed)
            rows.append({"prompt_source": prompt_source, "method": method, "task": task,
                         "all_in_one_psnr": float(ours.loc[common, "psnr"].mean()),
                         "single_task_psnr": float(specialist.loc[common, "psnr"].mean()),
                         "gap_ssim": float((ours.loc[common, "ssim"] - specialist.loc[common, "ssim"]).mean()),
                         **{("gap_psnr" if k == "mean_diff" else k): v for k, v in result.items()}})
    out = pd.DataFrame(rows)
    if not out.empty:
        out["p_holm"] = stats.holm(out["p_value"].to_numpy())
    return out


def interference_by_method(gaps: pd.DataFrame) -> pd.DataFrame:
    """Mean gap over tasks per method (each task counts once), sorted from the smallest cost of sharing."""
    out = gaps.groupby("method", sort=False).agg(mean_gap_psnr=("gap_psnr", "mean"),
                                                 worst_gap_psnr=("gap_psnr", "min"),
                                                 tasks=("task", "nunique")).reset_index()
    return out.sort_values("mean_gap_psnr", ascending=False, kind="stable").reset_index(drop=True)


def interference_verdict(gaps: pd.DataFrame, *, reference: str = REFERENCE, alpha: float = 0.05) -> str:
    """How often sharing costs PSNR, and where ``reference`` ranks by its mean cost — from the numbers."""
    if gaps.empty:
        return "No single-task comparison could be made."
    below = gaps["gap_psnr"] < 0
    parts = [stats.format_verdict("the all-in-one model is below its single-task model", below,
                                  unit="(mechanism, task) cells", significant=below & (gaps["p_holm"] < alpha))]
    ranked = interference_by_method(gaps)
    if reference in set(ranked["method"]):
        rank = int(ranked.index[ranked["method"] == reference][0]) + 1
        gap = float(ranked.loc[ranked["method"] == reference, "mean_gap_psnr"].iloc[0])
        parts.append(f"{reference}'s mean gap is {gap:+.2f} dB, rank {rank} of {len(ranked)} from the smallest "
                     f"cost of sharing (best: {ranked['method'].iloc[0]}, "
                     f"{ranked['mean_gap_psnr'].iloc[0]:+.2f} dB)")
    return stats.join_verdicts(parts)


# ----------------------------------------------------------------------------- sweeps


def sweep_summary(scores: pd.DataFrame, points: pd.DataFrame, *, n_boot: int = 10_000,
                  seed: int = 0) -> pd.DataFrame:
    """Per (sweep, value, task): mean PSNR/SSIM with a bootstrap 95% CI of the PSNR over (seed, image).

    ``scores`` has a ``variant`` column matching ``points["variant"]`` (a variant shared by several
    sweeps, e.g. the default point, appears in each)."""
    rows = []
    for _, point in points.iterrows():
        frame = scores[scores["variant"] == point["variant"]]
        for task, group in frame.groupby("task", sort=False):
            values = group.groupby(["seed", "image"])[["psnr", "ssim"]].mean()
            ci = stats.bootstrap_ci(values["psnr"].to_numpy(), n_boot=n_boot, seed=seed)
            rows.append({"sweep": point["sweep"], "value": point["value"], "variant": point["variant"],
                         "default": bool(point["default"]), "task": task, "psnr": ci["estimate"],
                         "psnr_lo": ci["lo"], "psnr_hi": ci["hi"], "ssim": float(values["ssim"].mean()),
                         "n": ci["n"]})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- the bar chart's numbers


def bar_table(scores: pd.DataFrame, tasks: Sequence[str], prompt_source: str, methods: Sequence[str], *,
              n_boot: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """Mean PSNR and 95% bootstrap CI over (seed, image) per method and task: the bar chart's numbers."""
    frame = scores[scores["prompt_source"] == prompt_source]
    rows = []
    for method in methods:
        for task in tasks:
            cell = frame[(frame["method"] == method) & (frame["task"] == task)]
            if cell.empty:
                continue
            values = cell.groupby(["seed", "image"])["psnr"].mean().to_numpy()
            ci = stats.bootstrap_ci(values, n_boot=n_boot, seed=seed)
            rows.append({"method": method, "task": task, "psnr": ci["estimate"], "lo": ci["lo"], "hi": ci["hi"],
                         "n": ci["n"]})
    return pd.DataFrame(rows)
