"""The compute plan of a suite run (``csnet suite plan``, ``csnet suite run --dry-run``): before anything
trains, which models each notebook asks the run store for, which of them an earlier notebook of the run
or the store already has, how many optimiser steps remain, and how long those take at the measured CPU
seconds per step.

Each notebook's models come from the very functions the notebook calls (``table1.run_configs``,
``sensitivity.run_configs``, ``fusion_comparison.run_configs`` / ``single_task_configs`` /
``sweep_configs``, ``recognition_runs.run_configs``, ``budget.plan`` with ``budget.budget_config``),
fed with the notebook's own defaults (its ``parameters`` cell) and the overrides of the command line,
so the plan and the notebooks cannot drift apart. Remaining steps follow ``csnet.store.get_or_train``:
a finished run trains nothing, a partial one resumes from its newest checkpoint, a new wsd run whose
trunk keeps (or will keep) its state at the branch step trains only its decay.

Training only: evaluation, attribution probes, cost timings and notebook 04's recognition-only encoders
are not timed (the last are counted in a note). Seconds per step are process CPU seconds with one torch
thread (``csnet.train.seconds_per_step``), measured once per distinct architecture (mechanism, model
and image-encoder settings, patch, batch) on this machine, now: the load average beside them says how
busy the machine was while they were taken.
"""
from __future__ import annotations

import ast
import dataclasses
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, NamedTuple

import pandas as pd

COLUMNS = ("notebook", "models", "new_models", "shared", "in_store", "steps_to_train", "cpu_s_per_step",
           "cpu_minutes", "wall_minutes")
TOTAL = "total"
FOOTER = ("Training only: evaluation, attribution, cost timings and recognition-only encoders are not in the "
          "minutes. cpu_s_per_step: process CPU seconds per optimiser step, 1 torch thread, measured here; "
          "wall_minutes = cpu_minutes / jobs (parallel notebooks, one core each), or / the notebook's own "
          "training processes when it has more.")


# ------------------------------------------------------------------------------------ parameters
def notebook_defaults(path: str | os.PathLike) -> dict[str, Any]:
    """A notebook's parameter defaults as Python values (its ``parameters`` cell, read by
    ``csnet.suite.notebook_parameters``). A default that is not a literal raises ``ValueError``."""
    from csnet.suite import notebook_parameters

    values = {}
    for name, declared in notebook_parameters(path).items():
        try:
            values[name] = ast.literal_eval(declared["default"]) if declared["default"] is not None else None
        except (ValueError, SyntaxError) as err:
            raise ValueError(f"{Path(path).name}: the default of {name!r} ({declared['default']}) is not a "
                             "literal; the plan cannot read it") from err
    return values


# ------------------------------------------------------------------------- each notebook's models
class Work(NamedTuple):
    """What one notebook trains."""

    configs: list  # the RunConfigs it asks the store for, in its order (repeats allowed)
    notes: list[str] = []  # work outside the store, or how it trains
    workers: int = 1  # processes it trains in at once by itself


# A planner takes (profile, the notebook's resolved parameters) and returns its Work.

def _table1(prof, p: Mapping[str, Any]) -> Work:
    from analysis import design, table1

    seeds = design.study_seeds(prof, p["seeds"])
    headline = design.headline_seeds(prof, p["headline_seeds"], base=seeds)
    configs = table1.run_configs(prof, seeds, headline, p["tasks"], p["text_encoder"], p["kappa"], p["keep_ratio"],
                                 p["mask_noise"])
    return Work(list(configs.values()))


def _sensitivity(prof, p: Mapping[str, Any]) -> Work:
    from analysis import design, sensitivity

    seeds = design.study_seeds(prof, p["seeds"])
    configs = sensitivity.run_configs(prof, seeds, p["mechanisms"], p["tasks"], p["text_encoder"], p["kappa"],
                                      p["keep_ratio"])
    return Work(list(configs.values()))


