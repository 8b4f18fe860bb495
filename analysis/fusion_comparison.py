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
- **statistics** (``analysis.stats``, the seed is the replicate): mean ± std over seeds; ``hard_select``
  against every other mechanism by a t-test over per-seed means (Welch: at a given seed the mechanisms
  start from different backbone weights, so seeds do not pair; ``paired_seeds=True`` once they do),
  crossed seed × image bootstrap intervals, sign agreement, Holm over declared families and three-way
  verdicts; verdict sentences built from those numbers only;
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


def run_configs(prof, seeds: Sequence[int], headline: Sequence[int], mechanisms: Sequence[str], *,
                tasks: Sequence[str], text_encoder: str, kappa: float, omega: float) -> dict:
    """(mechanism, seed) → ``RunConfig`` of the main comparison: every mechanism at the study's seeds,
    ``REFERENCE`` and its ``HEADLINE`` opponents also at the headline seeds."""
    headline_mechanisms = {REFERENCE, *HEADLINE}
    return {(m, s): configure(prof, m, s, tasks=tasks, text_encoder=text_encoder, kappa=kappa, omega=omega)
            for s in dict.fromkeys([*seeds, *headline]) for m in mechanisms if s in seeds or m in headline_mechanisms}


def single_task_configs(prof, seeds: Sequence[int], *, tasks: Sequence[str], text_encoder: str, kappa: float,
                        omega: float) -> dict:
    """("single-task <label>", seed) → ``RunConfig`` of the single-task models (``none`` on one
    ``single_task_groups`` group) that measure the cost of sharing."""
    return {(f"single-task {label}", s): configure(prof, "none", s, tasks=group, text_encoder=text_encoder,
                                                   kappa=kappa, omega=omega)
            for s in seeds for label, group in single_task_groups(tasks).items()}


def sweep_configs(prof, seeds: Sequence[int], points: pd.DataFrame, *, tasks: Sequence[str],
                  text_encoder: str) -> dict:
    """(variant, seed) → ``RunConfig`` of hard selection's ablations, one per distinct ``sweep_points``
    variant (its default point is the main comparison's run)."""
    variants = points.drop_duplicates("variant").set_index("variant")
    return {(variant, s): configure(prof, "hard_select", s, tasks=tasks, text_encoder=text_encoder, kappa=row["kappa"],
                                    omega=row["omega"], estimator=row["estimator"])
            for s in seeds for variant, row in variants.iterrows()}


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
HEADLINE = ("none", "soft_gate", "cross_attention")  # hard_select's headline opponents (≥ 5 seeds at cpu)
POOLED = "all tasks"


def _pooled(frame: pd.DataFrame) -> pd.DataFrame:
    """Every (task, image) cell as one "image" of a pooled comparison (each task's photos count once)."""
    return frame.assign(image=frame["task"].astype(str) + "/" + frame["image"].astype(str))


def paired_tests(scores: pd.DataFrame, prompt_source: str, *, reference: str = REFERENCE,
                 others: Sequence[str] | None = None, metrics: Sequence[str] = ("psnr", "ssim"),
                 n_boot: int = 2000, seed: int = 0, alpha: float = 0.05, paired_seeds: bool = False,
                 mixed: bool = True) -> pd.DataFrame:
    """``reference`` against every other learned method, per task and pooled over tasks ("all tasks").

    ``estimate`` is reference − other over per-seed means (t over seeds: Welch unless ``paired_seeds``),
    with a crossed seed × image interval and the metric's default equivalence margin. Holm families:
    per metric, the headline opponents (``HEADLINE``) and the remaining mechanisms."""
    frame = scores[(scores["prompt_source"] == prompt_source) & (scores["kind"] == LEARNED)]
    methods = list(dict.fromkeys(frame["method"]))
    others = [m for m in (others if others is not None else methods) if m != reference and m in methods]
    tasks = list(dict.fromkeys(frame["task"]))
    rows = []
    for metric in metrics:
        for other in others:
            for task in tasks + [POOLED]:
                subset = _pooled(frame) if task == POOLED else frame[frame["task"] == task]
                ours, theirs = subset[subset["method"] == reference], subset[subset["method"] == other]
                if ours.empty or theirs.empty:
                    continue
                result = stats.compare(ours, theirs, metric, paired=paired_seeds, n_boot=n_boot, seed=seed,
                                       mixed=mixed)
                family = "headline" if other in HEADLINE else "other mechanisms"
                rows.append({"prompt_source": prompt_source, "metric": metric, "family": family,
                             "reference": reference, "other": other, "task": task,
                             "reference_mean": float(ours[metric].mean()), "other_mean": float(theirs[metric].mean()),
                             **result})
    return stats.add_verdicts(pd.DataFrame(rows), alpha=alpha, family=["metric", "family"])


