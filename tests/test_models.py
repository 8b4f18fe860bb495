"""The network: every mechanism trains on odd sizes, sites and probes, determinism, config, save/load,
and ``csnet models``."""
from __future__ import annotations

import json

import pytest
import torch

from csnet.models import FUSIONS, SITES, CSNet, ModelConfig, build_model, load_model, save_model
from csnet.models.fusion import SELECTING, NoFusion
from csnet.models.summary import channels_kept, forward_flops, parameter_count, summarise


def inputs(batch: int = 2, height: int = 37, width: int = 53):
    generator = torch.Generator().manual_seed(0)
    return torch.rand(batch, 3, height, width, generator=generator), torch.randn(batch, 512, generator=generator)


@pytest.mark.parametrize(("fusion", "start"), [(f, "identity") for f in FUSIONS] + [(f, "projection") for f in SELECTING])
def test_every_mechanism_runs_forward_and_backward_on_odd_sizes(fusion, start):
    model = build_model(ModelConfig.tiny(fusion=fusion, heads=(1, 2, 2, 4), selection_start=start)).train()
    image, prompt = inputs()
    prompt.requires_grad_(True)
    restored = model(image, prompt)
    assert restored.shape == image.shape and torch.isfinite(restored).all()
    (restored - image).abs().mean().backward()
    assert model.patch_embed.proj.weight.grad.abs().sum() > 0
    fused = [p for site in model.fusion_sites.values() for p in site.fusion.parameters()]
    assert all(p.grad is not None for p in fused)
    # an identity-start selection block passes nothing through its zero contraction at step 0, so the
    # prompt reaches the loss only from the first update on (tests/test_fusion.py checks that order)
    if model.uses_prompt and not (fusion in SELECTING and start == "identity"):
        assert prompt.grad.abs().sum() > 0


def test_paper_config_is_restormer_sized():
    with torch.device("meta"):
        assert parameter_count(CSNet(ModelConfig.paper(fusion="none"))) == 26_126_644  # paper: 26.13 M


def test_sites_have_probes_called_once_with_the_level_shapes():
    model = build_model(ModelConfig.tiny()).eval()
    assert list(model.fusion_sites) == list(SITES)
    calls = {}
    for name, site in model.fusion_sites.items():
        assert isinstance(site.probe, torch.nn.Identity)
        site.probe.register_forward_hook(lambda m, a, out, name=name: calls.setdefault(name, []).append(out.shape))
    image, prompt = inputs(batch=1, height=32, width=40)
    with torch.no_grad():
        model(image, prompt)
    c = model.config.dim
    assert calls == {
        "skip_fusion_level1": [(1, c, 32, 40)],
        "skip_fusion_level2": [(1, 2 * c, 16, 20)],
        "skip_fusion_level3": [(1, 4 * c, 8, 10)],
        "bottleneck_fusion": [(1, 8 * c, 4, 5)],
    }


def test_fusion_sites_chooses_where_the_mechanism_sits():
    model = build_model(ModelConfig.tiny(fusion="hard_select", fusion_sites=("skip_fusion_level2", "bottleneck_fusion")))
    kinds = {name: type(site.fusion).__name__ for name, site in model.fusion_sites.items()}
    assert kinds == {"skip_fusion_level1": "NoFusion", "skip_fusion_level2": "HardSelect",
                     "skip_fusion_level3": "NoFusion", "bottleneck_fusion": "HardSelect"}
    assert isinstance(build_model(ModelConfig.tiny(fusion="none")).skip_fusion_level1.fusion, NoFusion)


def test_same_seed_same_output_and_global_rng_untouched():
    image, prompt = inputs()
    state = torch.random.get_rng_state()
    first = build_model(ModelConfig.tiny(seed=3)).eval()
    assert torch.equal(torch.random.get_rng_state(), state)
    second = build_model(ModelConfig.tiny(seed=3)).eval()
    other = build_model(ModelConfig.tiny(seed=4)).eval()
    with torch.no_grad():
        assert torch.equal(first(image, prompt), second(image, prompt))
        assert not torch.equal(first(image, prompt), other(image, prompt))