def _fusion_comparison(prof, p: Mapping[str, Any]) -> Work:
    from analysis import design
    from analysis import fusion_comparison as fc

    seeds = design.study_seeds(prof, p["seeds"])
    headline = design.headline_seeds(prof, p["headline_seeds"], base=seeds)
    sweep_seeds = list(p["sweep_seeds"] if p["sweep_seeds"] is not None else seeds)
    tasks = tuple(p["tasks"] if p["tasks"] is not None else prof.tasks)
    common = dict(tasks=tasks, text_encoder=p["text_encoder"] or prof.text_encoder)
    configs = list(fc.run_configs(prof, seeds, headline, fc.check_mechanisms(p["mechanisms"]), kappa=p["kappa"],
                                  omega=p["keep_ratio"], **common).values())
    if p["single_task"]:
        configs += fc.single_task_configs(prof, sweep_seeds, kappa=p["kappa"], omega=p["keep_ratio"], **common).values()
    points = fc.sweep_points(p["omega_sweep"], p["kappa_sweep"], p["estimators"], kappa=p["kappa"], omega=p["keep_ratio"])
    configs += fc.sweep_configs(prof, sweep_seeds, points, **common).values()
    return Work(configs)


def _recognition(prof, p: Mapping[str, Any]) -> Work:
    from analysis import design, recognition, recognition_runs

    seeds = design.headline_seeds(prof, p["seeds"])
    configs = list(recognition_runs.run_configs(prof, seeds, p["kappa"], p["keep_ratio"]).values())
    specs, growth = recognition_runs.encoder_specs(p["text_encoders"], p["clip_weights"], p["growth_text_encoders"])
    sets = recognition.task_sets(p["three_task"], p["five_task"], p["composites"], p["held_out"])
    encoders = recognition_runs.recogniser_configs(
        prof, seeds, sets, specs, growth, steps=p["recogniser_steps"] or prof.steps,
        patch_size=p["patch_size"] or prof.patch_size, temperature=p["temperature"],
        data_source=recognition.synthesis_source(prof.data_source))
    count = sum(len(by_spec) for by_spec in encoders.values())
    steps = sum(c["steps"] for by_spec in encoders.values() for c in by_spec.values())
    note = (f"also {count} recognition-only image encoders, {steps} optimiser steps in all (an image encoder "
            f"alone each; their cache is not checked and their time is not in the minutes)")
    return Work(configs, [note])


def _budget(prof, p: Mapping[str, Any]) -> Work:
    from analysis import budget, design

    seeds = design.study_seeds(prof, p["seeds"])
    mechanisms = budget.check_mechanisms(p["mechanisms"])
    budgets = budget.check_budgets(p["budgets"] or budget.default_budgets(prof.steps, prof.warmup_steps,
                                                                         prof.decay_fraction),
                                   prof.warmup_steps, prof.decay_fraction)
    rows = budget.plan(prof, mechanisms, seeds, budgets)  # trunk and branches of each (mechanism, seed)
    configs = [budget.budget_config(prof, r.mechanism, r.seed, r.budget, budgets=budgets) for r in rows.itertuples()]
    chains = len(mechanisms) * len(seeds)
    workers = min(p["train_jobs"] or os.cpu_count() or 1, chains)  # the notebook's own worker processes
    return Work(configs, [f"trains its {chains} (mechanism, seed) chains in {workers} process(es) at once "
                          "(train_jobs): its wall minutes are divided by that"], workers)


def _nothing(prof, p: Mapping[str, Any]) -> Work:
    return Work([])


PLANNERS: dict[str, Callable[[Any, Mapping[str, Any]], Work]] = {
    "00_data_tour": _nothing,
    "01_table1_channel_misallocation": _table1,
    "02_channel_sensitivity": _sensitivity,
    "03_fusion_comparison": _fusion_comparison,
    "04_degradation_recognition": _recognition,
    "05_training_budget": _budget,
}  # notebook stem → what it trains


