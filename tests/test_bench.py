"""``csnet bench``: FLOP counting with the depthwise correction, the tuned computations' equivalence, and
the tables the command writes. Performance itself is measured by the benchmark, never asserted here."""
from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from csnet import bench
from csnet.cli import main
from csnet.models import ModelConfig, build_model
from csnet.models.summary import forward_flops


@pytest.fixture(autouse=True)
def _one_thread():
    # On a shared 2-core machine two OpenMP threads wait on each other at every operation; one thread
    # keeps these small models fast (csnet bench --tuning measures the effect).
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(autouse=True)
def _quiet_machine(monkeypatch):
    # These tests check the code, not the machine: a busy CI runner must not make csnet bench refuse
    # (test_recipe.py tests the refusal itself).
    monkeypatch.setattr(bench, "_load_average", lambda: 0.0)


def _count(module: nn.Module, x: torch.Tensor, counter) -> tuple[int, int]:
    with counter as forward:
        out = module(x)
    forward_count = forward.get_total_flops()
    with counter as backward:
        out.sum().backward()
    return forward_count, backward.get_total_flops()


@pytest.mark.parametrize("batch, channels, kernel, height, width", [(2, 6, 3, 10, 12), (1, 16, 5, 7, 7)])
def test_depthwise_convolution_flops_equal_the_analytic_count(batch, channels, kernel, height, width):
    # Convention: 2 FLOPs per multiply-add, bias ignored, every output pixel meets the whole kernel
    # (padding not discounted). Forward: 2·B·C·k²·H·W. Backward: the input gradient and the weight
    # gradient each cost the forward again.
    conv = nn.Conv2d(channels, channels, kernel, padding=kernel // 2, groups=channels, bias=False)
    x = torch.rand(batch, channels, height, width, requires_grad=True)
    forward, backward = _count(conv, x, bench.flop_counter())
    analytic = 2 * batch * channels * kernel**2 * height * width
    assert forward == analytic
    assert backward == 2 * analytic


def test_weight_gradient_alone_costs_one_forward():
    conv = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
    x = torch.rand(2, 8, 9, 9)  # no input gradient: only the weight gradient is computed
    forward, backward = _count(conv, x, bench.flop_counter())
    assert backward == forward == 2 * 2 * 8 * 9 * 9 * 9


@pytest.mark.parametrize("groups", [1, 2])
def test_correction_leaves_dense_convolutions_as_torch_counts_them_and_fixes_grouped_ones(groups):
    conv = nn.Conv2d(4, 6, 3, padding=1, groups=groups, bias=False)
    x = torch.rand(3, 4, 8, 8, requires_grad=True)
    ours = _count(conv, x, bench.flop_counter())
    conv.zero_grad()
    theirs = _count(conv, x.detach().requires_grad_(), FlopCounterMode(display=False))
    assert ours[0] == theirs[0]
    forward = 2 * 3 * 6 * (4 // groups) * 9 * 64
    assert ours == (forward, 2 * forward)
    if groups == 1:
        assert ours[1] == theirs[1]


def test_training_flops_of_the_network():
    model_kwargs = dict(dim=8, num_blocks=(1, 1, 1, 1), heads=(1, 1, 2, 2), num_refinement_blocks=1)
    counts = bench.training_flops(model_kwargs, "hard_select", batch=2, patch=32)
    assert counts["forward"] == forward_flops(ModelConfig(**model_kwargs, fusion="hard_select"), 32, batch=2)
    # every counted op costs twice its forward backwards, except the input gradients nobody needs
    # (the image's, the prompt's): strictly under 2×, and far under torch's uncorrected count
    assert 1.5 * counts["forward"] < counts["backward"] < 2 * counts["forward"]


def _tiny_model(fusion: str, **overrides) -> nn.Module:
    return build_model(ModelConfig.tiny(fusion=fusion, **overrides))


@pytest.mark.parametrize("fusion", ["none", "hard_select", "soft_gate", "random_select"])
@pytest.mark.parametrize("name", ["fused_layer_norm", "sdpa_attention", "folded_selection", "channels_last"])
def test_tuned_computations_give_the_same_outputs_and_gradients(fusion, name):
    tuning, _ = bench.TUNINGS[name]
    reference, tuned = _tiny_model(fusion), bench.apply_tuning(_tiny_model(fusion), tuning)
    generator = torch.Generator().manual_seed(3)
    image = torch.rand(2, 3, 24, 24, generator=generator)
    prompt = torch.nn.functional.normalize(torch.randn(2, 512, generator=generator), dim=1)
    memory = torch.channels_last if tuning.channels_last else torch.contiguous_format
    expected = reference(image, prompt)
    got = tuned(image.contiguous(memory_format=memory), prompt)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    expected.square().mean().backward()
    got.square().mean().backward()
    for (key, want), (_, have) in zip(reference.named_parameters(), tuned.named_parameters()):
        if want.grad is None:
            assert have.grad is None, key
        else:
            torch.testing.assert_close(have.grad, want.grad, rtol=1e-4, atol=1e-6, msg=key)


def test_folded_selection_keeps_forcing_and_leaves_analyses_bit_identical():
    reference = _tiny_model("hard_select", bias=True)
    tuned = bench.apply_tuning(_tiny_model("hard_select", bias=True), bench.Tuning(selection="folded"))
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    prompt = torch.nn.functional.normalize(torch.randn(1, 512, generator=torch.Generator().manual_seed(1)), dim=1)
    forced = {"skip_fusion_level1": torch.tensor([0, 3, 5])}
    with reference.force_channels(forced), tuned.force_channels(forced):
        torch.testing.assert_close(tuned(image, prompt), reference(image, prompt), rtol=1e-5, atol=1e-5)
    # without autograd (evaluation, studies) every step runs as written: bit-identical outputs
    with torch.no_grad():
        assert torch.equal(tuned(image, prompt), reference(image, prompt))
    # and a hook on the probe sees F_s (B, κĈ, H, W) even while autograd records
    seen = []
    site = tuned.fusion_sites["skip_fusion_level1"].fusion
    handle = site.selection_probe.register_forward_hook(lambda module, args, out: seen.append(out.shape))
    tuned(image, prompt)
    handle.remove()
    assert seen == [torch.Size([1, site.expanded, 16, 16])]


def test_bench_rows_have_every_column_and_positive_numbers():
    rows = bench.run_bench(["smoke"], "none,hard_select", steps=1, warmup=1, memory=False, infer_rounds=1,
                           matmul_size=256)
    assert [row["fusion"] for row in rows] == ["none", "hard_select"]
    for row in rows:
        for column in ("train_s_per_step", "train_patches_per_s", "train_cpu_s_per_step", "train_gflop_per_step",
                       "train_gflops",
                       "matmul_peak_gflops", "peak_fraction", "infer_s_per_mp", "params"):
            assert row[column] > 0 and math.isfinite(row[column]), column
        assert row["batch"] == 4 and row["patch"] == 32  # the smoke profile's
    assert rows[1]["params"] > rows[0]["params"]
    assert all(row["load_average"] == 0.0 and row["load_override"] is False for row in rows)


def test_unknown_fusion_is_named():
    with pytest.raises(ValueError, match="unknown fusion mechanisms \\['bogus'\\]"):
        bench.run_bench(["smoke"], "none,bogus", steps=1, memory=False)


@pytest.mark.slow
def test_csnet_bench_writes_the_table_with_memory(tmp_path, capsys):
    status = main(["bench", "--configs", "smoke", "--fusions", "none,hard_select", "--steps", "1",
                   "-o", str(tmp_path)])
    assert status == 0
    table = pd.read_csv(tmp_path / "bench-cpu.csv")
    assert list(table.columns) == list(bench.BENCH_COLUMNS)
    assert list(table["fusion"]) == ["none", "hard_select"]
    for column in ("train_patches_per_s", "train_gflops", "peak_fraction", "infer_s_per_mp", "train_peak_mib",
                   "train_peak_delta_mib", "infer_peak_mib", "infer_peak_delta_mib"):
        assert (table[column] > 0).all(), column
    # the process's peak includes what was resident before the measured phase
    assert (table["train_peak_mib"] > table["train_peak_delta_mib"]).all()
    assert (table["infer_peak_mib"] > table["infer_peak_delta_mib"]).all()
    # AdamW keeps two moments per parameter: a training step needs at least that much beyond the weights
    assert (table["train_peak_delta_mib"] * 2**20 >= 2 * 4 * table["params"]).all()
    assert (tmp_path / "manifest-cpu.json").exists()
    assert "hard_select" in capsys.readouterr().out


@pytest.mark.slow
def test_tiled_memory_stops_after_the_tiles_asked_for():
    config = bench.bench_config("smoke")
    row = bench.tiled_memory(config, "hard_select", height=150, width=200, tile=64, overlap=16, max_tiles=2,
                             timeout=300)
    assert row["tiles_run"] == 2 and not row["complete"]
    assert row["tiles_total"] == 3 * 4  # tile starts (0, 48, 86) × (0, 48, 96, 136)
    assert row["peak_mib"] > row["peak_delta_mib"] > 0
    assert row["s_per_tile"] > 0


@pytest.mark.slow
def test_tuning_rows_compare_with_the_baseline(tmp_path):
    rows = bench.run_tuning("smoke", ["hard_select"], ["fused_layer_norm", "folded_selection"], rounds=1,
                            trainer=False)
    names = [row["variant"] for row in rows]
    assert names == ["baseline", "threads=1", "fused_layer_norm", "folded_selection"]
    assert rows[0]["ratio_to_baseline"] == 1.0
    assert all(row["max_abs_diff"] < 1e-5 for row in rows)
    assert all(row["reference"] == "threads=1" for row in rows[1:])
    path = bench.write_csv(rows, bench.TUNING_COLUMNS, tmp_path / "tuning.csv")
    assert list(pd.read_csv(path).columns) == list(bench.TUNING_COLUMNS)