def test_any_size_works_and_the_prompt_is_checked():
    model = build_model(ModelConfig.tiny()).eval()
    with torch.no_grad():
        for height, width in [(5, 7), (8, 8), (17, 9)]:
            image, prompt = inputs(batch=1, height=height, width=width)
            assert model(image, prompt).shape == image.shape
        image, prompt = inputs(batch=2, height=16, width=16)
        with pytest.raises(ValueError, match="needs a prompt"):
            model(image)
        with pytest.raises(ValueError, match="prompt must be"):
            model(image, prompt[:1])
        assert build_model(ModelConfig.tiny(fusion="none"))(image).shape == image.shape


def test_config_round_trips_and_names_allowed_values():
    cfg = ModelConfig.tiny(fusion="soft_gate", kappa=3.0)
    data = json.loads(json.dumps(cfg.to_dict()))
    assert ModelConfig.from_dict(data) == cfg
    with pytest.raises(ValueError, match="hard_select"):
        ModelConfig(fusion="hardselect")
    with pytest.raises(ValueError, match="known fields"):
        ModelConfig.from_dict({**data, "kapa": 2})
    with pytest.raises(ValueError, match="sites are"):
        ModelConfig(fusion_sites=("skip_fusion_level4",))
    with pytest.raises(ValueError, match="straight_through"):
        ModelConfig(estimator="reinforce")
    assert ModelConfig.preset("paper") == ModelConfig.paper() == ModelConfig()


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_save_and_load_round_trip(tmp_path, suffix):
    model = build_model(ModelConfig.tiny(fusion="random_select", random_select_seed=5)).eval()
    with torch.no_grad():
        for parameter in model.parameters():  # weights that differ from a fresh build
            parameter.add_(0.01)
    path = save_model(model, tmp_path / f"model{suffix}")
    assert path.is_file() and path.with_suffix(".json").is_file()
    loaded = load_model(path).eval()
    assert loaded.config == model.config
    image, prompt = inputs()
    with torch.no_grad():
        assert torch.equal(loaded(image, prompt), model(image, prompt))
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.safetensors")


def test_kept_channels_per_site():
    cfg = ModelConfig.tiny()
    assert channels_kept(cfg) == {"skip_fusion_level1": (8, 16), "skip_fusion_level2": (16, 32),
                                  "skip_fusion_level3": (32, 64), "bottleneck_fusion": (64, 128)}
    assert channels_kept(ModelConfig.tiny(fusion="soft_gate", fusion_sites=("bottleneck_fusion",))) == {
        "bottleneck_fusion": (128, 128)
    }
    assert channels_kept(ModelConfig.tiny(fusion="cross_attention")) == {}


@pytest.mark.slow  # the flop counter's first use imports torch._dynamo (seconds)
def test_summary_counts_flops_and_parameters():
    cfg = ModelConfig.tiny()
    assert forward_flops(cfg, 32) > forward_flops(ModelConfig.tiny(fusion="none"), 32) > 0
    table = summarise(cfg, size=32, fusions=["none", "hard_select"])
    assert list(table["fusion"]) == ["none", "hard_select"]
    assert table["params (M)"].iloc[1] > table["params (M)"].iloc[0]


@pytest.mark.slow
def test_csnet_models_command_for_the_paper_config(capsys):
    from csnet.cli import main

    assert main(["models", "--config", "paper", "--fusion", "none,hard_select", "--size", "64"]) == 0
    out = capsys.readouterr().out
    assert "paper (published)" in out and "26.13" in out and "30.06" in out and "forward only" in out
    assert main(["models", "--config", "tiny", "--size", "32"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in FUSIONS) and "paper (published)" not in out
