"""Fusion mechanisms: the shared interface, CSNet's hard selection (exactly K, dropped channels inert,
gradients to the scores), and reading and forcing channel sets."""
from __future__ import annotations

import pytest
import torch

from csnet.models import FUSIONS, SELECTING, SITES, ModelConfig, build_model
from csnet.models.fusion import ChannelSelectionBlock, HardSelect, SoftGate, kept_channels

H, W = 37, 53  # odd on purpose: the network pads to a multiple of 8 and crops back


def tiny(fusion: str, trained_start: bool = True, **overrides) -> torch.nn.Module:
    """A tiny network. The default (identity) start zero-initialises each selection block's contraction, so
    at step 0 no channel reaches the output; with ``trained_start`` the contractions get random weights, as
    training gives them, so that the selection's semantics (which channels reach the output) can be tested."""
    model = build_model(ModelConfig.tiny(fusion=fusion, **overrides)).eval()
    if trained_start:
        generator = torch.Generator().manual_seed(1)
        for site in model.fusion_sites.values():
            if isinstance(site.fusion, ChannelSelectionBlock) and site.fusion.start == "identity":
                weight = site.fusion.channel_contraction.weight
                with torch.no_grad():
                    weight.copy_(0.1 * torch.randn(weight.shape, generator=generator))
    return model


def inputs(batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, H, W, generator=generator)
    prompt = torch.nn.functional.normalize(torch.randn(batch, 512, generator=generator), dim=1)  # mixed prompts
    return image, prompt


def capture_selected(model) -> tuple[dict[str, torch.Tensor], list]:
    """Hook every CSB's selection probe (the weighted expanded channels F_s)."""
    seen, handles = {}, []
    for name, site in model.fusion_sites.items():
        if isinstance(site.fusion, ChannelSelectionBlock):
            handles.append(site.fusion.selection_probe.register_forward_hook(
                lambda module, args, out, name=name: seen.__setitem__(name, out.detach())
            ))
    return seen, handles


@pytest.mark.parametrize("name", list(FUSIONS))
def test_every_mechanism_keeps_shape_alone(name):
    cfg = ModelConfig.tiny(fusion=name)
    fusion = FUSIONS[name].from_config(16, cfg, "skip_fusion_level2")
    features = torch.randn(2, 16, 9, 11)
    out = fusion(features, torch.randn(2, 512))
    assert out.shape == features.shape


@pytest.mark.parametrize("name", SELECTING)
def test_exactly_k_channels_survive_per_sample_and_site(name):
    model = tiny(name)
    image, prompt = inputs(batch=3)
    seen, handles = capture_selected(model)
    with torch.no_grad():
        model(image, prompt)
    selected = model.selected_channels(prompt)
    assert set(seen) == set(SITES) == set(selected)
    for site, activations in seen.items():
        fusion = model.fusion_sites[site].fusion
        alive = activations.abs().amax(dim=(2, 3)) > 0  # (B, κĈ)
        if name == "soft_gate":
            assert alive.all()  # the soft route keeps every channel
            continue
        assert (alive.sum(dim=1) == fusion.keep).all()
        assert fusion.keep == kept_channels(fusion.channels, 2.0, 0.5)
        rows = alive.nonzero()[:, 1].view(3, fusion.keep)
        assert torch.equal(rows, selected[site])
    for handle in handles:
        handle.remove()


def test_mixed_prompts_select_different_channels_and_random_select_does_not_listen():
    image, prompt = inputs(batch=2)
    hard = tiny("hard_select").selected_channels(prompt)["bottleneck_fusion"]
    assert not torch.equal(hard[0], hard[1])
    random_sets = tiny("random_select").selected_channels(prompt)
    assert torch.equal(random_sets["bottleneck_fusion"][0], random_sets["bottleneck_fusion"][1])
    again = tiny("random_select").selected_channels(prompt)
    assert all(torch.equal(random_sets[s], again[s]) for s in SITES)  # fixed by the seed
    other = tiny("random_select", random_select_seed=1).selected_channels(prompt)
    assert not torch.equal(random_sets["bottleneck_fusion"], other["bottleneck_fusion"])


