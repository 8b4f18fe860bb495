"""The study modules' run-config functions give exactly the runs notebooks 01–04 built inline before them.

Each expectation below is the inline code the notebook had (copied, with the notebook's variable names),
run on each notebook's own default parameters: a run id that changed would orphan every trained model.
"""
from __future__ import annotations

import pytest

from analysis import design, recognition, recognition_runs, sensitivity, table1
from analysis import fusion_comparison as fc
from analysis.compute_plan import notebook_defaults
from csnet.profiles import get_profile, run_config, run_id
from csnet.suite import default_notebooks_dir

PROFILES = ["smoke", "cpu"]  # smoke as the tests run; cpu for its ≥ 5 headline seeds


def ids(configs: dict) -> dict:
    return {key: run_id(cfg) for key, cfg in configs.items()}


def defaults(stem: str) -> dict:
    return notebook_defaults(default_notebooks_dir() / f"{stem}.ipynb")


@pytest.mark.parametrize("profile", PROFILES)
def test_table1_run_configs_match_notebook_01_inline(profile):
    p = defaults("01_table1_channel_misallocation")
    prof = get_profile(profile)
    seeds = design.study_seeds(prof, p["seeds"])
    headline = design.headline_seeds(prof, p["headline_seeds"], base=seeds)
    train_tasks = tuple(p["tasks"] if p["tasks"] is not None else prof.tasks)
    encoder = p["text_encoder"] or prof.text_encoder
    model_overrides = {"kappa": p["kappa"], "omega": p["keep_ratio"]}

    def configure(fusion, seed, **extra):
        overrides = {"model": model_overrides} if fusion != "none" else {}
        return run_config(prof, fusion, seed, tasks=train_tasks, text_encoder=encoder, **overrides, **extra)

    old = {}
    for seed in dict.fromkeys(headline + seeds):
        old[("hard_select", seed)] = configure("hard_select", seed)
        old[("none", seed)] = configure("none", seed)
        if seed in seeds:
            old[("hard_select+mask_noise", seed)] = configure("hard_select", seed, mask_noise=p["mask_noise"])

    new = table1.run_configs(prof, seeds, headline, train_tasks, encoder, p["kappa"], p["keep_ratio"], p["mask_noise"])
    assert list(ids(new).items()) == list(ids(old).items())  # same runs, same training order
    assert ids(table1.run_configs(prof, seeds, headline, None, None, p["kappa"], p["keep_ratio"],
                                  p["mask_noise"])) == ids(old)  # None: the profile's tasks and encoder
    if profile == "cpu":
        assert len(headline) >= 5 and len(new) == 2 * len(headline) + len(seeds)


@pytest.mark.parametrize("profile", PROFILES)
def test_sensitivity_run_configs_match_notebook_02_inline(profile):
    p = defaults("02_channel_sensitivity")
    prof = get_profile(profile)
    seeds = design.study_seeds(prof, p["seeds"])
    train_tasks = tuple(p["tasks"] if p["tasks"] is not None else prof.tasks)
    encoder = p["text_encoder"] or prof.text_encoder
    model_overrides = {"kappa": p["kappa"], "omega": p["keep_ratio"]}

    def configure(fusion, seed):
        overrides = {"model": model_overrides} if fusion != "none" else {}
        return run_config(prof, fusion, seed, tasks=train_tasks, text_encoder=encoder, **overrides)

    old = {(mechanism, seed): configure(mechanism, seed) for seed in seeds for mechanism in p["mechanisms"]}
    new = sensitivity.run_configs(prof, seeds, p["mechanisms"], train_tasks, encoder, p["kappa"], p["keep_ratio"])
    assert list(ids(new).items()) == list(ids(old).items())


