"""Notebook 05: do the rankings hold as training grows?

Every comparison of notebooks 01–04 is taken at one training budget. Here the core mechanisms are
trained with warm-up–stable–decay (``schedule="wsd"``) at several log-spaced budgets ending at the
profile's own ``steps``: the longest run (the *trunk*) keeps its full training state at the step where
each shorter budget starts its decay (``RunConfig.keep_steps``), and each shorter budget trains only
its decay from there (``csnet.store.find_branch_point``), ending with the weights it would have had
from scratch. At one seed every mechanism starts from the same backbone and sees the same batches, so
differences between mechanisms pair over seeds.

Findings, each a verdict of :mod:`analysis.stats` (the seed is the replicate, photos a crossed factor):

- ``budget_tests``: ``hard_select`` against each other mechanism at every budget, per task and pooled;
  ``ranking``: the order of the mechanisms' means at every budget;
- ``gap_slopes``: how the gap ``hard_select − other`` changes per doubling of the budget. The
  least-squares slope over log2(budget) is a fixed linear combination of the gaps, so it is computed
  per (seed, image) cell and tested like any paired difference: t over the per-seed slopes, a crossed
  seed × image bootstrap interval, and an equivalence margin of ``margin`` over the whole budget range;
- ``beats_references``: the first budget at which each mechanism is *different* from, and above, each
  classical reference (NL-means, wavelet, dark channel prior) and the degraded input;
- ``crossings``: where two curves' mean gap changes sign between adjacent budgets, interpolated on
  log2(budget), with the bootstrap distribution of that point (seeds and photos resampled).

What this leaves unknown: the paper trains one budget (~120 epochs); whether these curves continue
beyond the largest budget trained here is not measured. A trunk trained before its ``keep_steps`` were
asked for has no branch states: its shorter budgets then train from scratch (same weights, full cost).
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from analysis import stats

MECHANISMS = ("none", "hard_select", "soft_gate", "channel_attention", "cross_attention")
REFERENCE = "hard_select"  # the mechanism every other one is compared with
POOLED = "all tasks"
LEARNED = "ours, measured"
INPUT = "degraded input"


# ----------------------------------------------------------------------------- the design


def check_mechanisms(mechanisms: Sequence[str], reference: str = REFERENCE) -> list[str]:
    """The mechanisms as a list, each a ``csnet.models.FUSIONS`` key, ``reference`` among them."""
    from csnet.models import FUSIONS

    out = list(dict.fromkeys(mechanisms))
    unknown = [m for m in out if m not in FUSIONS]
    if unknown:
        raise ValueError(f"unknown mechanisms {unknown}; choose from {sorted(FUSIONS)}")
    if reference not in out:
        raise ValueError(f"mechanisms must include {reference!r} (every finding compares with it), got {out}")
    return out


def default_budgets(steps: int, warmup_steps: int = 0, decay_fraction: float = 0.2, count: int = 4) -> list[int]:
    """``count`` budgets halving down from ``steps`` (log-spaced, the largest the profile's own), none
    shorter than the smallest wsd run whose decay starts after the warm-up (fewer when they collide)."""
    from csnet.profiles import branch_step

    if count < 2:
        raise ValueError(f"count must be >= 2 budgets, got {count}")
    shortest = next(b for b in range(1, steps + 1) if branch_step(b, decay_fraction) >= warmup_steps)
    return sorted({max(shortest, int(round(steps / 2 ** k))) for k in range(count)})


def check_budgets(budgets: Sequence[int], warmup_steps: int, decay_fraction: float) -> list[int]:
    """The budgets sorted, each one a valid wsd run: its decay starts after the warm-up."""
    from csnet.profiles import branch_step

    out = sorted({int(b) for b in budgets})
    if len(out) < 2:
        raise ValueError(f"budgets needs at least 2 distinct step counts, got {list(budgets)}")
    short = [b for b in out if branch_step(b, decay_fraction) < warmup_steps]
    if short:
        raise ValueError(f"budgets {short} decay before the {warmup_steps}-step warm-up ends; the smallest allowed "
                         f"budget starts its decay at or after step {warmup_steps}")
    return out


def budget_config(profile, fusion: str, seed: int, steps: int, *, budgets: Sequence[int] = (), **overrides):
    """The run of ``fusion`` at ``seed`` and budget ``steps``: ``profiles.study_config`` with the wsd
    schedule (so the profile's own run is the top of the curve when the profile trains wsd). At the
    largest of ``budgets`` the run keeps the states the others branch from (``keep_steps``)."""
    from csnet.profiles import branch_step, get_profile, study_config

    prof = get_profile(profile) if isinstance(profile, str) else profile
    keep = tuple(sorted(branch_step(b, prof.decay_fraction) for b in budgets if b < steps)) \
        if budgets and steps == max(budgets) else ()
    return study_config(prof, fusion, seed, schedule="wsd", cosine_steps=None, steps=int(steps), keep_steps=keep,
                        **overrides)


def plan(profile, mechanisms: Sequence[str], seeds: Sequence[int], budgets: Sequence[int], *,
         seconds_per_step: Mapping[str, float] | None = None, **overrides) -> pd.DataFrame:
    """One row per model of the design with an empty store: the trunk trains every step, each shorter
    budget only its decay. ``seconds_per_step`` (per mechanism) adds the expected training seconds."""
    from csnet.profiles import branch_step, get_profile, run_id

    prof = get_profile(profile) if isinstance(profile, str) else profile
    top = max(budgets)
    rows = []
    for mechanism in mechanisms:
        for seed in seeds:
            for budget in sorted(budgets):
                trained = budget if budget == top else budget - branch_step(budget, prof.decay_fraction)
                rows.append({"mechanism": mechanism, "seed": seed, "budget": budget, "role": "trunk" if budget == top
                             else "branch", "steps_trained": trained,
                             "run": run_id(budget_config(prof, mechanism, seed, budget, budgets=budgets,
                                                         **overrides))})
    out = pd.DataFrame(rows)
    if seconds_per_step is not None:
        out["seconds"] = out["steps_trained"] * out["mechanism"].map(seconds_per_step)
    return out


def _train_chain(job: tuple) -> set[str]:
    """Train one (mechanism, seed): its trunk, then every shorter budget from the trunk's branch states.
    Returns the ids of the runs this call trained. (A function of the module so that worker processes
    can import it.)"""
    profile, mechanism, seed, budgets, overrides, progress = job
    from csnet.store import get_or_train

    trained = set()
    for steps in sorted(budgets, reverse=True)[:1] + sorted(budgets)[:-1]:
        run = get_or_train(budget_config(profile, mechanism, seed, steps, budgets=budgets, **overrides),
                           progress=progress)
        if run.trained_now:
            trained.add(run.id)
    return trained


def train_curves(profile, mechanisms: Sequence[str], seeds: Sequence[int], budgets: Sequence[int], *,
                 jobs: int = 1, progress: bool = False, **overrides) -> dict[tuple[str, int, int], Any]:
    """``{(mechanism, seed, budget): Run}``, each run's ``trained_now`` telling whether this call trained it.

    Every (mechanism, seed) is a chain (trunk first, then its branches); with ``jobs`` > 1 the chains
    train in that many worker processes (spawned, each with ``csnet.train.cpu_threads`` threads on a
    CPU, or sharing the GPU): on a 2-core machine two chains at once use both cores."""
    from csnet.profiles import get_profile
    from csnet.store import get_or_train

    prof = get_profile(profile) if isinstance(profile, str) else profile
    chains = [(prof, m, s, list(budgets), dict(overrides), progress) for m in mechanisms for s in seeds]
    if int(jobs) < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs!r}")
    if jobs > 1 and len(chains) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(int(jobs), len(chains)), mp_context=multiprocessing.get_context("spawn")) as pool:
            trained = set().union(*pool.map(_train_chain, chains))
    else:
        trained = set().union(*map(_train_chain, chains))
    runs = {}
    for _, mechanism, seed, _, _, _ in chains:
        for steps in budgets:
            run = get_or_train(budget_config(prof, mechanism, seed, steps, budgets=budgets, **overrides))
            run.trained_now = run.id in trained
            runs[(mechanism, seed, int(steps))] = run
    return runs


def run_table(runs: Mapping[tuple[str, int, int], Any]) -> pd.DataFrame:
    """One row per run: id, whether this call trained it, where it branched from, and its cost: training
    seconds (the whole model, the trunk's share included) and training FLOPs (``csnet.bench.training_flops``
    of one step × steps; the network's forward + backward, image encoder and optimiser excluded)."""
    from csnet.bench import training_flops

    per_step: dict[str, int] = {}
    rows = []
    for (mechanism, seed, budget), run in runs.items():
        cfg = run.config
        if mechanism not in per_step:
            flops = training_flops(cfg.model, cfg.fusion, cfg.batch_size, cfg.patch_size)
            per_step[mechanism] = flops["forward"] + flops["backward"]
        branched = run.metrics.get("branched_from") or {}
        seconds = run.metrics.get("train_cpu_seconds", run.metrics.get("train_seconds", np.nan))
        rows.append({"mechanism": mechanism, "seed": seed, "budget": budget, "run": run.id,
                     "trained_now": bool(run.trained_now), "branched_from": branched.get("run", ""),
                     "branch_step": branched.get("step", np.nan), "train_seconds": float(seconds),
                     "train_flops": float(per_step[mechanism]) * budget})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- scores


def _evaluate_one(job: tuple) -> pd.DataFrame:
    """Per-image scores of the run in one folder (a function of the module, for worker processes)."""
    from csnet.evaluate import evaluate
    from csnet.store import Run

    run_dir, tasks, prompt_source, evaluate_kwargs, device = job
    return evaluate(Run.load(run_dir, device=device), list(tasks), prompt_source=prompt_source, **evaluate_kwargs)


def evaluate_curves(runs: Mapping[tuple[str, int, int], Any], tasks: Sequence[str], *, prompt_source: str = "image",
                    evaluate_kwargs: Mapping | None = None, device: str | None = None, jobs: int = 1) -> pd.DataFrame:
    """Per-image test scores of every run (``csnet.evaluate.evaluate``) with ``mechanism``, ``seed``,
    ``budget`` and ``kind`` columns; on ``device`` (None: CUDA when there is one, else the CPU), in
    ``jobs`` worker processes on a CPU (the scores do not depend on which process computes them)."""
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    work = [(run.dir, list(tasks), prompt_source, dict(evaluate_kwargs or {}), device) for run in runs.values()]
    if int(jobs) > 1 and device == "cpu" and len(work) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(int(jobs), len(work)), mp_context=multiprocessing.get_context("spawn")) as pool:
            done = list(pool.map(_evaluate_one, work))
    else:
        done = [_evaluate_one(job) for job in work]
    frames = [frame.assign(mechanism=mechanism, seed=seed, budget=budget, kind=LEARNED)
              for (mechanism, seed, budget), frame in zip(runs, done)]
    return pd.concat(frames, ignore_index=True)


def reference_lines(references: pd.DataFrame) -> pd.DataFrame:
    """Mean PSNR/SSIM per (reference, task) of ``analysis.classical.evaluate_references`` rows: the
    horizontal lines of the curves (they do not train)."""
    return references.groupby(["method", "task"], sort=False)[["psnr", "ssim"]].mean().reset_index()


def curves(scores: pd.DataFrame, costs: pd.DataFrame | None = None, *, n_boot: int = 2000,
           seed: int = 0) -> pd.DataFrame:
    """Mean PSNR/SSIM per (mechanism, budget, task) over per-seed means, with a crossed seed × image
    interval of the PSNR (``lo``, ``hi``), the seed SD, and the mean cost of those runs when given."""
    rows = []
    for (mechanism, budget, task), group in scores.groupby(["mechanism", "budget", "task"], sort=False):
        psnr = stats.mean_interval(group, "psnr", n_boot=n_boot, seed=seed) if group["seed"].nunique() > 1 else \
            {"estimate": group["psnr"].mean(), "lo": np.nan, "hi": np.nan, "seed_sd": np.nan}
        rows.append({"mechanism": mechanism, "budget": int(budget), "task": task, "psnr": psnr["estimate"],
                     "lo": psnr["lo"], "hi": psnr["hi"], "seed_sd": psnr["seed_sd"],
                     "ssim": group.groupby("seed")["ssim"].mean().mean(), "n_seeds": group["seed"].nunique()})
    out = pd.DataFrame(rows)
    if costs is not None and not costs.empty:
        cost = costs.groupby(["mechanism", "budget"])[["train_seconds", "train_flops"]].mean().reset_index()
        out = out.merge(cost, on=["mechanism", "budget"], how="left")
    return out.sort_values(["task", "mechanism", "budget"], kind="stable").reset_index(drop=True)


def _with_pooled(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per task, and all tasks pooled (each (task, image) cell one "image")."""
    parts = {task: frame[frame["task"] == task] for task in dict.fromkeys(frame["task"])}
    parts[POOLED] = frame.assign(image=frame["task"].astype(str) + "/" + frame["image"].astype(str))
    return parts


# ----------------------------------------------------------------------------- findings


def _gaps(scores: pd.DataFrame, reference: str, metric: str):
    """Per task (pooled noise levels included) and per mechanism other than ``reference``: the gap
    reference − other of ``metric`` as a Series indexed by (budget, seed, image), NaN where one is missing."""
    for task, frame in _with_pooled(scores).items():
        cells = frame.groupby(["mechanism", "budget", "seed", "image"])[metric].mean()
        for other in dict.fromkeys(frame["mechanism"]):
            if other != reference:
                yield task, other, cells.loc[reference] - cells.loc[other]


def budget_tests(scores: pd.DataFrame, *, reference: str = REFERENCE, metric: str = "psnr", margin: float | None = None,
                 n_boot: int = 2000, seed: int = 0, alpha: float = 0.05, mixed: bool = False) -> pd.DataFrame:
    """``reference`` − every other mechanism at every budget, per task and pooled; paired over seeds
    (paired seeds). Holm family: one budget (every opponent and task at it)."""
    rows = []
    for budget, at_budget in scores.groupby("budget", sort=True):
        for task, frame in _with_pooled(at_budget).items():
            ours = frame[frame["mechanism"] == reference]
            for other in dict.fromkeys(frame["mechanism"]):
                if other == reference or ours.empty:
                    continue
                theirs = frame[frame["mechanism"] == other]
                result = stats.compare(ours, theirs, metric, paired=True, margin=margin, n_boot=n_boot, seed=seed,
                                       mixed=mixed)
                rows.append({"budget": int(budget), "task": task, "reference": reference, "other": other,
                             "metric": metric, **result})
    return stats.add_verdicts(pd.DataFrame(rows), alpha=alpha, family="budget", unit="dB")


def ranking(curve_table: pd.DataFrame, tasks: Sequence[str]) -> pd.DataFrame:
    """Rank of every mechanism's mean PSNR (1 = best) per budget and task, and over tasks (mean of ranks)."""
    frame = curve_table[curve_table["task"].isin(tasks)]
    ranks = frame.assign(rank=frame.groupby(["budget", "task"])["psnr"].rank(ascending=False, method="min"))
    table = ranks.pivot_table(index=["budget", "mechanism"], columns="task", values="rank", sort=False)
    table = table[[t for t in tasks if t in table.columns]]
    table["mean_rank"] = table.mean(axis=1)
    return table.reset_index().sort_values(["budget", "mean_rank"], kind="stable").reset_index(drop=True)


def ranking_sentences(rank_table: pd.DataFrame) -> list[str]:
    """"At 250 steps: hard_select, none, … (mean rank over tasks)" per budget, computed from the table."""
    out = []
    for budget, group in rank_table.groupby("budget", sort=True):
        order = ", ".join(f"{m} ({r:.1f})" for m, r in zip(group["mechanism"], group["mean_rank"]))
        out.append(f"at {budget} steps: {order}")
    return out


def slope_weights(budgets: Sequence[int]) -> np.ndarray:
    """Least-squares weights w with slope = Σ w_b · y_b for y over x = log2(budget)."""
    x = np.log2(np.asarray(budgets, dtype=float))
    centred = x - x.mean()
    return centred / np.sum(centred ** 2)


def gap_slopes(scores: pd.DataFrame, *, reference: str = REFERENCE, metric: str = "psnr", margin: float = 0.25,
               n_boot: int = 2000, seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """Slope of the gap ``reference − other`` per doubling of the budget, per task and pooled.

    Per (seed, image) cell the gap at every budget is combined with :func:`slope_weights`; the cells form
    a seeds × images table tested against zero by :func:`analysis.stats.compare` (paired t over the
    per-seed slopes, crossed bootstrap). Equivalence margin: ``margin`` dB over the whole budget range,
    i.e. ``margin / log2(max/min budget)`` dB per doubling. Holm family: every (opponent, task) slope."""
    budgets = sorted(int(b) for b in scores["budget"].unique())
    if len(budgets) < 2:
        raise ValueError(f"a slope needs >= 2 budgets, got {budgets}")
    weights = dict(zip(budgets, slope_weights(budgets)))
    per_doubling = margin / math.log2(budgets[-1] / budgets[0])
    rows = []
    for task, other, gap in _gaps(scores, reference, metric):
        gap = gap.dropna()  # (budget, seed, image)
        complete = gap.groupby(level=["seed", "image"]).count() == len(budgets)
        gap = gap[gap.reset_index(level="budget").index.isin(complete[complete].index)]
        slope = (gap * gap.index.get_level_values("budget").map(weights).to_numpy()).groupby(
            level=["seed", "image"]).sum().rename("slope").reset_index()
        zero = slope.assign(slope=0.0)
        result = stats.compare(slope, zero, "slope", paired=True, margin=per_doubling, n_boot=n_boot, seed=seed,
                               mixed=False)
        top = gap.xs(budgets[-1], level="budget").groupby(level="seed").mean().mean()
        rows.append({"task": task, "reference": reference, "other": other, "metric": metric,
                     "budgets": ",".join(map(str, budgets)), "gap_at_largest": float(top), **result})
    return stats.add_verdicts(pd.DataFrame(rows), alpha=alpha, unit="dB per doubling")


def slope_sentences(slopes: pd.DataFrame) -> list[str]:
    """Per row: "gap hard_select − none on Noise σ=25 (+0.31 dB at 500 steps, narrowing as the budget grows)
    per doubling of the budget: −0.12 dB (95% CI …) …: <verdict>"; narrowing or widening is the point
    estimate's direction (the slope against the gap at the largest budget), the verdict says whether it holds."""
    from analysis.style import display_name

    out = []
    for row in slopes.itertuples():
        trend = "narrowing" if np.sign(row.estimate) == -np.sign(row.gap_at_largest) else "widening"
        largest = row.budgets.split(",")[-1]
        subject = (f"gap {row.reference} − {row.other} on {display_name(row.task)} ({row.gap_at_largest:+.2f} dB at "
                   f"{largest} steps, {trend} as the budget grows) per doubling of the budget")
        out.append(stats.verdict_sentence(subject, row, unit="dB"))
    return out


def beats_references(scores: pd.DataFrame, references: pd.DataFrame, *, metric: str = "psnr",
                     margin: float | None = None, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """Every mechanism at every budget against every reference on the tasks it applies to: the
    mechanism's per-(seed, image) difference to the reference on the same photo (the reference does not
    depend on the seed), t over seeds. Holm family: one (reference, task) line (all mechanisms and budgets)."""
    rows = []
    for (method, task), ref in references.groupby(["method", "task"], sort=False):
        learned = scores[scores["task"] == task]
        for (mechanism, budget), frame in learned.groupby(["mechanism", "budget"], sort=False):
            baseline = frame[["seed", "image"]].merge(ref[["image", metric]], on="image", how="inner")
            result = stats.compare(frame, baseline, metric, paired=True, margin=margin, n_boot=n_boot, seed=seed,
                                   mixed=False)
            rows.append({"mechanism": mechanism, "budget": int(budget), "reference_method": method, "task": task,
                         "metric": metric, **result})
    table = pd.DataFrame(rows).sort_values(["reference_method", "task", "mechanism", "budget"], kind="stable")
    return stats.add_verdicts(table.reset_index(drop=True), alpha=alpha, family=["reference_method", "task"], unit="dB")


def first_beats(tests: pd.DataFrame) -> pd.DataFrame:
    """Per (mechanism, reference, task): the smallest budget whose verdict is *different* with the
    mechanism above the reference (NaN: none of the budgets), with that comparison's row."""
    rows = []
    for (mechanism, method, task), group in tests.groupby(["mechanism", "reference_method", "task"], sort=False):
        above = group[(group["verdict"] == "different") & (group["estimate"] > 0)].sort_values("budget")
        first = above.iloc[0] if len(above) else None
        rows.append({"mechanism": mechanism, "reference_method": method, "task": task,
                     "first_budget": float(first["budget"]) if first is not None else np.nan,
                     "largest_budget": int(group["budget"].max()),
                     "estimate": first["estimate"] if first is not None else np.nan,
                     "sentence": stats.verdict_sentence(f"{mechanism} − {method} on {task} at {int(first['budget'])} steps",
                                                        first) if first is not None else
                     f"{mechanism} is not shown above {method} on {task} at any budget up to "
                     f"{int(group['budget'].max())} steps"})
    return pd.DataFrame(rows)


def crossings(scores: pd.DataFrame, *, reference: str = REFERENCE, metric: str = "psnr", n_boot: int = 2000,
              seed: int = 0, ci: float = 0.95) -> pd.DataFrame:
    """Where ``reference``'s curve crosses each other mechanism's, per task and pooled.

    A crossing is a sign change of the mean gap between adjacent budgets; its point is interpolated
    linearly on log2(budget). Uncertainty: the crossed bootstrap (seeds and photos resampled together
    across budgets) gives the share of resamples with a sign change in the same interval and the
    percentile interval of the crossing point among them."""
    budgets = sorted(int(b) for b in scores["budget"].unique())
    x = np.log2(np.asarray(budgets, dtype=float))
    rng = np.random.default_rng(seed)
    rows = []
    for task, other, gap in _gaps(scores, reference, metric):
        gap = gap.unstack(["seed", "image"]).reindex(budgets)
        gap = gap.dropna(axis=1)
        if gap.empty:
            continue
        seeds_ = sorted(set(gap.columns.get_level_values("seed")))
        images = sorted(set(gap.columns.get_level_values("image")))
        cube = np.stack([[gap[(s, i)].to_numpy() for i in images] for s in seeds_])  # (S, I, budgets)
        mean = cube.mean(axis=(0, 1))
        sw = rng.multinomial(len(seeds_), np.full(len(seeds_), 1 / len(seeds_)), size=n_boot) / len(seeds_)
        iw = rng.multinomial(len(images), np.full(len(images), 1 / len(images)), size=n_boot) / len(images)
        boot = np.einsum("bs,sik,bi->bk", sw, cube, iw)  # (n_boot, budgets)
        for k in range(len(budgets) - 1):
            if np.sign(mean[k]) == np.sign(mean[k + 1]) or mean[k] == 0:
                continue
            point = x[k] + (x[k + 1] - x[k]) * mean[k] / (mean[k] - mean[k + 1])
            flips = np.sign(boot[:, k]) != np.sign(boot[:, k + 1])
            located = x[k] + (x[k + 1] - x[k]) * boot[flips, k] / (boot[flips, k] - boot[flips, k + 1])
            tail = (1 - ci) / 2
            lo, hi = (np.quantile(located, [tail, 1 - tail]) if flips.any() else (np.nan, np.nan))
            rows.append({"task": task, "reference": reference, "other": other, "between": f"{budgets[k]}–{budgets[k + 1]}",
                         "gap_before": mean[k], "gap_after": mean[k + 1], "crossing_steps": 2 ** point,
                         "lo_steps": 2 ** lo, "hi_steps": 2 ** hi, "share_of_resamples": float(flips.mean()),
                         "n_seeds": len(seeds_), "n_images": len(images)})
    return pd.DataFrame(rows, columns=["task", "reference", "other", "between", "gap_before", "gap_after",
                                       "crossing_steps", "lo_steps", "hi_steps", "share_of_resamples", "n_seeds",
                                       "n_images"])


def crossing_sentences(table: pd.DataFrame, ci: float = 0.95) -> list[str]:
    """One sentence per crossing, from the table's numbers only."""
    out = []
    for row in table.itertuples():
        where = (f"{ci:.0%} of resampled crossings within {row.lo_steps:.0f}–{row.hi_steps:.0f} steps"
                 if np.isfinite(row.lo_steps) else "no resample reproduces it")
        out.append(f"{row.reference} and {row.other} cross on {row.task} between {row.between} steps "
                   f"(gap {row.gap_before:+.2f} → {row.gap_after:+.2f} dB; interpolated at {row.crossing_steps:.0f} "
                   f"steps; {row.share_of_resamples:.0%} of seed × photo resamples change sign there; {where})")
    return out