@pytest.mark.parametrize("name", ["hard_select", "random_select"])
def test_dropped_channels_contribute_nothing(name):
    model = tiny(name)
    image, prompt = inputs()
    with torch.no_grad():
        reference = model(image, prompt)
        selected = model.selected_channels(prompt)
    handles = []
    for site_name, site in model.fusion_sites.items():
        fusion = site.fusion
        dropped = torch.ones(2, fusion.expanded, dtype=torch.bool).scatter(1, selected[site_name], False)
        noise = 1e3 * dropped[:, :, None, None].float()  # perturb only the dropped expanded channels

        handles.append(fusion.channel_expansion.register_forward_hook(lambda m, a, out, noise=noise: out + noise))
    with torch.no_grad():
        perturbed = model(image, prompt)
    for handle in handles:
        handle.remove()
    assert torch.equal(perturbed, reference)
    # and the same perturbation on a kept channel does change the output
    fusion = model.bottleneck_fusion.fusion
    kept = torch.zeros(2, fusion.expanded).scatter(1, selected["bottleneck_fusion"][:, :1], 1e3)
    handle = fusion.channel_expansion.register_forward_hook(lambda m, a, out: out + kept[:, :, None, None])
    with torch.no_grad():
        assert not torch.equal(model(image, prompt), reference)
    handle.remove()


@pytest.mark.parametrize("estimator", ["straight_through", "gumbel"])
def test_gradients_reach_the_selection_scores(estimator):
    model = tiny("hard_select", estimator=estimator).train()  # contraction weights as after some training
    image, prompt = inputs()
    prompt.requires_grad_(True)
    loss = (model(image, prompt) - image).abs().mean()
    loss.backward()
    for site in model.fusion_sites.values():
        grad = site.fusion.channel_selection_layer.weight.grad
        assert grad is not None and grad.abs().sum() > 0
        assert site.fusion.channel_expansion.weight.grad.abs().sum() > 0
    assert prompt.grad.abs().sum() > 0


def test_identity_start_first_trains_the_contraction():
    """At step 0 of the identity start nothing passes the zero contraction, so the selection scores get no
    gradient yet; the contraction does, and after one optimiser step the scores do too."""
    model = tiny("hard_select", trained_start=False).train()
    image, prompt = inputs()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(2):
        optimiser.zero_grad()
        (model(image, prompt) - image).abs().mean().backward()
        site = model.fusion_sites["skip_fusion_level2"].fusion
        scores_grad = site.channel_selection_layer.weight.grad.abs().sum()
        assert site.channel_contraction.weight.grad.abs().sum() > 0
        assert (scores_grad > 0) == (step == 1), step
        optimiser.step()


def test_hard_mask_is_exactly_binary_and_gumbel_keeps_k_in_training():
    fusion = HardSelect(8, estimator="gumbel").train()
    prompt = torch.randn(4, 512)
    weights = fusion.channel_weights(prompt)
    assert set(weights.unique().tolist()) <= {0.0, 1.0}
    assert (weights.sum(dim=1) == fusion.keep).all()
    fusion.eval()
    assert torch.equal(fusion.channel_weights(prompt), fusion.channel_weights(prompt))


def test_soft_gate_reads_top_k_by_gate_and_forcing_keeps_its_gate():
    fusion = SoftGate(8)
    prompt = torch.randn(3, 512)
    gates = fusion.channel_weights(prompt)
    expected = gates.topk(fusion.keep, dim=1).indices.sort(dim=1).values
    assert torch.equal(fusion.selection_indices(prompt), expected)
    fusion.forced_mask = fusion.mask_for(torch.tensor([0, 3]))
    forced = fusion._forced_weights(prompt)
    assert torch.equal(forced[:, [0, 3]], gates[:, [0, 3]]) and forced[:, [1, 2]].abs().sum() == 0


