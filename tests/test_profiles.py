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
    assert profile.lr == 2e-4
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


def test_schedule_defaults_and_wsd_consistency_are_checked():
    cfg = run_config("cpu")
    assert (cfg.schedule, cfg.decay_fraction) == ("cosine", 0.2)
    assert run_config("cpu", schedule="wsd").schedule == "wsd"
    with pytest.raises(ValueError, match="cosine_steps .* with schedule 'wsd' set it to None"):
        run_config("smoke", schedule="wsd", cosine_steps=30)
    with pytest.raises(ValueError, match="warmup_steps \\(18\\) runs into the decay, which starts at step 16"):
        run_config("smoke", schedule="wsd", warmup_steps=18)