def notebook_work(path: str | os.PathLike, profile: str, params: Mapping[str, Any] | None = None) -> Work:
    """What the notebook at ``path`` trains at ``profile`` with its defaults and ``params``: the
    ``RunConfig``\\ s it asks the store for, in its order, notes on work outside the store, and how many
    processes it trains in. A notebook unknown to the plan raises ``ValueError`` naming the known ones;
    ``reuse_tables=True`` trains nothing."""
    from csnet.profiles import get_profile

    stem = Path(path).stem
    if stem not in PLANNERS:
        raise ValueError(f"the compute plan does not know notebook {stem!r}; it knows {', '.join(PLANNERS)} "
                         "(add a planner to analysis.compute_plan.PLANNERS)")
    values = {**notebook_defaults(path), **dict(params or {}), "profile": profile}
    if values.get("reuse_tables"):
        return Work([], ["reuse_tables=True: re-analyses its committed tables and trains nothing"])
    return PLANNERS[stem](get_profile(profile), values)


# ----------------------------------------------------------------------------------- the store
def remaining_steps(cfg, trunks: Iterable[tuple[str, int]] = (), root: str | os.PathLike | None = None
                    ) -> tuple[str, int]:
    """(state, optimiser steps ``get_or_train(cfg)`` would still train): ``"in_store"`` and 0 when the run
    is finished; ``"partial"`` and the steps after its newest checkpoint; ``"branch"`` and its decay steps
    for a new wsd run whose trunk keeps its state at this run's branch step, in the store or among
    ``trunks`` ((branch key, step) of trunks that will train before it); else ``"new"`` and all its steps.
    ``root``: the store (default ``csnet.paths.runs_root()``; read only)."""
    from csnet import paths
    from csnet.profiles import branch_step, decay_steps, run_id
    from csnet.store import DONE_FILE, find_branch_point
    from csnet.train import branch_key, list_checkpoints

    root = Path(root) if root is not None else paths.runs_root()
    run_dir = root / run_id(cfg)
    if (run_dir / DONE_FILE).exists():
        return "in_store", 0
    checkpoints = list_checkpoints(run_dir)
    if checkpoints:
        return "partial", max(cfg.steps - checkpoints[0][0], 0)
    if cfg.schedule == "wsd":
        point = (branch_key(cfg), branch_step(cfg.steps, cfg.decay_fraction))
        if point in set(trunks) or (root.is_dir() and find_branch_point(cfg, root) is not None):
            return "branch", decay_steps(cfg.steps, cfg.decay_fraction)
    return "new", int(cfg.steps)


def architecture(cfg) -> str:
    """What a training step's cost depends on, in words: the mechanism, the model settings that differ
    from ``ModelConfig``'s defaults (seed aside), the image encoder's settings, patch and batch. Two
    configs with the same text train the same network at the same size."""
    from csnet.models import ModelConfig
    from csnet.profiles import image_encoder_kwargs, model_config

    defaults = ModelConfig(fusion=cfg.fusion).to_dict()
    model = {k: v for k, v in model_config(cfg).to_dict().items()
             if k not in ("seed", "fusion") and v != defaults.get(k)}
    settings = ", ".join(f"{k}={_compact(v)}" for k, v in model.items())
    encoder_defaults = image_encoder_kwargs(dataclasses.replace(cfg, image_encoder={}))
    encoder = ", ".join(f"{k}={_compact(v)}" for k, v in sorted(image_encoder_kwargs(cfg).items())
                        if v != encoder_defaults.get(k)) or "defaults"
    return f"{cfg.fusion} ({settings}; image encoder {encoder}) {cfg.patch_size}²×{cfg.batch_size}"