@pytest.mark.parametrize("name", SELECTING)
def test_forcing_the_own_selection_reproduces_the_output(name):
    model = tiny(name)
    image, prompt = inputs()
    with torch.no_grad():
        reference = model(image, prompt)
        own = model.selected_channels(prompt)
        if name != "soft_gate":  # the soft route keeps every channel: its top-K is not what it uses
            with model.force_channels(own):
                assert torch.equal(model(image, prompt), reference)
        with model.force_channels({site: "all" for site in SITES}):
            everything = model(image, prompt)
    assert torch.equal(everything, reference) == (name == "soft_gate")


def test_forcing_another_set_all_and_all_scaled_change_the_output():
    model = tiny("hard_select")
    image, prompt = inputs()
    with torch.no_grad():
        reference = model(image, prompt)
        own = model.selected_channels(prompt)["skip_fusion_level2"]
        other = model.selected_channels(prompt.flip(0))["skip_fusion_level2"]  # the other sample's channels
        assert not torch.equal(own, other)
        outputs = {}
        for label, forced in [("other", other), ("shared", own[0]), ("all", "all"), ("all_scaled", "all_scaled")]:
            with model.force_channels({"skip_fusion_level2": forced}) as forced_model:
                assert forced_model is model
                outputs[label] = model(image, prompt)
        assert torch.equal(model(image, prompt), reference)  # restored
    for label, out in outputs.items():
        assert not torch.equal(out, reference), label
    assert torch.equal(outputs["shared"][0], reference[0])  # sample 0's own set, given as (K,)
    assert not torch.equal(outputs["shared"][1], reference[1])
    assert not torch.equal(outputs["all"], outputs["all_scaled"])


def test_forcing_validates_and_restores_after_an_exception():
    model = tiny("hard_select")
    image, prompt = inputs()
    with pytest.raises(ValueError, match="skip_fusion_level1"):  # the message lists the sites
        with model.force_channels({"skip_fusion_level9": "all"}):
            pass
    expanded = model.skip_fusion_level1.fusion.expanded
    for bad in (torch.tensor([0, expanded]), torch.tensor([-1, 2]), torch.tensor([1, 1]), torch.tensor([0.5]), "some"):
        with pytest.raises(ValueError):
            with model.force_channels({"skip_fusion_level1": bad}):
                pass
    with pytest.raises(RuntimeError, match="boom"):
        with model.force_channels({"skip_fusion_level1": "all"}):
            raise RuntimeError("boom")
    assert all(site.fusion.forced_mask is None for site in model.fusion_sites.values())
    with model.force_channels({"skip_fusion_level1": torch.zeros(3, 4, dtype=torch.long) + torch.arange(4)}):
        with pytest.raises(ValueError, match="batch"):
            model(image, prompt)  # forced for a batch of 3, given 2


def test_reading_and_forcing_need_a_selecting_mechanism():
    model = tiny("channel_attention")
    _, prompt = inputs()
    with pytest.raises(ValueError, match="hard_select"):
        model.selected_channels(prompt)
    with pytest.raises(ValueError, match="hard_select"):
        with model.force_channels({"bottleneck_fusion": "all"}):
            pass
    partial = tiny("hard_select", fusion_sites=("bottleneck_fusion",))
    assert set(partial.selected_channels(prompt)) == {"bottleneck_fusion"}


# --- how the selection block starts (ModelConfig.selection_start) ------------------------------------


