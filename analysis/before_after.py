"""Issue 12's before/after: the recipe and test-time protocol the first committed studies used, against
the ones chosen by the recipe sweep, on the validation split (never the test photos).

Two arms of models at the profile's size, both trained by today's code (``TRAINING_VERSION``):

- ``before``: PromptIR's peak lr 2e-4, cosine to 0 at the last step, the channel selection block
  starting as a projection (``BEFORE``), the first studies' patches (``BEFORE_SHAPES``: 48² × 8 at cpu),
  and P_v computed on the whole test image;
- ``after``: the profile's recipe (``csnet.profiles``, chosen by ``csnet bench --recipe``) and P_v
  from tiles of the training patch size (``csnet.evaluate``'s default).

Every model is evaluated under three prompts (``CONDITIONS``): P_v of the whole image, P_v of tiles,
and the text prompt of the true label (an oracle). The change from before to after then splits into
its two parts: the recipe (after − before, both under the text prompt) and the prompt's scale (tiled −
whole, the same models). Both arms train the same backbone start on the same batches at one seed, so
every difference is paired over seeds (:func:`analysis.stats.compare`, verdicts by
:func:`analysis.stats.add_verdicts`, Holm over each comparison's mechanisms × tasks).

What this does not re-create: the old *code*. The first studies also had unpaired seeds, Gumbel noise of
unit scale and slower kernels (``TRAINING_VERSION`` 1); ``before`` is the old recipe under today's code,
so the table measures what the recipe and the prompt scale change, not everything that changed.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from analysis import stats

ARMS = ("before", "after")
BEFORE = {"lr": 2e-4, "schedule": "cosine", "selection_start": "projection"}
"""The recipe of the first committed cpu studies (lr of PromptIR, cosine, the paper figure's block)."""
BEFORE_SHAPES = {"cpu": (48, 8)}
"""Patch side and batch of the first studies where the recipe sweep changed them (else the profile's)."""
CONDITIONS: dict[str, tuple[str, str]] = {
    "image, whole": ("image", "whole"),  # P_v of the whole image (the first studies' protocol)
    "image, tiled": ("image", "train"),  # P_v averaged over training-size tiles (today's protocol)
    "text": ("text", "train"),  # P_t of the true label (oracle; the tile is unused)
}
PROTOCOL = {"before": "image, whole", "after": "image, tiled"}
"""The prompt each arm's protocol reports with."""
MECHANISMS = ("none", "hard_select", "soft_gate", "channel_attention", "cross_attention")
ALL_TASKS = "all tasks"


def configs(profile, mechanisms: Sequence[str] = MECHANISMS, seeds: Sequence[int] = (0, 1),
            budgets: Sequence[int] | None = None) -> dict[tuple[str, str, int], Any]:
    """``{(arm, mechanism, seed): RunConfig}``. ``after`` is the run notebooks 01–05 train
    (``profiles.study_config``); when the profile trains wsd it keeps the branch states of notebook 05's
    ``budgets`` (default: its default budgets), so notebook 05 later trains only the decay branches."""
    from analysis import budget
    from csnet.models import SELECTING
    from csnet.profiles import get_profile, study_config

    prof = get_profile(profile) if isinstance(profile, str) else profile
    out = {}
    for mechanism in mechanisms:
        for seed in seeds:
            if prof.schedule == "wsd":
                chosen = budgets or budget.default_budgets(prof.steps, prof.warmup_steps, prof.decay_fraction)
                out[("after", mechanism, seed)] = budget.budget_config(prof, mechanism, seed, prof.steps,
                                                                        budgets=chosen)
            else:
                out[("after", mechanism, seed)] = study_config(prof, mechanism, seed)
            model = {"selection_start": BEFORE["selection_start"]} if mechanism in SELECTING else {}
            patch, batch = BEFORE_SHAPES.get(prof.name, (prof.patch_size, prof.batch_size))
            out[("before", mechanism, seed)] = study_config(
                prof, mechanism, seed, lr=BEFORE["lr"], schedule=BEFORE["schedule"], cosine_steps=None,
                patch_size=patch, batch_size=batch, **({"model": model} if model else {}))
    return out


def _train_and_evaluate(job: tuple) -> pd.DataFrame:
    """Train one model through the store and score it under every prompt condition (a module-level
    function so that spawned workers can import it)."""
    import torch

    from csnet.evaluate import evaluate
    from csnet.store import get_or_train

    (arm, mechanism, seed), cfg, eval_kwargs = job
    torch.set_num_threads(1)
    run = get_or_train(cfg, progress=False)
    frames = []
    for condition, (source, tile) in CONDITIONS.items():
        table = evaluate(run, list(cfg.tasks), prompt_source=source, prompt_tile=tile, split="val", **eval_kwargs)
        frames.append(table.assign(arm=arm, mechanism=mechanism, seed=seed, condition=condition, run=run.id))
    return pd.concat(frames, ignore_index=True)


def train_and_evaluate(profile, mechanisms: Sequence[str] = MECHANISMS, seeds: Sequence[int] = (0, 1), *,
                       jobs: int = 2, progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Per-image validation scores of every model of :func:`configs` under every condition: ``arm``,
    ``mechanism``, ``seed``, ``condition``, ``task``, ``image``, ``psnr``, ``ssim``, ``correct``, ``run``.
    Models train (resumably, through the run store) and evaluate ``jobs`` at a time, 1 thread each."""
    from csnet.profiles import get_profile

    prof = get_profile(profile) if isinstance(profile, str) else profile
    if int(jobs) < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs!r}")
    eval_kwargs = {"max_images": prof.test_max_images, "max_side": prof.test_max_side}
    work = [(key, cfg, eval_kwargs) for key, cfg in configs(prof, mechanisms, seeds).items()]
    say = progress or (lambda message: None)
    frames = []
    if jobs > 1 and len(work) > 1:
        with ProcessPoolExecutor(min(int(jobs), len(work)), mp_context=multiprocessing.get_context("spawn")) as pool:
            for (key, _, _), frame in zip(work, pool.map(_train_and_evaluate, work)):
                say(f"  {key[0]} {key[1]} seed {key[2]} done")
                frames.append(frame)
    else:
        for job in work:
            frames.append(_train_and_evaluate(job))
            say(f"  {job[0][0]} {job[0][1]} seed {job[0][2]} done")
    keep = ["arm", "mechanism", "seed", "condition", "task", "image", "psnr", "ssim", "correct", "prompt_tile", "run"]
    scores = pd.concat(frames, ignore_index=True)
    return scores[[c for c in keep if c in scores.columns]]


def with_pooled(scores: pd.DataFrame) -> pd.DataFrame:
    """``scores`` plus the same rows under ``task = "all tasks"`` (an image of each task is one cell)."""
    pooled = scores.assign(image=scores["task"] + "/" + scores["image"].astype(str), task=ALL_TASKS)
    return pd.concat([scores, pooled], ignore_index=True)


def summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean and SD over seeds of the per-seed mean PSNR, SSIM and recognition accuracy, per mechanism,
    arm, condition and task (``all tasks`` pooled)."""
    frame = with_pooled(scores)
    per_seed = (frame.groupby(["mechanism", "arm", "condition", "task", "seed"], sort=False)
                [["psnr", "ssim", "correct"]].mean().reset_index())
    out = per_seed.groupby(["mechanism", "arm", "condition", "task"], sort=False).agg(
        psnr=("psnr", "mean"), psnr_std=("psnr", "std"), ssim=("ssim", "mean"), ssim_std=("ssim", "std"),
        accuracy=("correct", "mean"), seeds=("seed", "nunique")).reset_index()
    return out


# (name, arm a, condition a, arm b, condition b): each a paired difference a − b over seeds
COMPARISONS = (
    ("after − before (each arm's protocol)", "after", PROTOCOL["after"], "before", PROTOCOL["before"]),
    ("recipe: after − before (text prompt)", "after", "text", "before", "text"),
    ("prompt scale: tiled − whole (before's models)", "before", "image, tiled", "before", "image, whole"),
    ("prompt scale: tiled − whole (after's models)", "after", "image, tiled", "after", "image, whole"),
)


def comparisons(scores: pd.DataFrame, *, n_boot: int = 2000, alpha: float = 0.05,
                margin: float | None = None) -> pd.DataFrame:
    """One row per comparison × mechanism × task (``all tasks`` pooled): the paired difference of PSNR
    over seeds with its crossed bootstrap interval, p, Holm over the comparison's family and the
    three-way verdict."""
    frame = with_pooled(scores)
    rows = []
    for name, arm_a, cond_a, arm_b, cond_b in COMPARISONS:
        for (mechanism, task), group in frame.groupby(["mechanism", "task"], sort=False):
            a = group[(group["arm"] == arm_a) & (group["condition"] == cond_a)]
            b = group[(group["arm"] == arm_b) & (group["condition"] == cond_b)]
            if a.empty or b.empty:
                continue
            result = stats.compare(a, b, "psnr", paired=True, margin=margin, n_boot=n_boot, mixed=False)
            rows.append({"comparison": name, "mechanism": mechanism, "task": task, **result})
    table = pd.DataFrame(rows)
    return stats.add_verdicts(table, alpha=alpha, family="comparison", unit="dB") if not table.empty else table


def headline(summary_table: pd.DataFrame, tests: pd.DataFrame) -> pd.DataFrame:
    """The paper-ready table: per mechanism and task, PSNR before (its protocol) and after (its
    protocol), mean ± SD over seeds, with the paired difference, its interval and verdict."""
    name = COMPARISONS[0][0]
    before = summary_table[(summary_table["arm"] == "before") & (summary_table["condition"] == PROTOCOL["before"])]
    after = summary_table[(summary_table["arm"] == "after") & (summary_table["condition"] == PROTOCOL["after"])]
    keys = ["mechanism", "task"]
    table = (before[keys + ["psnr", "psnr_std"]].rename(columns={"psnr": "before_psnr", "psnr_std": "before_psnr_std"})
             .merge(after[keys + ["psnr", "psnr_std", "seeds"]].rename(columns={"psnr": "after_psnr",
                                                                                "psnr_std": "after_psnr_std"}), on=keys)
             .merge(tests[tests["comparison"] == name][keys + ["estimate", "lo", "hi", "p_holm", "verdict"]], on=keys))
    return table.rename(columns={"estimate": "difference_db"})


def recognition(summary_table: pd.DataFrame) -> pd.DataFrame:
    """Whole-image recognition accuracy of P_v, whole against tiled, per arm, mechanism and task."""
    image = summary_table[summary_table["condition"].str.startswith("image")]
    return (image.pivot_table(index=["arm", "mechanism", "task"], columns="condition", values="accuracy", sort=False)
            .reset_index().rename_axis(columns=None))


def write_outputs(scores: pd.DataFrame, references: pd.DataFrame, folder, name: str, *, title: str = "",
                  n_boot: int = 2000, alpha: float = 0.05) -> dict[str, Any]:
    """Write under ``folder``: ``<name>_per_image.csv`` (every score), ``<name>_summary.csv``,
    ``<name>_tests.csv`` (every comparison with its verdict), ``<name>.csv/.tex/.md`` (the headline
    table), ``<name>_recognition.csv/.md`` and the figure ``<name>.png/.pdf``. Returns the tables."""
    from analysis.outputs import OutputDir, write_csv
    from analysis.plots.before_after import before_after_figure

    out = OutputDir(folder)
    write_csv(scores, out / f"{name}_per_image.csv")
    summary_table = summary(scores)
    tests = comparisons(scores, n_boot=n_boot, alpha=alpha)
    table = headline(summary_table, tests)
    write_csv(summary_table, out / f"{name}_summary.csv")
    write_csv(tests, out / f"{name}_tests.csv")
    out.table(table, name, float_format="{:.3g}", higher_is_better=("after_psnr",),
              caption=(f"{title}: validation PSNR (dB, mean ± SD over seeds) before (lr 2e-4, cosine, projection "
                       "start, whole-image P_v) and after (the profile's recipe, tiled P_v); difference after − "
                       "before paired over seeds, 95% crossed bootstrap interval, Holm over the table"))
    recognised = recognition(summary_table)
    out.table(recognised, f"{name}_recognition", float_format="{:.2f}",
              caption=f"{title}: recognition accuracy of P_v on whole validation photos, whole image against tiles")
    mechanisms = list(dict.fromkeys(scores["mechanism"]))
    tasks = list(dict.fromkeys(scores["task"]))
    out.figure(before_after_figure(summary_table, references, tasks, mechanisms, title=title), name)
    return {"summary": summary_table, "tests": tests, "headline": table, "recognition": recognised}
