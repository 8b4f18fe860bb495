"""The training-recipe sweep of ``csnet bench --recipe`` (issue 12): which peak learning rate, schedule,
patch shape and selection-block start a profile should train with, measured on the validation split.

One factor at a time, around the best learning rate, each stage taking the earlier stages' choice:

- ``lr``: the peak learning rates ``lrs`` × the mechanisms ``lr_fusions`` × ``seeds``, at the profile's
  own schedule, patch and batch;
- ``schedule``: cosine against warm-up–stable–decay (``wsd``) at the chosen lr;
- ``patch``: patch side against batch at (about) equal pixels per step (``patch_shapes``);
- ``selection_start``: ``hard_select``, ``soft_gate`` and ``random_select`` with the selection block
  starting as the paper draws it (``projection``) or as the identity on its input (``identity``).

"Chosen" is the value with the best mean validation PSNR at the full budget, where the mean weighs
every mechanism equally (over tasks, then seeds, then mechanisms: :func:`choose`), so that no single
mechanism's taste sets the recipe. A value given explicitly (``Settings.lr`` …) is used instead.

Every model is a ``RunConfig`` trained through the run store (``csnet.store.get_or_train``), which also
keeps its weights at ``milestones`` (by default 1/4, 1/2 and all of the steps); each milestone is
evaluated on the validation split with the text prompt (what the network is trained with) and its rows
are appended to the recipe CSV as soon as they exist. A sweep interrupted and restarted therefore
retrains nothing that finished and re-evaluates nothing already in the CSV. ``cpu_seconds`` is the
process CPU time of training up to the milestone (1 torch thread; data synthesis included,
checkpointing and evaluation not).

What the protocol leaves open: the budgets are short (the profile's steps), so the chosen recipe is
the best at that budget, not at convergence; ``patch`` shapes hold pixels per step, not FLOPs, equal.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import math
import multiprocessing
import os
import statistics
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from csnet.models.config import SELECTION_STARTS
from csnet.profiles import SCHEDULES

STAGES = ("lr", "schedule", "patch", "selection_start")
DEFAULT_LRS = (2e-4, 5e-4, 1e-3, 2e-3, 4e-3)
LR_FUSIONS = ("none", "hard_select")
SELECTION_FUSIONS = ("hard_select", "soft_gate", "random_select")
MILESTONE_FRACTIONS = (0.25, 0.5, 1.0)
VALIDATION_SPLIT = "val"
# What a row of the recipe table holds (one per run × milestone × task).
COLUMNS = ("stage", "fusion", "seed", "lr", "schedule", "patch", "batch", "selection_start", "step",
           "cpu_seconds", "task", "psnr", "ssim", "run", "images", "load_average", "load_override")
TRIAL_KEY = ("stage", "fusion", "seed", "lr", "schedule", "patch", "batch", "selection_start")
SUMMARY_COLUMNS = ("stage", "factor", "value", "mean_psnr", "chosen", "given", "seeds", "fusions")


# --------------------------------------------------------------------------------------------------
# What a sweep is


@dataclass(frozen=True)
class Trial:
    """One model of the sweep: the recipe factors that differ from the profile, and its stage."""

    stage: str
    fusion: str
    seed: int
    lr: float
    schedule: str
    patch: int
    batch: int
    selection_start: str  # "" for a mechanism without a selection block

    def key(self) -> tuple:
        return tuple(getattr(self, name) for name in TRIAL_KEY)


@dataclass
class Settings:
    """A recipe sweep at ``profile``'s config. ``None`` for ``lr``/``schedule``/``patch``/
    ``selection_start`` means "chosen by its stage" (or the profile's own when that stage has no rows)."""

    profile: str = "cpu"
    stages: tuple[str, ...] = STAGES
    lrs: tuple[float, ...] = DEFAULT_LRS
    lr_fusions: tuple[str, ...] = LR_FUSIONS
    selection_fusions: tuple[str, ...] = SELECTION_FUSIONS
    seeds: tuple[int, ...] = (0, 1)
    schedules: tuple[str, ...] = SCHEDULES
    patch_shapes: tuple[tuple[int, int], ...] | None = None  # (side, batch); None = equal_pixel_shapes
    selection_starts: tuple[str, ...] = SELECTION_STARTS
    milestone_fractions: tuple[float, ...] = MILESTONE_FRACTIONS
    steps: int | None = None  # None = the profile's
    lr: float | None = None
    schedule: str | None = None
    patch: tuple[int, int] | None = None
    selection_start: str | None = None
    split: str = VALIDATION_SPLIT
    max_images: int | None = None  # per task; None = the profile's test_max_images
    max_side: int | None = None  # None = the profile's test_max_side
    extra: Mapping[str, Any] = field(default_factory=dict)  # further RunConfig overrides (tests)

    def __post_init__(self):
        unknown = [stage for stage in self.stages if stage not in STAGES]
        if unknown:
            raise ValueError(f"unknown recipe stages {unknown}; choose from {', '.join(STAGES)}")
        bad = [s for s in (*self.schedules, *([self.schedule] if self.schedule else [])) if s not in SCHEDULES]
        if bad:
            raise ValueError(f"unknown schedules {bad}; choose from {', '.join(SCHEDULES)}")
        starts = [*self.selection_starts, *([self.selection_start] if self.selection_start else [])]
        bad = [s for s in starts if s not in SELECTION_STARTS]
        if bad:
            raise ValueError(f"unknown selection starts {bad}; choose from {', '.join(SELECTION_STARTS)}")
        if not self.seeds or not self.lrs:
            raise ValueError("a recipe sweep needs at least one seed and one learning rate")
        if any(not 0 < f <= 1 for f in self.milestone_fractions):
            raise ValueError(f"milestone fractions lie in (0, 1], got {self.milestone_fractions}")

    def profile_object(self):
        from csnet.profiles import get_profile

        return get_profile(self.profile)

    def total_steps(self) -> int:
        return self.steps or self.profile_object().steps

    def milestones(self) -> list[int]:
        """The steps whose weights are evaluated: the fractions of the budget, the last always."""
        steps = self.total_steps()
        return sorted({max(1, round(f * steps)) for f in self.milestone_fractions} | {steps})

    def shapes(self) -> list[tuple[int, int]]:
        prof = self.profile_object()
        return list(self.patch_shapes or equal_pixel_shapes(prof.patch_size, prof.batch_size))


def equal_pixel_shapes(patch: int, batch: int) -> list[tuple[int, int]]:
    """(side, batch) pairs around ``patch``×``batch`` with the same pixels per step: a smaller side (2/3
    of ``patch``, else half), ``patch`` itself and twice it (48²×8 → 32²×18, 48²×8, 96²×2). A side is
    used only when it is a multiple of 8 and the batch comes out whole."""
    pixels = patch * patch * batch

    def fits(side: int) -> bool:
        return side >= 8 and side % 8 == 0 and pixels % (side * side) == 0

    smaller = [side for side in (patch * 2 // 3, patch // 2) if patch * 2 % 3 == 0 or side != patch * 2 // 3]
    smaller = [side for side in smaller if fits(side)][:1]
    sides = [*smaller, patch, *([patch * 2] if fits(patch * 2) else [])]
    return [(side, pixels // (side * side)) for side in sides]


def parse_shapes(text: str) -> tuple[tuple[int, int], ...]:
    """``"32x18,48x8"`` → ((32, 18), (48, 8)); names the bad item otherwise."""
    shapes = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        try:
            side, batch = (int(v) for v in item.lower().split("x"))
        except ValueError:
            raise ValueError(f"patch shape {item!r} is not SIDExBATCH (e.g. 48x8)") from None
        shapes.append((side, batch))
    return tuple(shapes)


def _default_selection_start() -> str:
    from csnet.models import ModelConfig

    return ModelConfig.selection_start


def _profile_schedule(prof) -> str:
    return prof.schedule


def run_config_of(trial: Trial, settings: Settings):
    """The ``RunConfig`` of ``trial``: the profile's, with the trial's factors. A factor at its default
    is not written into the config, so that equal models share one run in the store."""
    from csnet.models import SELECTING
    from csnet.profiles import fitting_warmup, run_config

    prof = settings.profile_object()
    overrides: dict[str, Any] = dict(settings.extra)
    overrides.update(lr=trial.lr, patch_size=trial.patch, batch_size=trial.batch)
    if settings.steps:
        overrides["steps"] = settings.steps
        overrides.setdefault("warmup_steps", fitting_warmup(prof.warmup_steps, settings.steps, trial.schedule,
                                                            prof.decay_fraction))
    if trial.schedule != _profile_schedule(prof):
        overrides["schedule"] = trial.schedule
    if trial.fusion in SELECTING and trial.selection_start != _default_selection_start():
        overrides["model"] = {**dict(overrides.get("model", {})), "selection_start": trial.selection_start}
    return run_config(prof, fusion=trial.fusion, seed=trial.seed, **overrides)


# --------------------------------------------------------------------------------------------------
# Stages and choices


@dataclass
class Choice:
    """The recipe each stage hands on: value per factor, and whether it was given or measured."""

    lr: float
    schedule: str
    patch: tuple[int, int]
    selection_start: str
    given: dict[str, bool] = field(default_factory=dict)


def initial_choice(settings: Settings) -> Choice:
    prof = settings.profile_object()
    return Choice(
        lr=settings.lr if settings.lr is not None else prof.lr,
        schedule=settings.schedule or _profile_schedule(prof),
        patch=settings.patch or (prof.patch_size, prof.batch_size),
        selection_start=settings.selection_start or _default_selection_start(),
        given={"lr": settings.lr is not None, "schedule": settings.schedule is not None,
               "patch": settings.patch is not None, "selection_start": settings.selection_start is not None},
    )


def stage_trials(stage: str, settings: Settings, choice: Choice) -> list[Trial]:
    """The models of ``stage`` given the choices so far."""
    from csnet.models import SELECTING

    def make(fusion: str, seed: int, lr: float = choice.lr, schedule: str = choice.schedule,
             patch: tuple[int, int] = choice.patch, start: str = choice.selection_start) -> Trial:
        return Trial(stage, fusion, seed, float(lr), schedule, patch[0], patch[1],
                     start if fusion in SELECTING else "")

    seeds, fusions = settings.seeds, settings.lr_fusions
    if stage == "lr":
        return [make(f, s, lr=lr) for lr in settings.lrs for f in fusions for s in seeds]
    if stage == "schedule":
        return [make(f, s, schedule=sch) for sch in settings.schedules for f in fusions for s in seeds]
    if stage == "patch":
        return [make(f, s, patch=shape) for shape in settings.shapes() for f in fusions for s in seeds]
    if stage == "selection_start":
        return [make(f, s, start=start) for start in settings.selection_starts
                for f in settings.selection_fusions for s in seeds]
    raise ValueError(f"unknown recipe stage {stage!r}; choose from {', '.join(STAGES)}")


def factor_column(stage: str) -> str:
    """The table column a stage varies (``patch`` varies the ``shape`` = ``"<side>x<batch>"``)."""
    return "shape" if stage == "patch" else stage


def final_rows(table):
    """The rows at each run's full budget (its largest milestone)."""
    if table.empty:
        return table
    last = table.groupby("run")["step"].transform("max")
    return table[table["step"] == last]


def choose(table, stage: str):
    """``(best value, means)`` of ``stage``'s rows in ``table`` at the full budget.

    The mean weighs every mechanism equally: validation PSNR is averaged over tasks within each
    (value, mechanism, seed), then over seeds, then over mechanisms. Values not measured for every
    mechanism of the stage are not eligible (they would be compared on another mix of mechanisms).
    ``means`` has one row per value: ``value``, ``mean_psnr``, ``psnr_<fusion>`` and ``seeds``.
    """
    import pandas as pd

    rows = final_rows(table[table["stage"] == stage].copy())
    if rows.empty:
        raise ValueError(f"no rows of stage {stage!r} to choose from")
    rows["shape"] = rows["patch"].astype(int).astype(str) + "x" + rows["batch"].astype(int).astype(str)
    column = factor_column(stage)
    per_seed = rows.groupby([column, "fusion", "seed"], sort=False)["psnr"].mean().reset_index()
    per_fusion = per_seed.groupby([column, "fusion"], sort=False).agg(
        psnr=("psnr", "mean"), seeds=("seed", "nunique")).reset_index()
    fusions = list(dict.fromkeys(per_fusion["fusion"]))
    wide = per_fusion.pivot(index=column, columns="fusion", values="psnr").reindex(columns=fusions)
    means = pd.DataFrame({"value": wide.index, "mean_psnr": wide.mean(axis=1, skipna=False).to_numpy()})
    for fusion in fusions:
        means[f"psnr_{fusion}"] = wide[fusion].to_numpy()
    means["seeds"] = per_fusion.groupby(column, sort=False)["seeds"].min().reindex(wide.index).to_numpy()
    eligible = means.dropna(subset=["mean_psnr"])
    if eligible.empty:
        raise ValueError(f"stage {stage!r}: no value was measured for every mechanism {fusions}")
    best = eligible.loc[eligible["mean_psnr"].idxmax(), "value"]
    return best, means.reset_index(drop=True)


def chosen_rows(table, choice: Choice):
    """The rows of the chosen recipe, one per (mechanism, seed, milestone, task), whichever stage
    trained it (the same model measured in two stages is counted once)."""
    if table.empty:
        return table
    hit = ((table["lr"].astype(float) - choice.lr).abs() <= 1e-12 * max(1.0, choice.lr)) \
        & (table["schedule"] == choice.schedule) & (table["patch"].astype(int) == choice.patch[0]) \
        & (table["batch"].astype(int) == choice.patch[1]) \
        & table["selection_start"].isin(["", choice.selection_start])
    return table[hit].drop_duplicates(["fusion", "seed", "step", "task"])


def _apply(choice: Choice, stage: str, value: Any) -> None:
    if stage == "patch":
        side, batch = (int(v) for v in str(value).split("x"))
        choice.patch = (side, batch)
    elif stage == "lr":
        choice.lr = float(value)
    else:
        setattr(choice, stage, str(value))


# --------------------------------------------------------------------------------------------------
# Training and evaluating one trial (in a worker process)


def _milestone_run(cfg, run_dir: Path, step: int):
    """A ``csnet.store.Run`` with the weights kept at ``step``, and its CPU seconds of training; None
    when the run has no weights for ``step`` (a run the store held before, trained without milestones:
    its final weights stand for the last step when its metrics record the CPU seconds)."""
    import json

    from csnet.store import Run
    from csnet.train import FINAL_WEIGHTS, METRICS_FILE, build_networks, load_verified, milestone_path

    path = milestone_path(run_dir, step)
    if path.exists():
        state = load_verified(path)
        cpu_seconds = float(state["cpu_elapsed"])
    else:
        metrics = run_dir / METRICS_FILE
        recorded = json.loads(metrics.read_text()).get("train_cpu_seconds") if metrics.exists() else None
        if step != cfg.steps or recorded is None:
            warnings.warn(f"run {run_dir.name} has no weights kept at step {step} (trained before "
                          "milestones were kept?); that milestone is left out", stacklevel=2)
            return None
        state, cpu_seconds = load_verified(run_dir / FINAL_WEIGHTS), float(recorded)
    model, image_encoder = build_networks(cfg)
    model.load_state_dict(state["model"])
    image_encoder.load_state_dict(state["image_encoder"])
    run = Run(dir=run_dir, config=cfg, model=model.eval(), image_encoder=image_encoder.eval(),
              labels=list(state["labels"]), anchors=state["anchors"].float(), text_encoder_info={})
    return run, cpu_seconds


def run_trial(trial: Trial, settings: Settings, load: Mapping[str, Any] | None = None,
              done_steps: Iterable[int] = ()) -> list[dict[str, Any]]:
    """Train ``trial`` through the store (keeping its milestone weights) and evaluate every milestone
    not in ``done_steps`` on the validation split: one row per milestone × task (``COLUMNS``)."""
    from csnet.evaluate import evaluate
    from csnet.store import get_or_train, run_path

    cfg = run_config_of(trial, settings)
    milestones = settings.milestones()
    get_or_train(cfg, progress=False, milestones=milestones)
    run_dir = run_path(cfg)
    rows = []
    for step in milestones:
        if step in set(done_steps):
            continue
        loaded = _milestone_run(cfg, run_dir, step)
        if loaded is None:
            continue
        run, cpu_seconds = loaded
        table = evaluate(run, list(cfg.tasks), prompt_source="text", split=settings.split,
                         max_images=settings.max_images or settings.profile_object().test_max_images,
                         max_side=settings.max_side or settings.profile_object().test_max_side)
        for task, group in table.groupby("task", sort=False):
            rows.append({**dataclasses.asdict(trial), "step": step, "cpu_seconds": cpu_seconds, "task": task,
                         "psnr": float(group["psnr"].mean()), "ssim": float(group["ssim"].mean()),
                         "run": run.id, "images": len(group), **(load or {})})
    return rows


def _worker(args: tuple) -> list[dict[str, Any]]:
    import torch

    torch.set_num_threads(1)
    return run_trial(*args)


# --------------------------------------------------------------------------------------------------
# The sweep


def read_table(path: str | os.PathLike):
    """The recipe CSV at ``path`` (empty, with ``COLUMNS``, when there is none yet)."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=list(COLUMNS))
    table = pd.read_csv(path, dtype={"selection_start": str}, keep_default_na=False, na_values=[""])
    table["selection_start"] = table["selection_start"].fillna("")
    return table


def _append(path: Path, table, rows: list[dict[str, Any]]):
    import pandas as pd

    from csnet.io import atomic_write

    new = pd.DataFrame(rows).reindex(columns=list(COLUMNS))
    table = new if table.empty else pd.concat([table, new], ignore_index=True)
    with atomic_write(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
    return read_table(path)


def _done_steps(table, trial: Trial, tasks: int) -> set[int]:
    """Milestones of ``trial`` whose every task already has a row."""
    if table.empty:
        return set()
    mask = None
    for name, value in zip(TRIAL_KEY, trial.key()):
        column = table[name]
        hit = (column.astype(float) - float(value)).abs() <= 1e-12 * max(1.0, abs(float(value))) \
            if name == "lr" else column.astype(str) == str(value)
        mask = hit if mask is None else mask & hit
    counts = table[mask].groupby("step")["task"].nunique()
    return {int(step) for step, count in counts.items() if count >= tasks}


def run_sweep(settings: Settings, path: str | os.PathLike, jobs: int = 1, allow_load: bool = False,
              progress: Callable[[str], None] | None = None):
    """Run the stages of ``settings`` in order, appending rows to the CSV at ``path`` as they come;
    return ``(table, summary, choice)``. Trials already in the CSV are skipped, models already in the store are
    not retrained. Up to ``jobs`` models train at once, each in its own process with one torch thread.
    Each trial's rows carry the load average at its start (``csnet.bench.check_load`` with ``jobs``
    cores in use; refused when it shows other work, unless ``allow_load``)."""
    from csnet.bench import check_load

    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    say = progress or (lambda message: None)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = read_table(path)
    tasks = len(settings.profile_object().tasks)
    choice = initial_choice(settings)
    summaries = []
    with contextlib.ExitStack() as stack:
        pool = None  # one pool of workers for the whole sweep, started when first needed
        for stage in settings.stages:
            trials = stage_trials(stage, settings, choice)
            todo = [(trial, _done_steps(table, trial, tasks)) for trial in trials]
            todo = [(trial, done) for trial, done in todo if len(done) < len(settings.milestones())]
            say(f"stage {stage}: {len(trials)} models, {len(trials) - len(todo)} already in {path.name}")
            if todo:
                check_load(jobs, allow_load)
            if jobs == 1:
                for trial, done in todo:
                    load = check_load(jobs, allow_load)
                    table = _append(path, table, run_trial(trial, settings, load, done))
                    say(f"  {_describe(trial)} done")
            elif todo:
                if pool is None:
                    pool = stack.enter_context(concurrent.futures.ProcessPoolExecutor(
                        max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                        initializer=_share_cores))
                pending: dict = {}
                queue = list(todo)
                while queue or pending:
                    while queue and len(pending) < jobs:
                        trial, done = queue.pop(0)
                        load = check_load(jobs, allow_load)
                        pending[pool.submit(_worker, (trial, settings, load, done))] = trial
                    finished, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
                    for future in finished:
                        trial = pending.pop(future)
                        table = _append(path, table, future.result())
                        say(f"  {_describe(trial)} done")
            _summarise_stage(table, stage, choice, summaries, say)
    import pandas as pd

    summary = pd.DataFrame(summaries)
    if not summary.empty:
        psnr_columns = sorted(c for c in summary.columns if c.startswith("psnr_"))
        summary["fusions"] = summary[psnr_columns].notna().sum(axis=1)
        summary = summary.reindex(columns=[*SUMMARY_COLUMNS, *psnr_columns])
    return table, summary, choice


def _summarise_stage(table, stage: str, choice: Choice, summaries: list, say: Callable[[str], None]) -> None:
    """Choose ``stage``'s value (unless given), update ``choice``, and add its means to ``summaries``."""
    if not (table["stage"] == stage).any():
        return
    given = choice.given.get(stage, False)
    best, means = choose(table, stage)
    if not given:
        _apply(choice, stage, best)
    current = _current(choice, stage)
    for _, row in means.iterrows():
        summaries.append({"stage": stage, "factor": factor_column(stage), "value": row["value"],
                          "mean_psnr": row["mean_psnr"], "chosen": str(row["value"]) == str(current),
                          "given": given, "seeds": row["seeds"],
                          **{k: v for k, v in row.items() if k.startswith("psnr_")}})
    say(f"stage {stage}: {'given' if given else 'chosen'} {current} "
        f"(mean validation PSNR over mechanisms {_mean_of(means, current):.2f} dB)")


def _current(choice: Choice, stage: str) -> Any:
    if stage == "patch":
        return f"{choice.patch[0]}x{choice.patch[1]}"
    return getattr(choice, stage)


def _mean_of(means, value) -> float:
    hit = means[means["value"].astype(str) == str(value)]
    return float(hit["mean_psnr"].iloc[0]) if len(hit) else math.nan


def _describe(trial: Trial) -> str:
    start = f" start={trial.selection_start}" if trial.selection_start else ""
    return (f"{trial.fusion} seed {trial.seed} lr {trial.lr:g} {trial.schedule} "
            f"{trial.patch}²×{trial.batch}{start}")


def _share_cores() -> None:
    import torch

    os.environ["CSNET_TORCH_THREADS"] = "1"
    torch.set_num_threads(1)


# --------------------------------------------------------------------------------------------------
# The plan


def measure_seconds_per_step(settings: Settings, fusions: Sequence[str], steps: int = 3) -> dict[str, float]:
    """Process CPU seconds per training step (data synthesis included; 1 torch thread), median of
    ``steps`` steps after one untimed step, of each mechanism at the profile's patch and batch
    (``csnet.train.seconds_per_step``)."""
    from csnet.train import seconds_per_step

    choice = initial_choice(settings)
    out = {}
    for fusion in fusions:
        trial = Trial("plan", fusion, 0, choice.lr, choice.schedule, *choice.patch, choice.selection_start)
        out[fusion] = seconds_per_step(run_config_of(trial, settings), steps)
    return out


def plan(settings: Settings, seconds_per_step: Mapping[str, float], jobs: int = 1, table=None):
    """One row per stage: models to train (new ones only: a model an earlier stage trained, or that
    the store holds finished, is counted once), steps, CPU seconds per step, total minutes.

    Later stages depend on earlier choices: the plan takes them from ``table`` (the recipe CSV so far)
    where it has the stage's rows, else the given value, else the profile's when it is in the grid, else
    the grid's middle (which models coincide does not depend on the value chosen within the grid)."""
    import pandas as pd

    from csnet.profiles import config_hash
    from csnet.store import DONE_FILE, run_path

    choice = initial_choice(settings)
    if not choice.given["lr"] and not any(math.isclose(choice.lr, lr) for lr in settings.lrs):
        choice.lr = sorted(settings.lrs)[len(settings.lrs) // 2]
    measured_pixels = choice.patch[0] ** 2 * choice.patch[1]  # the shape measure_seconds_per_step times
    seen: set[str] = set()
    steps = settings.total_steps()
    rows = []
    for stage in settings.stages:
        trials = stage_trials(stage, settings, choice)
        new = []
        stored = 0
        for trial in trials:
            cfg = run_config_of(trial, settings)
            digest = config_hash(cfg)
            if digest in seen:
                continue
            seen.add(digest)
            if (run_path(cfg) / DONE_FILE).exists():
                stored += 1
                continue
            new.append(trial)
        cpu_seconds = sum(steps * seconds_per_step[t.fusion] * t.patch**2 * t.batch / measured_pixels
                          for t in new)
        rows.append({"stage": stage, "models": len(trials), "new_models": len(new), "in_store": stored,
                     "steps": steps, "cpu_s_per_step": statistics.mean(seconds_per_step[t.fusion] for t in trials),
                     "cpu_minutes": cpu_seconds / 60, "wall_minutes": cpu_seconds / 60 / jobs})
        if table is not None and not choice.given.get(stage) and (table["stage"] == stage).any():
            _apply(choice, stage, choose(table, stage)[0])
    stages = pd.DataFrame(rows)
    total = {"stage": "total", "models": stages["models"].sum(), "new_models": stages["new_models"].sum(),
             "in_store": stages["in_store"].sum(), "steps": steps,
             "cpu_s_per_step": statistics.mean(seconds_per_step.values()),
             "cpu_minutes": stages["cpu_minutes"].sum(), "wall_minutes": stages["wall_minutes"].sum()}
    return pd.concat([stages, pd.DataFrame([total])], ignore_index=True)


def fusions_of(settings: Settings) -> list[str]:
    """Every mechanism the sweep trains, in first-use order."""
    names: list[str] = []
    for stage in settings.stages:
        names += list(settings.selection_fusions if stage == "selection_start" else settings.lr_fusions)
    return list(dict.fromkeys(names))