def oracle_tests(scores: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05,
                 mixed: bool = True) -> pd.DataFrame:
    """Per learned method and task: text (oracle) − image prompt PSNR of the same model (paired over
    seeds), Holm over the table; the inference behind :func:`oracle_gap`."""
    learned = scores[scores["kind"] == LEARNED]
    rows = []
    for (method, task), group in learned.groupby(["method", "task"], sort=False):
        text, image = group[group["prompt_source"] == "text"], group[group["prompt_source"] == "image"]
        if text.empty or image.empty:
            continue
        rows.append({"method": method, "task": task,
                     **stats.compare(text, image, "psnr", paired=True, n_boot=n_boot, seed=seed, mixed=mixed)})
    return stats.add_verdicts(pd.DataFrame(rows), alpha=alpha, unit="dB")


def best_counts(summary_frame: pd.DataFrame, tasks: Sequence[str], metric: str = "psnr") -> pd.Series:
    """Per task, the learned method with the highest mean ``metric`` (a Series task → method)."""
    learned = summary_frame[summary_frame["kind"] == LEARNED].set_index("method")
    return pd.Series({task: learned[f"{task}_{metric}"].idxmax() for task in tasks
                      if learned[f"{task}_{metric}"].notna().any()})


def verdict(tests: pd.DataFrame, summary_frame: pd.DataFrame, tasks: Sequence[str], *,
            reference: str = REFERENCE) -> str:
    """Sentences computed from the tests and the summary (never written by hand): in how many tasks
    ``reference`` has the best mean PSNR (descriptive), the verdict counts of its per-task comparisons
    against each other mechanism, the pooled comparison against each headline opponent, and what the
    design can detect."""
    if tests.empty:
        return "No comparisons could be made (no seed and image in common)."
    parts = []
    best = best_counts(summary_frame, tasks)
    n_methods = int((summary_frame["kind"] == LEARNED).sum())
    parts.append(stats.format_count(f"the best mean PSNR of the {n_methods} mechanisms is {reference}'s "
                                      f"(descriptive)", [best.get(t) == reference for t in best.index], unit="tasks"))
    psnr = tests[tests["metric"] == "psnr"]
    per_task = psnr[psnr["task"] != POOLED]
    for other, group in per_task.groupby("other", sort=False):
        parts.append(stats.summarise_verdicts(f"{reference} − {other} per task", group, unit="tasks"))
    for row in psnr[psnr["task"] == POOLED].itertuples():
        parts.append(stats.verdict_sentence(f"{reference} − {row.other} pooled over tasks", row._asdict()))
    headline = psnr[(psnr["family"] == "headline") & (psnr["task"] == POOLED)]
    if not headline.empty:
        parts.append(stats.design_sentence(int(headline["n_seeds"].min()), float(headline["seed_sd"].median()),
                                           family_size=int(headline["family_size"].max()),
                                           paired=bool(headline["paired"].iloc[0])))
    return stats.join_verdicts(parts)


# ----------------------------------------------------------------------------- interference


def interference(all_in_one: pd.DataFrame, single_task: pd.DataFrame, prompt_source: str, *,
                 n_boot: int = 2000, seed: int = 0, alpha: float = 0.05, mixed: bool = True) -> pd.DataFrame:
    """The cost of sharing: per learned method and task, all-in-one − single-task PSNR (``gap_psnr``;
    negative = the shared network is worse), Welch t over the two models' per-seed means (separately
    trained networks), crossed interval, Holm over the table.

    ``single_task`` holds the single-task models' scores (any method name; one model per task group);
    the all-in-one rows are those of ``prompt_source``."""
    frame = all_in_one[(all_in_one["prompt_source"] == prompt_source) & (all_in_one["kind"] == LEARNED)]
    rows = []
    for method in dict.fromkeys(frame["method"]):
        for task in dict.fromkeys(single_task["task"]):
            ours = frame[(frame["method"] == method) & (frame["task"] == task)]
            theirs = single_task[single_task["task"] == task]
            if ours.empty or theirs.empty:
                continue
            result = stats.compare(ours, theirs, "psnr", paired=False, n_boot=n_boot, seed=seed, mixed=mixed)
            rows.append({"prompt_source": prompt_source, "method": method, "task": task,
                         "all_in_one_psnr": float(ours["psnr"].mean()), "single_task_psnr": float(theirs["psnr"].mean()),
                         "gap_ssim": float(ours["ssim"].mean() - theirs["ssim"].mean()),
                         "gap_psnr": result["estimate"], "single_task_seeds": int(theirs["seed"].nunique()), **result})
    return stats.add_verdicts(pd.DataFrame(rows), alpha=alpha, unit="dB")


def interference_by_method(gaps: pd.DataFrame) -> pd.DataFrame:
    """Mean gap over tasks per method (each task counts once), sorted from the smallest cost of sharing,
    with how many of its tasks are called different."""
    out = gaps.groupby("method", sort=False).agg(mean_gap_psnr=("gap_psnr", "mean"),
                                                 worst_gap_psnr=("gap_psnr", "min"),
                                                 tasks=("task", "nunique"),
                                                 different=("verdict", lambda v: int((v == "different").sum())),
                                                 single_task_seeds=("single_task_seeds", "min")).reset_index()
    return out.sort_values("mean_gap_psnr", ascending=False, kind="stable").reset_index(drop=True)


