"""Paired seeds: at one seed every mechanism starts from the same backbone and sees the same data; the
random draws only some mechanisms make come from their own generators; the model modules import
without a circle."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from csnet.profiles import run_config
from csnet.train import Trainer, build_networks

MODELS = Path(__file__).resolve().parents[1] / "csnet" / "models"


def tiny(fusion: str, **overrides):
    values = dict(text_encoder="onehot", steps=4, warmup_steps=1, patch_size=16, batch_size=2,
                  model={"dim": 8, "heads": (1, 1, 1, 1)})
    values.update(overrides)
    return run_config("smoke", fusion=fusion, seed=3, **values)


def backbone(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every parameter and buffer outside the fusion mechanisms."""
    return {key: value for key, value in state.items() if ".fusion." not in key}


@pytest.mark.parametrize("other", ["hard_select", "cross_attention", "random_select"])
def test_mechanisms_start_from_the_same_backbone_and_image_encoder(other):
    base_model, base_encoder = build_networks(tiny("none"))
    model, encoder = build_networks(tiny(other))
    base, state = backbone(base_model.state_dict()), model.state_dict()
    assert len(state) > len(base)  # the mechanism does have its own weights
    assert backbone(state).keys() == base.keys()
    for key, value in base.items():
        assert torch.equal(state[key], value), key
    for key, value in base_encoder.state_dict().items():
        assert torch.equal(encoder.state_dict()[key], value), key
    # and another seed gives another backbone: the equality above is not vacuous
    other_seed, _ = build_networks(run_config("smoke", fusion="none", seed=4, text_encoder="onehot",
                                              model={"dim": 8, "heads": (1, 1, 1, 1)}))
    assert not torch.equal(other_seed.state_dict()["patch_embed.proj.weight"], base["patch_embed.proj.weight"])


def test_a_mechanism_draws_the_same_weights_whatever_the_other_sites_hold():
    from csnet.models import ModelConfig, build_model

    everywhere = build_model(ModelConfig.tiny(fusion="hard_select", seed=1)).state_dict()
    one_site = build_model(ModelConfig.tiny(fusion="hard_select", seed=1, fusion_sites=("bottleneck_fusion",)))
    for key, value in one_site.state_dict().items():
        assert torch.equal(everywhere[key], value), key


def test_mechanisms_see_the_same_batches_in_the_same_order():
    none, hard = Trainer(tiny("none")), Trainer(tiny("hard_select", model={"dim": 8, "heads": (1, 1, 1, 1),
                                                                           "estimator": "gumbel"}))
    for step, (a, b) in enumerate(zip(none.batches(0), hard.batches(0))):
        assert torch.equal(a["degraded"], b["degraded"]) and torch.equal(a["clean"], b["clean"]), step
        assert list(a["task"]) == list(b["task"]) and torch.equal(a["task_index"], b["task_index"]), step
    assert step == 3  # all four steps compared


def test_draws_only_some_mechanisms_make_leave_the_global_stream_alone():
    """A hard_select step with Gumbel noise and forced channels consumes exactly what a `none` step
    consumes from torch's global generator (dropout's), so later draws stay paired."""
    none = Trainer(tiny("none"))
    noisy = Trainer(tiny("hard_select", mask_noise=1.0, model={"dim": 8, "heads": (1, 1, 1, 1),
                                                               "estimator": "gumbel"}))
    states = []
    for trainer in (none, noisy):
        batch = next(trainer.batches(0))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(11)
            trainer.train_step(batch, 0)
            states.append(torch.get_rng_state())
    assert torch.equal(states[0], states[1])


def test_gumbel_noise_is_reproducible_from_its_seed_and_differs_across_steps():
    from csnet.models.fusion import HardSelect

    fusion = HardSelect(8, prompt_dim=16, estimator="gumbel").train()
    prompt = torch.randn(4, 16)
    fusion.seed_noise(5)
    first, second = fusion.channel_weights(prompt), fusion.channel_weights(prompt)
    fusion.seed_noise(5)
    assert torch.equal(fusion.channel_weights(prompt), first)
    assert not torch.equal(first, second)


# --- no import circle between the model modules -------------------------------------------------------

ORDER = ("restormer", "config", "fusion", "network", "summary")  # each may import only those before it


def _model_imports(path: Path) -> set[str]:
    """csnet.models modules a file imports anywhere (module level, functions, TYPE_CHECKING blocks)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("csnet.models."):
            found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[2] for a in node.names if a.name.startswith("csnet.models."))
    return found


@pytest.mark.parametrize("position", range(len(ORDER)))
def test_model_modules_import_only_downwards(position):
    name = ORDER[position]
    assert _model_imports(MODELS / f"{name}.py") <= set(ORDER[:position]), name


def test_importing_fusion_alone_works():
    code = ("import sys, csnet.models.fusion as f; "
            "assert f.FUSIONS['hard_select'].__name__ == 'HardSelect'; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