def _compact(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "/".join(str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


# ------------------------------------------------------------------------------------- the plan
def suite_plan(profile: str, only: Iterable[str] | str | None = None, params: Mapping[str, Any] | None = None,
               jobs: int = 1, seconds_per_step: float | Callable[[Any], float] | None = None, *,
               notebooks_dir: str | os.PathLike | None = None, root: str | os.PathLike | None = None,
               measure_steps: int = 3) -> pd.DataFrame:
    """One row per selected notebook (suite order) and a ``total`` row: ``models`` it asks the store for,
    ``new_models`` (neither finished in the store nor asked for by an earlier notebook of the plan; partial
    runs included), ``shared`` (asked for by an earlier notebook), ``in_store`` (finished),
    ``steps_to_train`` (remaining steps of its new models), ``cpu_s_per_step`` (their step-weighted mean),
    ``cpu_minutes`` and ``wall_minutes`` (cpu_minutes / ``jobs``, the notebooks run at once, or / the
    processes the notebook trains in by itself when more: notebook 05's ``train_jobs``). The total's
    ``models`` counts distinct runs, its ``shared`` the requests an earlier notebook's run serves.

    ``params``: notebook parameters, as ``csnet suite run -p`` passes them (every selected notebook must
    declare each). ``seconds_per_step``: a number for every model, a function of the ``RunConfig``, or
    None to measure each architecture with work left (``csnet.train.seconds_per_step``, ``measure_steps``
    timed steps). ``root``: the run store (default ``CSNET_RUNS`` / the user's cache; only read).

    ``.attrs`` holds ``measured`` (one entry per architecture timed or given), ``load`` (``check_load``
    before and after measuring; None when nothing was measured), ``notes`` (per notebook) and ``store``;
    :func:`format_plan` prints it all.
    """
    from csnet import paths
    from csnet.bench.timing import check_load
    from csnet.profiles import run_id
    from csnet.store import DONE_FILE
    from csnet.suite import checked_selection, validate_parameters
    from csnet.train import branch_key

    selected, params = checked_selection(profile, only, jobs, params, notebooks_dir)
    for nb in selected:
        validate_parameters(nb, params)
    root = Path(root) if root is not None else paths.runs_root()

    requested = [(nb.stem, notebook_work(nb, profile, params)) for nb in selected]
    state: dict[str, tuple[str, int]] = {}
    trunks: set[tuple[str, int]] = set()
    first_configs = {}
    for _, work in requested:
        for cfg in work.configs:
            first_configs.setdefault(run_id(cfg), cfg)
    for rid, cfg in first_configs.items():  # trunks this plan trains, with the keep_steps of their first request
        if not (root / rid / DONE_FILE).exists() and cfg.keep_steps:
            trunks.update((branch_key(cfg), step) for step in cfg.keep_steps)
    for rid, cfg in first_configs.items():
        state[rid] = remaining_steps(cfg, trunks, root)

    timer = _timer(seconds_per_step, measure_steps)
    load_before = check_load(1, allow=True) if seconds_per_step is None else None
    rows, notes, asked_before = [], {}, set()
    for stem, work in requested:
        ids = list(dict.fromkeys(run_id(cfg) for cfg in work.configs))
        shared = [rid for rid in ids if rid in asked_before]
        in_store = [rid for rid in ids if rid not in asked_before and state[rid][0] == "in_store"]
        new = [rid for rid in ids if rid not in asked_before and state[rid][0] != "in_store"]
        steps = sum(state[rid][1] for rid in new)
        cpu_s = sum(state[rid][1] * timer(first_configs[rid]) for rid in new if state[rid][1])
        rows.append({"notebook": stem, "models": len(ids), "new_models": len(new), "shared": len(shared),
                     "in_store": len(in_store), "steps_to_train": steps,
                     "cpu_s_per_step": cpu_s / steps if steps else math.nan,
                     "cpu_minutes": cpu_s / 60, "wall_minutes": cpu_s / 60 / max(int(jobs), work.workers)})
        partial = sum(state[rid][0] == "partial" for rid in new)
        branches = sum(state[rid][0] == "branch" for rid in new)
        notes[stem] = list(work.notes) + ([f"{partial} of its new models resume from a checkpoint"] if partial else []) \
            + ([f"{branches} of its new models branch their decay off a trunk"] if branches else [])
        asked_before.update(ids)
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    steps, cpu_minutes = int(table["steps_to_train"].sum()), float(table["cpu_minutes"].sum())
    total = {"notebook": TOTAL, "models": len(asked_before), "new_models": int(table["new_models"].sum()),
             "shared": int(table["shared"].sum()), "in_store": int(table["in_store"].sum()), "steps_to_train": steps,
             "cpu_s_per_step": cpu_minutes * 60 / steps if steps else math.nan, "cpu_minutes": cpu_minutes,
             "wall_minutes": float(table["wall_minutes"].sum())}
    table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    table.attrs = {"profile": profile, "jobs": int(jobs), "store": str(root), "notes": notes,
                   "measured": timer.measured,
                   "load": None if load_before is None else {"before": load_before, "after": check_load(1, allow=True)}}
    return table


class _Timer:
    """Seconds per step by architecture: given, or measured once per architecture and remembered."""

    def __init__(self, given: float | Callable[[Any], float] | None, steps: int):
        self.given, self.steps = given, steps
        self.cache: dict[str, float] = {}
        self.measured: list[dict[str, Any]] = []

    def __call__(self, cfg) -> float:
        key = architecture(cfg)
        if key not in self.cache:
            if self.given is None:
                from csnet.train import seconds_per_step

                value, how = seconds_per_step(cfg, self.steps), f"measured ({self.steps} steps)"
            elif callable(self.given):
                value, how = float(self.given(cfg)), "given"
            else:
                value, how = float(self.given), "given"
            self.cache[key] = value
            self.measured.append({"architecture": key, "seconds_per_step": value, "how": how, "models": 0})
        next(m for m in self.measured if m["architecture"] == key)["models"] += 1
        return self.cache[key]


def _timer(given, steps: int) -> _Timer:
    if given is not None and not callable(given) and not (float(given) > 0):
        raise ValueError(f"seconds_per_step must be a positive number, a function of the RunConfig or None "
                         f"(measure), got {given!r}")
    return _Timer(given, steps)


# ------------------------------------------------------------------------------------- printing
def format_plan(table: pd.DataFrame) -> str:
    """The plan as text: the table, then per notebook its notes, the seconds per step by architecture
    (how they were obtained and the load average around the measurement), the store read, and
    :data:`FOOTER`."""
    shown = table.copy()
    for column in ("cpu_s_per_step",):
        shown[column] = [("—" if not math.isfinite(v) else f"{v:.3g}") for v in shown[column]]
    for column in ("cpu_minutes", "wall_minutes"):
        shown[column] = [f"{v:.1f}" for v in shown[column]]
    attrs = table.attrs
    lines = [f"Compute plan: profile {attrs.get('profile')}, {attrs.get('jobs')} job(s), run store {attrs.get('store')}",
             "", shown.to_markdown(index=False, disable_numparse=True), ""]
    for stem, notes in (attrs.get("notes") or {}).items():
        lines += [f"- {stem}: {note}" for note in notes]
    measured = attrs.get("measured") or []
    if measured:
        load = attrs.get("load")
        when = "" if not load else (f"; 1-min load average {load['before']['load_average']:g} before, "
                                    f"{load['after']['load_average']:g} after, on {os.cpu_count()} cores")
        if load and (load["before"]["load_override"] or load["after"]["load_override"]):
            when += " — other work was running: the seconds are likely too high"
        lines += ["", f"Seconds per step by architecture{when}:"]
        lines += [f"  {m['seconds_per_step']:.3g} s ({m['how']}; {m['models']} model(s) to train): {m['architecture']}"
                  for m in measured]
    lines += ["", FOOTER]
    return "\n".join(lines)