def interference_verdict(gaps: pd.DataFrame, *, reference: str = REFERENCE) -> str:
    """The verdicts of the cost of sharing, and where ``reference`` ranks by its mean cost, with the
    number of single-task seeds the ranking rests on — from the numbers."""
    if gaps.empty:
        return "No single-task comparison could be made."
    parts = [stats.summarise_verdicts("all-in-one − single-task model", gaps, unit="(mechanism, task) cells")]
    ranked = interference_by_method(gaps)
    if reference in set(ranked["method"]):
        rank = int(ranked.index[ranked["method"] == reference][0]) + 1
        gap = float(ranked.loc[ranked["method"] == reference, "mean_gap_psnr"].iloc[0])
        n = int(ranked["single_task_seeds"].min())
        parts.append(f"{reference}'s mean gap is {gap:+.2f} dB, rank {rank} of {len(ranked)} from the smallest "
                     f"cost of sharing (best: {ranked['method'].iloc[0]}, {ranked['mean_gap_psnr'].iloc[0]:+.2f} dB; "
                     f"descriptive, the single-task models have {n} seed{'s' if n != 1 else ''})")
    return stats.join_verdicts(parts)


# ----------------------------------------------------------------------------- sweeps


def sweep_summary(scores: pd.DataFrame, points: pd.DataFrame, *, n_boot: int = 2000,
                  seed: int = 0) -> pd.DataFrame:
    """Per (sweep, value, task): mean PSNR/SSIM over per-seed means with a crossed seed × image 95%
    interval of the PSNR.

    ``scores`` has a ``variant`` column matching ``points["variant"]`` (a variant shared by several
    sweeps, e.g. the default point, appears in each)."""
    rows = []
    for _, point in points.iterrows():
        frame = scores[scores["variant"] == point["variant"]]
        for task, group in frame.groupby("task", sort=False):
            ci = stats.mean_interval(group, "psnr", n_boot=n_boot, seed=seed)
            rows.append({"sweep": point["sweep"], "value": point["value"], "variant": point["variant"],
                         "default": bool(point["default"]), "task": task, "psnr": ci["estimate"],
                         "psnr_lo": ci["lo"], "psnr_hi": ci["hi"], "ssim": float(group["ssim"].mean()),
                         "n_seeds": ci["n_seeds"], "n_images": ci["n_images"]})
    return pd.DataFrame(rows)


def sweep_tests(scores: pd.DataFrame, points: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0,
                alpha: float = 0.05, mixed: bool = True) -> pd.DataFrame:
    """Every swept value against the sweep's default point, per task and pooled over tasks (PSNR dB,
    Welch t over seeds: a different ω, κ or estimator is another network), Holm per sweep."""
    rows = []
    for sweep, group in points.groupby("sweep", sort=False):
        default = group[group["default"]]
        if default.empty:
            continue
        base = scores[scores["variant"] == default["variant"].iloc[0]]
        for _, point in group[~group["default"]].iterrows():
            frame = scores[scores["variant"] == point["variant"]]
            for task in list(dict.fromkeys(frame["task"])) + [POOLED]:
                ours = _pooled(frame) if task == POOLED else frame[frame["task"] == task]
                theirs = _pooled(base) if task == POOLED else base[base["task"] == task]
                if ours.empty or theirs.empty:
                    continue
                rows.append({"sweep": sweep, "value": point["value"], "default_value": default["value"].iloc[0],
                             "task": task, **stats.compare(ours, theirs, "psnr", paired=False, n_boot=n_boot,
                                                           seed=seed, mixed=mixed)})
    return stats.add_verdicts(pd.DataFrame(rows), alpha=alpha, family="sweep", unit="dB")


def sweep_verdict(tests: pd.DataFrame) -> str:
    """Per sweep, the verdicts of its points against the default (pooled over tasks)."""
    if tests.empty:
        return "No sweep comparison could be made."
    pooled = tests[tests["task"] == POOLED]
    return stats.join_verdicts([stats.summarise_verdicts(f"{sweep} against its default, pooled over tasks", group,
                                                         unit="values")
                                for sweep, group in pooled.groupby("sweep", sort=False)])


# ----------------------------------------------------------------------------- the bar chart's numbers


def bar_table(scores: pd.DataFrame, tasks: Sequence[str], prompt_source: str, methods: Sequence[str], *,
              n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Mean PSNR and 95% crossed (seed × image) bootstrap interval per method and task: the bar chart's numbers."""
    frame = scores[scores["prompt_source"] == prompt_source]
    rows = []
    for method in methods:
        for task in tasks:
            cell = frame[(frame["method"] == method) & (frame["task"] == task)]
            if cell.empty:
                continue
            ci = stats.mean_interval(cell, "psnr", n_boot=n_boot, seed=seed)
            rows.append({"method": method, "task": task, "psnr": ci["estimate"], "lo": ci["lo"], "hi": ci["hi"],
                         "n_seeds": ci["n_seeds"], "n_images": ci["n_images"]})
    return pd.DataFrame(rows)
