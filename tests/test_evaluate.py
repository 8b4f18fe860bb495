"""Evaluation: tiled inference matches whole-image inference; the tidy per-image table."""
from __future__ import annotations


import numpy as np
import pytest
import torch
from torch import nn

from csnet.evaluate import (
    COLUMNS,
    blend_window,
    evaluate,
    recognition_accuracy,
    restore_image,
    summarise,
    tile_starts,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class LocalNet(nn.Module):
    """A purely local stand-in (receptive field 5×5): tiling with overlap ≥ 2 must be exact."""

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")
        self.conv2 = nn.Conv2d(4, 3, 3, padding=1, padding_mode="reflect")
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)

    def forward(self, x, prompt):
        return x + 0.1 * self.conv2(torch.tanh(self.conv1(x))) + prompt[:, :1, None, None] * 0


def _image(h=70, w=90, seed=0):
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


def test_tile_starts_cover_the_image():
    for length, tile, overlap in [(100, 32, 8), (64, 64, 8), (65, 64, 8), (10, 32, 8)]:
        starts = tile_starts(length, tile, overlap)
        covered = np.zeros(length, bool)
        for s in starts:
            covered[s:s + tile] = True
        assert covered.all() and starts[0] == 0 and max(starts) + min(tile, length) == length


def test_blend_window_is_positive_and_flat_inside():
    w = blend_window(32, 8, at_start=False, at_end=False)
    assert (w >= 0).all() and torch.all(w[8:24] == 1) and w[0] == 0 and w[2] < w[5]
    assert torch.all(blend_window(32, 8, at_start=True, at_end=True) == 1)


def test_tiled_equals_untiled_for_a_local_network():
    net, image = LocalNet().eval(), _image()
    prompt = torch.zeros(1, 512)
    whole = restore_image(net, image, prompt)
    tiled = restore_image(net, image, prompt, tile=32, overlap=12)
    assert whole.shape == tiled.shape == image.shape and whole.dtype == np.float32
    # outside the reflect-padded border strips of each tile, overlapping tiles agree exactly
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_tiled_is_close_to_untiled_for_the_real_network():
    from csnet.models import ModelConfig, build_model

    net = build_model(ModelConfig.tiny(fusion="hard_select")).eval()
    image = _image(64, 80)
    prompt = torch.nn.functional.normalize(torch.randn(1, 512, generator=torch.Generator().manual_seed(1)), dim=1)
    whole = restore_image(net, image, prompt)
    same = restore_image(net, image, prompt, tile=128, overlap=16)  # one tile: identical
    np.testing.assert_array_equal(whole, same)
    tiled = restore_image(net, image, prompt, tile=48, overlap=16)
    mse = float(np.mean((tiled - whole) ** 2))
    assert 10 * np.log10(1 / max(mse, 1e-12)) > 35  # global channel statistics differ per tile


def test_restore_image_accepts_tensors():
    net = LocalNet().eval()
    x = torch.from_numpy(_image(40, 40)).permute(2, 0, 1)[None]
    out = restore_image(net, x, torch.zeros(512), tile=24, overlap=8)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1


# --------------------------------------------------------------------------------------------------
# The per-image table on a tiny trained run


@pytest.mark.slow
def test_evaluate_returns_the_tidy_table(tiny_run):
    tasks = ["denoise_25", "derain"]
    table = evaluate(tiny_run, tasks, prompt_source="image", max_images=2, max_side=32)
    assert list(table.columns) == COLUMNS and len(table) == 4
    assert list(table["task"].unique()) == tasks
    assert table["psnr"].between(3, 80).all() and table["ssim"].between(-1, 1).all()
    assert table["correct"].dtype == bool and table["confidence"].between(0, 1).all()
    assert set(table["predicted"]) <= set(tiny_run.labels)
    assert (table["prompt_source"] == "image").all() and table["forced"].isna().all()
    assert (table["run"] == tiny_run.id).all() and (table["fusion"] == "hard_select").all()
    assert (table["height"] <= 32).all()
    assert (table["split"] == "test").all() and (table["prompt_tile"] == 16).all()

    text = evaluate(tiny_run, ["derain"], prompt_source="text", max_images=1, max_side=32)
    forced = evaluate(tiny_run, ["derain"], prompt_source="text", force="noise", max_images=1, max_side=32)
    every = evaluate(tiny_run, ["derain"], prompt_source="text", force="all", max_images=1, max_side=32)
    assert forced["forced"].tolist() == ["noise"] and every["forced"].tolist() == ["all"]
    assert text["image"].tolist() == forced["image"].tolist()
    assert summarise(table)["images"].tolist() == [2, 2]
    accuracy = recognition_accuracy(table)
    assert set(accuracy["label"]) == {"noise", "rain"} and accuracy["accuracy"].between(0, 1).all()


@pytest.mark.slow
def test_evaluate_on_the_validation_split_uses_the_validation_photos(tiny_run):
    from csnet.corpus import photo_names

    val = evaluate(tiny_run, ["denoise_25"], max_images=2, max_side=32, split="val")
    assert val["image"].tolist() == photo_names("val")[:2] and (val["split"] == "val").all()
    test = evaluate(tiny_run, ["denoise_25"], max_images=2, max_side=32)
    assert test["image"].tolist() == photo_names("test")[:2] and (test["split"] == "test").all()
    with pytest.raises(ValueError, match="split must be one of"):
        evaluate(tiny_run, ["denoise_25"], max_images=1, split="train")


def test_evaluate_names_bad_arguments():
    with pytest.raises(ValueError, match="prompt_source"):
        evaluate(object(), ["derain"], prompt_source="oracle")
