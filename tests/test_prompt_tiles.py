"""P_v at the scale it was trained: tiles of the training patch size, one code path for every caller."""
from __future__ import annotations


import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from csnet import evaluate as ev
from csnet.evaluate import image_prompts, prompt_tile_side, prompt_tiles


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class ConstantEncoder(nn.Module):
    """Every image, whatever its size, gets the same unit prompt."""

    def __init__(self):
        super().__init__()
        self.prompt = nn.Parameter(F.normalize(torch.arange(1.0, 513.0), dim=0), requires_grad=False)

    def forward(self, image):
        return self.prompt.expand(image.shape[0], -1)


class SizeEncoder(nn.Module):
    """A prompt that depends on the input's side (as a CNN's pooled statistics do on scale)."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1), requires_grad=False)

    def forward(self, image):
        out = torch.zeros(image.shape[0], 512)
        out[:, 0], out[:, 1] = 1.0, image.shape[-1] / 10
        return F.normalize(out, dim=1)


@pytest.mark.parametrize("height, width, tile", [(70, 90, 16), (32, 32, 16), (33, 17, 16), (10, 50, 16),
                                                 (8, 8, 16), (128, 128, 32), (256, 200, 48)])
def test_prompt_tiles_cover_the_image_and_stay_inside(height, width, tile):
    covered = np.zeros((height, width), dtype=int)
    boxes = prompt_tiles(height, width, tile)
    for top, left, h, w in boxes:
        assert (h, w) == (min(tile, height), min(tile, width))
        assert 0 <= top and top + h <= height and 0 <= left and left + w <= width
        covered[top:top + h, left:left + w] += 1
    assert covered.min() >= 1
    assert len(boxes) == -(-height // tile) * -(-width // tile)  # the fewest tiles that cover it


def test_a_constant_encoder_gives_the_same_prompt_tiled_and_whole():
    image = np.random.default_rng(0).random((70, 90, 3), dtype=np.float32)
    encoder = ConstantEncoder()
    whole = image_prompts(encoder, [image])
    tiled = image_prompts(encoder, [image], tile=16)
    torch.testing.assert_close(tiled, whole)
    assert whole.shape == (1, 512)


def test_tiling_is_what_the_encoder_sees():
    image = np.random.default_rng(0).random((64, 96, 3), dtype=np.float32)
    encoder = SizeEncoder()
    whole = image_prompts(encoder, [image])
    tiled = image_prompts(encoder, [image], tile=32)
    torch.testing.assert_close(tiled, encoder(torch.zeros(1, 3, 32, 32)))  # every tile is 32 wide
    assert not torch.allclose(tiled, whole)
    batch = torch.from_numpy(image).permute(2, 0, 1)[None].repeat(3, 1, 1, 1)
    torch.testing.assert_close(image_prompts(encoder, batch, tile=32), tiled.repeat(3, 1))


def test_a_batch_of_patches_no_larger_than_the_tile_is_encoded_in_one_pass():
    calls = []
    encoder = ConstantEncoder()
    encoder.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    patches = torch.rand(5, 3, 16, 12, generator=torch.Generator().manual_seed(0))
    assert image_prompts(encoder, patches, tile=16).shape == (5, 512) and calls == [5]


def test_more_tiles_than_one_pass_average_alike(monkeypatch):
    image = torch.rand(1, 3, 80, 80, generator=torch.Generator().manual_seed(1))
    encoder = nn.Sequential(nn.Conv2d(3, 512, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    all_at_once = image_prompts(encoder, image, tile=8)  # 100 tiles
    monkeypatch.setattr(ev, "PROMPT_TILE_BATCH", 7)
    torch.testing.assert_close(image_prompts(encoder, image, tile=8), all_at_once)


def test_prompt_tile_side_resolves_the_choices():
    assert prompt_tile_side("train", 48) == 48
    assert prompt_tile_side("whole", 48) is None
    assert prompt_tile_side(64, 48) == 64
    for bad in ("patch", 0, -3, 2.5, True):
        with pytest.raises(ValueError, match=r"prompt_tile must be one of \('train', 'whole'\)"):
            prompt_tile_side(bad, 48)


# --------------------------------------------------------------------------------------------------
# On a tiny trained run: evaluate, Run.prompts and csnet restore all use the tiled P_v


@pytest.fixture
def prompts_given(monkeypatch):
    """Records the prompt every ``restore_image`` call receives."""
    given = []
    real = ev.restore_image

    def spy(model, image, prompt, *args, **kwargs):
        given.append(prompt.detach().cpu().reshape(1, -1).clone())
        return real(model, image, prompt, *args, **kwargs)
    monkeypatch.setattr(ev, "restore_image", spy)
    return given


@pytest.mark.slow
def test_run_prompts_default_to_the_training_patch_size(tiny_run):
    images = [np.random.default_rng(k).random((40, 56, 3), dtype=np.float32) for k in range(2)]
    encoder, side = tiny_run.image_encoder, tiny_run.config.patch_size
    assert side == 16
    tiled, whole = image_prompts(encoder, images, tile=side), image_prompts(encoder, images)
    assert not torch.allclose(tiled, whole, atol=1e-4)
    torch.testing.assert_close(tiny_run.prompts([], source="image", images=images), tiled)
    torch.testing.assert_close(tiny_run.prompts([], source="image", images=images, tile="whole"), whole)
    torch.testing.assert_close(tiny_run.prompts([], source="image", images=images, tile=20),
                               image_prompts(encoder, images, tile=20))
    labels, _ = tiny_run.recognise(images)
    nearest = (F.normalize(tiled, dim=1) @ F.normalize(tiny_run.anchors, dim=1).T).argmax(1)
    assert labels == [tiny_run.labels[int(i)] for i in nearest]


@pytest.mark.slow
def test_evaluate_gives_the_tiled_prompt_and_records_it(tiny_run, prompts_given):
    from csnet.data import test_set

    tiled = ev.evaluate(tiny_run, ["derain"], prompt_source="image", max_images=2, max_side=48)
    images = test_set("derain", max_images=2, max_side=48)
    expected = image_prompts(tiny_run.image_encoder, [im.degraded for im in images], tile=16)
    torch.testing.assert_close(torch.cat(prompts_given), expected)
    assert tiled["prompt_tile"].tolist() == [16, 16]
    nearest = (expected @ F.normalize(tiny_run.anchors, dim=1).T).argmax(1)
    assert tiled["predicted"].tolist() == [tiny_run.labels[int(i)] for i in nearest]

    prompts_given.clear()
    whole = ev.evaluate(tiny_run, ["derain"], prompt_source="image", max_images=2, max_side=48,
                        prompt_tile="whole")
    torch.testing.assert_close(torch.cat(prompts_given),
                               image_prompts(tiny_run.image_encoder, [im.degraded for im in images]))
    assert whole["prompt_tile"].tolist() == [0, 0]


@pytest.mark.slow
def test_csnet_restore_uses_the_tiled_prompt(tiny_run, prompts_given, tmp_path, capsys):
    from csnet.cli import main
    from csnet.io import read_image, write_image

    photo, restored = tmp_path / "photo.png", tmp_path / "restored.png"
    write_image(photo, np.random.default_rng(0).random((40, 56, 3), dtype=np.float32))
    assert main(["restore", str(photo), "-o", str(restored), "--run", str(tiny_run.dir)]) == 0
    expected = image_prompts(tiny_run.image_encoder, [read_image(photo)], tile=16)
    torch.testing.assert_close(prompts_given[0], expected)
    label, _ = tiny_run.recognise([read_image(photo)])
    assert f"recognised degradation: {label[0]} " in capsys.readouterr().out
