"""csnet.metrics: parity with direct scikit-image calls made the way PromptIR makes them."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from csnet.corpus import load_photo
from csnet.metrics import crop_multiple, psnr, score, score_batch, ssim


def _promptir_crop(image: np.ndarray, base: int = 16) -> np.ndarray:
    """PromptIR's utils/image_utils.crop_img, written out."""
    h, w = image.shape[:2]
    crop_h, crop_w = h % base, w % base
    return image[crop_h // 2:h - crop_h + crop_h // 2, crop_w // 2:w - crop_w + crop_w // 2]


@pytest.fixture(scope="module")
def pair():
    """A real photo (odd size, not a multiple of 16) and a noisy version reaching outside [0, 1]."""
    clean = load_photo("chelsea")[:147, :203]
    noisy = clean + np.random.default_rng(0).normal(0, 0.08, clean.shape).astype(np.float32)
    return noisy, clean


def _reference(restored, clean):
    r = np.clip(_promptir_crop(restored), 0, 1).astype(np.float32)
    c = np.clip(_promptir_crop(clean), 0, 1).astype(np.float32)
    return (peak_signal_noise_ratio(c, r, data_range=1),
            structural_similarity(r, c, data_range=1, channel_axis=-1))


def test_psnr_and_ssim_match_skimage_on_the_promptir_crop(pair):
    restored, clean = pair
    expected_psnr, expected_ssim = _reference(restored, clean)
    assert psnr(restored, clean) == expected_psnr
    assert ssim(restored, clean) == expected_ssim
    assert score(restored, clean) == {"psnr": expected_psnr, "ssim": expected_ssim}
    assert 15 < expected_psnr < 30 and 0.2 < expected_ssim < 0.9  # a real, noisy pair


def test_without_crop_the_whole_image_is_scored(pair):
    restored, clean = pair
    r, c = np.clip(restored, 0, 1), np.clip(clean, 0, 1)
    assert psnr(restored, clean, crop=False) == peak_signal_noise_ratio(c, r, data_range=1)
    assert ssim(restored, clean, crop=False) == structural_similarity(r, c, data_range=1, channel_axis=-1)
    assert psnr(restored, clean, crop=False) != psnr(restored, clean)


def test_values_are_clipped_not_requantised():
    clean = np.full((32, 32, 3), 0.5, dtype=np.float32)
    restored = clean + 0.1  # a uniform error of 0.1 is 20 dB exactly
    assert psnr(restored, clean) == pytest.approx(20.0, abs=1e-5)
    # 0.5 + 1/1000 would round back to 0.5 on 8 bits: a float pipeline keeps the difference.
    assert np.isfinite(psnr(clean + 1e-3, clean))
    # Clipping: anything above 1 counts as 1.
    assert psnr(np.full_like(clean, 7.0), np.ones_like(clean)) == np.inf


def test_identical_images_score_infinite_psnr_and_ssim_one():
    image = load_photo("kodim23")[:64, :64]
    result = score(image, image.copy())
    assert result["psnr"] == np.inf and result["ssim"] == pytest.approx(1.0)


def test_crop_multiple_is_promptir_crop():
    image = np.arange(37 * 50 * 3).reshape(37, 50, 3)
    cropped = crop_multiple(image, 16)
    assert cropped.shape == (32, 48, 3)
    np.testing.assert_array_equal(cropped, _promptir_crop(image))
    np.testing.assert_array_equal(cropped, image[2:34, 1:49])
    same = np.zeros((64, 48, 3))
    assert crop_multiple(same).shape == (64, 48, 3)


def test_too_small_for_ssim_window_says_so():
    tiny = np.zeros((6, 20, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"7×7 window needs images of at least 7 px.*6×20"):
        ssim(tiny, tiny, crop=False)
    with pytest.raises(ValueError, match="7×7"):
        score(tiny, tiny, crop=False)
    assert np.isfinite(ssim(np.zeros((7, 7, 3)), np.full((7, 7, 3), 0.5), crop=False))


def test_too_small_for_the_crop_says_so():
    small = np.zeros((10, 40, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"10×40 px cannot be centre-cropped to a multiple of 16"):
        psnr(small, small)


def test_mismatched_or_wrong_shapes_are_refused():
    with pytest.raises(ValueError, match="must match"):
        psnr(np.zeros((32, 32, 3)), np.zeros((32, 48, 3)))
    with pytest.raises(ValueError, match="H×W×C"):
        ssim(np.zeros((32, 32)), np.zeros((32, 32)))
    with pytest.raises(ValueError, match="B×C×H×W"):
        score_batch(torch.zeros(3, 32, 32), torch.zeros(3, 32, 32))
    with pytest.raises(ValueError, match="must match"):
        score_batch(torch.zeros(1, 3, 32, 32), torch.zeros(2, 3, 32, 32))


def test_score_batch_scores_each_image_of_a_torch_batch(pair):
    restored, clean = pair
    restored, clean = _promptir_crop(restored), _promptir_crop(clean)
    batch_r = torch.from_numpy(np.stack([restored, clean + 0.05])).permute(0, 3, 1, 2)
    batch_c = torch.from_numpy(np.stack([clean, clean])).permute(0, 3, 1, 2)
    scores = score_batch(batch_r, batch_c)
    assert len(scores) == 2
    assert scores[0] == score(restored, clean)
    assert scores[1] == score(clean + 0.05, clean)
    assert score_batch(batch_r.numpy(), batch_c.numpy()) == scores  # numpy batches too