@pytest.mark.parametrize("profile", PROFILES)
def test_fusion_comparison_configs_match_notebook_03_inline(profile):
    p = defaults("03_fusion_comparison")
    prof = get_profile(profile)
    seeds = design.study_seeds(prof, p["seeds"])
    headline = design.headline_seeds(prof, p["headline_seeds"], base=seeds)
    sweep_seeds = list(p["sweep_seeds"] if p["sweep_seeds"] is not None else seeds)
    train_tasks = tuple(p["tasks"] if p["tasks"] is not None else prof.tasks)
    mechanisms = fc.check_mechanisms(p["mechanisms"])
    encoder = p["text_encoder"] or prof.text_encoder
    groups = fc.single_task_groups(train_tasks)
    points = fc.sweep_points(p["omega_sweep"], p["kappa_sweep"], p["estimators"], kappa=p["kappa"], omega=p["keep_ratio"])

    def configure(fusion, seed, tasks=train_tasks, kappa=p["kappa"], omega=p["keep_ratio"], estimator=None):
        return fc.configure(prof, fusion, seed, tasks=tasks, text_encoder=encoder, kappa=kappa, omega=omega,
                            estimator=estimator)

    headline_mechanisms = {fc.REFERENCE, *fc.HEADLINE}
    old_runs = {(m, s): configure(m, s) for s in dict.fromkeys(seeds + headline) for m in mechanisms
                if s in seeds or m in headline_mechanisms}
    old_single = {(f"single-task {label}", s): configure("none", s, tasks=group)
                  for s in sweep_seeds for label, group in groups.items()}
    variants = points.drop_duplicates("variant").set_index("variant")
    old_sweep = {(variant, s): configure("hard_select", s, kappa=row["kappa"], omega=row["omega"],
                                         estimator=row["estimator"])
                 for s in sweep_seeds for variant, row in variants.iterrows()}

    common = dict(tasks=train_tasks, text_encoder=encoder)
    new_runs = fc.run_configs(prof, seeds, headline, mechanisms, kappa=p["kappa"], omega=p["keep_ratio"], **common)
    new_single = fc.single_task_configs(prof, sweep_seeds, kappa=p["kappa"], omega=p["keep_ratio"], **common)
    new_sweep = fc.sweep_configs(prof, sweep_seeds, points, **common)
    assert list(ids(new_runs).items()) == list(ids(old_runs).items())
    assert list(ids(new_single).items()) == list(ids(old_single).items())
    assert list(ids(new_sweep).items()) == list(ids(old_sweep).items())
    # the sweep's default point is the main comparison's hard_select run (shared, not trained twice)
    default = points.loc[points["default"], "variant"].iloc[0]
    assert run_id(new_sweep[(default, sweep_seeds[0])]) == run_id(new_runs[("hard_select", sweep_seeds[0])])


@pytest.mark.parametrize("profile", PROFILES)
def test_recognition_runs_match_notebook_04_inline(profile):
    p = defaults("04_degradation_recognition")
    prof = get_profile(profile)
    seeds = design.headline_seeds(prof, p["seeds"])
    model_overrides = {"model": {"kappa": p["kappa"], "omega": p["keep_ratio"]}}

    def configure(fusion, seed):
        return run_config(prof, fusion, seed, tasks=tuple(prof.tasks), text_encoder=prof.text_encoder, **model_overrides)

    new = recognition_runs.run_configs(prof, seeds, p["kappa"], p["keep_ratio"])
    assert [run_id(new[("implicit_prompt", s)]) for s in seeds] == [run_id(configure("implicit_prompt", s)) for s in seeds]
    assert [run_id(new[("hard_select", s)]) for s in seeds] == [run_id(configure("hard_select", s)) for s in seeds]
    assert len(new) == 2 * len(seeds)

    # the recognition-only encoders: the notebook's former inline configs, key for key
    clip_weights, growth_text_encoders = "/models/clip.pt", None  # with a weights file: one more spec
    encoder_specs = list(p["text_encoders"]) + ([f"open_clip:ViT-B-32:{clip_weights}"] if clip_weights else [])
    growth_specs = list(growth_text_encoders if growth_text_encoders is not None else encoder_specs[:1])
    assert recognition_runs.encoder_specs(p["text_encoders"], clip_weights, growth_text_encoders) == (encoder_specs,
                                                                                                      growth_specs)
    sets = recognition.task_sets(p["three_task"], p["five_task"], p["composites"], p["held_out"])
    largest = list(sets)[-1]
    steps, patch = p["recogniser_steps"] or prof.steps, p["patch_size"] or prof.patch_size
    train_source = recognition.synthesis_source(prof.data_source)
    plan = recognition_runs.recogniser_configs(prof, seeds, sets, encoder_specs, growth_specs, steps=steps,
                                               patch_size=patch, temperature=p["temperature"], data_source=train_source)
    for seed in seeds:
        for set_name, tasks in sets.items():
            configs = {spec: recognition.recogniser_config(spec, tasks, steps=steps, batch_size=prof.batch_size,
                                                           patch_size=patch, lr=prof.lr, temperature=p["temperature"],
                                                           seed=seed, data_source=train_source)
                       for spec in (encoder_specs if set_name == largest else growth_specs)}
            assert plan[(seed, set_name)] == configs
    assert len(plan) == len(seeds) * len(sets)
