"""Profiles and run configs: valid, hashed stably, hash sensitive only to what changes the weights."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from csnet.profiles import (
    PROFILE_NAMES,
    RunConfig,
    config_hash,
    get_profile,
    hashed_fields,
    run_config,
    run_id,
)

QUICK_LR = 4e-3  # results/bench/recipe_quick_summary.csv


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_profiles_are_valid(name):
    from csnet.models import ModelConfig

    profile = get_profile(name)
    assert profile.name == name
    from csnet.prompts import ImagePromptEncoder

    ModelConfig(**profile.model)  # the model kwargs build a config
    ImagePromptEncoder(**profile.image_encoder)
    cfg = run_config(profile, fusion="hard_select")
    assert cfg.patch_size == profile.patch_size and cfg.steps == profile.steps
    assert 0 <= profile.warmup_steps <= profile.steps
    # PromptIR's rate where no sweep chose one; cpu and quick: their recipe sweeps (results/bench/recipe_*)
    assert profile.lr == {"cpu": 2e-3, "quick": QUICK_LR}.get(name, 2e-4)
    assert set(profile.tasks) == {"denoise_15", "denoise_25", "denoise_50", "derain", "dehaze"}


def test_smoke_is_labelled_meaningless_and_cpu_has_three_seeds():
    assert not get_profile("smoke").meaningful
    assert "not meaningful" in get_profile("smoke").label()
    assert get_profile("quick").meaningful and get_profile("quick").seeds == (0,)
    assert get_profile("cpu").seeds == (0, 1, 2)
    paper = get_profile("paper")
    assert paper.model["dim"] == 48 and tuple(paper.model["num_blocks"]) == (4, 6, 6, 8)
    assert paper.patch_size == 128 and paper.batch_size == 32


def test_unknown_profile_names_the_choices():
    with pytest.raises(ValueError, match="smoke, quick, cpu, paper"):
        get_profile("huge")


def test_paper_data_root_from_parameter_or_environment(monkeypatch):
    monkeypatch.delenv("CSNET_DATA", raising=False)
    assert get_profile("paper").data_source == "mixed" and get_profile("paper").test_source == "corpus"
    monkeypatch.setenv("CSNET_DATA", "/data/promptir")
    assert get_profile("paper").data_source == get_profile("paper").test_source == "/data/promptir"
    assert get_profile("paper", data_root="/elsewhere").data_source == "/elsewhere"


def test_hash_is_stable_across_processes():
    cfg = run_config("smoke", fusion="hard_select", seed=3)
    code = ("from csnet.profiles import run_config, config_hash; "
            "print(config_hash(run_config('smoke', fusion='hard_select', seed=3)))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == config_hash(cfg)


def test_hash_changes_with_what_changes_the_weights_only():
    base = run_config("smoke")
    h = config_hash(base)
    for change in (dict(seed=1), dict(steps=21), dict(lr=1e-4), dict(mask_noise=0.2),
                   dict(model={"dim": 16}), dict(text_encoder="onehot"), dict(tasks=("derain", "dehaze")),
                   dict(schedule="wsd")):
        assert config_hash(run_config("smoke", **change)) != h, change
    assert config_hash(run_config("smoke", fusion="soft_gate")) != h
    for bookkeeping in (dict(checkpoint_every=3), dict(log_every=5), dict(num_workers=2)):
        assert config_hash(run_config("smoke", **bookkeeping)) == h, bookkeeping
    assert run_id(base).startswith("hard_select-") and len(run_id(base)) == len("hard_select-") + 12


def test_config_round_trips_through_json():
    cfg = run_config("quick", fusion="soft_gate", seed=2, task_weights=(1, 1, 1, 2, 2))
    again = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and config_hash(again) == config_hash(cfg)
    assert "training_version" in hashed_fields(cfg)


@pytest.mark.parametrize("bad", [dict(mask_noise=1.5), dict(warmup_steps=100), dict(precision="fp8"),
                                 dict(task_weights=(1.0,)), dict(no_such_field=1), dict(schedule="step"),
                                 dict(decay_fraction=0.0), dict(decay_fraction=1.5)])
def test_bad_overrides_are_named(bad):
    with pytest.raises(ValueError, match=next(iter(bad)).split("_")[0]):
        run_config("smoke", **bad)


# --------------------------------------------------------------------------------------------------
# The hash is taken over the resolved configuration (issue 17.1)


def test_explicitly_written_defaults_hash_alike():
    from csnet.models import ModelConfig

    base = run_config("smoke", fusion="hard_select", seed=0)  # a cosine profile: cosine_steps None = steps
    written = run_config("smoke", fusion="hard_select", seed=0,
                         model={"kappa": ModelConfig.kappa, "omega": ModelConfig.omega, "gamma": 4,
                                "estimator": "straight_through"},
                         image_encoder={"dropout": 0.1, "depth": 1}, cosine_steps=base.steps)
    assert written.model != base.model  # written out differently …
    assert config_hash(written) == config_hash(base)  # … the same network trained the same way
    assert run_id(written) == run_id(base)


def test_non_default_values_still_change_the_hash():
    base = config_hash(run_config("smoke"))
    for change in (dict(model={"kappa": 3.0}), dict(model={"omega": 0.25}), dict(image_encoder={"depth": 2}),
                   dict(image_encoder={"width": 12}), dict(cosine_steps=1000), dict(temperature=0.07)):
        assert config_hash(run_config("smoke", **change)) != base, change


def test_every_field_enters_the_hash_by_itself():
    """New dataclass fields (ModelConfig, RunConfig) and encoder keywords are hashed without a list."""
    import dataclasses
    import inspect

    from csnet.models import ModelConfig
    from csnet.profiles import BOOKKEEPING_FIELDS, HASH_SCHEME, TRAINING_VERSION
    from csnet.prompts import ImagePromptEncoder

    data = hashed_fields(run_config("smoke", fusion="soft_gate"))
    assert {f.name for f in dataclasses.fields(RunConfig)} - BOOKKEEPING_FIELDS <= set(data)
    assert not BOOKKEEPING_FIELDS & set(data)
    assert {f.name for f in dataclasses.fields(ModelConfig)} == set(data["model"])
    assert data["model"]["fusion"] == "soft_gate"
    keywords = set(inspect.signature(ImagePromptEncoder.__init__).parameters) - {"self"}
    assert keywords == set(data["image_encoder"])
    assert data["hash_scheme"] == HASH_SCHEME >= 2 and data["training_version"] == TRAINING_VERSION


def test_hash_scheme_and_training_version_are_inside_the_hash(monkeypatch):
    import csnet.profiles as profiles

    cfg = run_config("smoke")
    before = config_hash(cfg)
    monkeypatch.setattr(profiles, "HASH_SCHEME", profiles.HASH_SCHEME + 1)
    assert config_hash(cfg) != before
    monkeypatch.undo()
    monkeypatch.setattr(profiles, "TRAINING_VERSION", profiles.TRAINING_VERSION + 1)
    assert config_hash(cfg) != before


def test_a_field_can_opt_out_of_the_hash_at_its_default():
    import dataclasses

    from csnet.profiles import HASH_OMIT_AT_DEFAULT, _omitted_at_default

    @dataclasses.dataclass
    class Later:
        old: int = 1
        new: float = dataclasses.field(default=0.0, metadata={HASH_OMIT_AT_DEFAULT: True})
        plain_new: float = 0.0

    assert _omitted_at_default(Later, dataclasses.asdict(Later())) == {"old": 1, "plain_new": 0.0}
    assert _omitted_at_default(Later, dataclasses.asdict(Later(new=0.5)))["new"] == 0.5


def test_unknown_image_encoder_settings_are_named():
    with pytest.raises(ValueError, match="image_encoder settings.*widht"):
        config_hash(run_config("smoke", image_encoder={"widht": 8}))


def test_study_config_is_the_notebooks_config_and_the_plain_one():
    """Notebooks 01–04 write κ, ω, tasks and text encoder out; the command line leaves them out."""
    from csnet.profiles import study_config

    prof = get_profile("cpu")
    for fusion in ("hard_select", "none", "soft_gate"):
        overrides = {"model": {"kappa": 2.0, "omega": 0.5}} if fusion != "none" else {}
        notebook = run_config(prof, fusion, 1, tasks=tuple(prof.tasks), text_encoder=prof.text_encoder,
                              **overrides)
        assert run_id(study_config("cpu", fusion, 1)) == run_id(notebook) == run_id(run_config("cpu", fusion, 1))
    assert study_config("cpu", "none", 0, kappa=4.0).model == {**prof.model}  # none has no κ
    assert run_id(study_config("cpu", "hard_select", 0, kappa=4.0)) != run_id(run_config("cpu", "hard_select"))


def test_pipeline_check_profiles():
    from csnet.profiles import restoration_is_pipeline_check

    assert restoration_is_pipeline_check("smoke") and restoration_is_pipeline_check("quick")
    assert not restoration_is_pipeline_check("cpu") and not restoration_is_pipeline_check("paper")
    assert restoration_is_pipeline_check("")


def test_schedule_defaults_and_wsd_consistency_are_checked():
    assert (run_config("paper").schedule, run_config("cpu").schedule, run_config("quick").schedule) == ("cosine", "wsd", "wsd")
    cfg = run_config("smoke")
    assert (cfg.schedule, cfg.decay_fraction) == ("cosine", 0.2)
    assert run_config("smoke", schedule="wsd").schedule == "wsd"
    with pytest.raises(ValueError, match="cosine_steps .* with schedule 'wsd' set it to None"):
        run_config("smoke", schedule="wsd", cosine_steps=30)
    with pytest.raises(ValueError, match="warmup_steps \\(18\\) runs into the decay, which starts at step 16"):
        run_config("smoke", schedule="wsd", warmup_steps=18)


def test_fitting_warmup_keeps_a_short_run_valid():
    from csnet.profiles import fitting_warmup

    assert fitting_warmup(50, 4, "cosine", 0.2) == 4
    assert fitting_warmup(50, 4, "wsd", 0.2) == 3  # the decay of a 4-step wsd run starts at step 3
    assert fitting_warmup(50, 500, "wsd", 0.2) == 50
    run_config("cpu", steps=4, warmup_steps=fitting_warmup(50, 4, "wsd", 0.2))  # valid