@pytest.mark.parametrize("name", SELECTING)
def test_identity_start_is_the_identity_at_initialisation_and_learns(name):
    cfg = ModelConfig.tiny(fusion=name, selection_start="identity", bias=True)
    fusion = FUSIONS[name].from_config(16, cfg, "skip_fusion_level2").train()
    features = torch.randn(2, 16, 9, 11, requires_grad=True)
    _, prompt = inputs()
    out = fusion(features, prompt)
    assert torch.equal(out, features)
    out.square().sum().backward()
    assert fusion.channel_contraction.weight.grad.abs().sum() > 0  # the residual branch starts learning


@pytest.mark.parametrize("name", SELECTING)
def test_identity_start_whole_network_equals_none_at_initialisation(name):
    """With paired seeds the backbone is the same, so identity-start selection blocks make the whole
    network compute exactly what `none` computes at step 0."""
    image, prompt = inputs()
    with torch.no_grad():
        plain = tiny("none")(image, prompt)
        assert torch.equal(tiny(name, trained_start=False, selection_start="identity")(image, prompt), plain)
        assert not torch.allclose(tiny(name, selection_start="projection")(image, prompt), plain, atol=1e-3)


@pytest.mark.parametrize("name", SELECTING)
def test_projection_start_is_not_the_identity(name):
    cfg = ModelConfig.tiny(fusion=name, selection_start="projection")
    fusion = FUSIONS[name].from_config(16, cfg, "skip_fusion_level2").eval()
    features = torch.randn(4, 16, 9, 11)
    _, prompt = inputs(batch=4)
    with torch.no_grad():
        out = fusion(features, prompt)
    assert (out - features).norm() > 0.5 * features.norm()


def test_identity_start_is_the_default_the_sweep_chose():
    assert ModelConfig().selection_start == "identity"  # results/bench/recipe_cpu_summary.csv


def test_selection_start_is_checked_by_name():
    with pytest.raises(ValueError, match="selection_start 'zero' is not one of \\('projection', 'identity'\\)"):
        ModelConfig.tiny(selection_start="zero")


# --- the Gumbel estimator's noise scale (ModelConfig.gumbel_scale) ---------------------------------------


def _kept_with_noise(fusion: HardSelect, prompt: torch.Tensor, draws: int = 20) -> float:
    """Mean fraction of the noiseless Top-K that the noisy Top-K keeps, over ``draws`` noise draws."""
    with torch.no_grad():
        clean = fusion.eval().channel_weights(prompt)
        fusion.train().seed_noise(0)
        kept = [(fusion.channel_weights(prompt) * clean).sum(dim=1) / fusion.keep for _ in range(draws)]
    return float(torch.stack(kept).mean())


@pytest.mark.parametrize("site", SITES)
def test_default_gumbel_noise_keeps_most_of_the_top_k_at_initialisation(site, monkeypatch):
    cfg = ModelConfig.small(fusion="hard_select", estimator="gumbel")
    fusion = build_model(cfg).fusion_sites[site].fusion
    _, prompt = inputs(batch=16)
    assert _kept_with_noise(fusion, prompt) >= 0.70
    # the old noise, unit-scale Gumbel whatever the scores' spread, leaves the masks close to random
    monkeypatch.setattr(HardSelect, "noise_scale", lambda self, scores: torch.ones(scores.shape[0], 1))
    assert _kept_with_noise(fusion, prompt) < 0.60


def test_gumbel_noise_scales_with_the_scores():
    """Scaling the CSL's weights (and so the scores) changes nothing about which channels the noise picks."""
    fusion = HardSelect(16, estimator="gumbel")
    _, prompt = inputs(batch=4)
    fusion.train().seed_noise(3)
    before = fusion.channel_weights(prompt)
    with torch.no_grad():
        fusion.channel_selection_layer.weight.mul_(32.0)
        fusion.channel_selection_layer.bias.mul_(32.0)
    fusion.seed_noise(3)
    assert torch.equal(fusion.channel_weights(prompt), before)


def test_gumbel_scale_must_be_positive():
    with pytest.raises(ValueError, match="gumbel_scale must be > 0"):
        ModelConfig.tiny(gumbel_scale=0.0)
