"""analysis.classical: the reference restorers do what they are known to do on real photos."""
from __future__ import annotations

import numpy as np
import pytest

from analysis import classical
from csnet.degrade import degrade
from csnet.metrics import psnr


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from skimage import data

    return (data.astronaut()[::4, ::4] / 255.0).astype(np.float32)  # 128×128 photo shipped with scikit-image


def test_noise_sigma_from_key_or_estimate(photo):
    assert classical.noise_sigma("denoise_50") == pytest.approx(50 / 255)
    noisy, _ = degrade(photo, "noise", seed=0)  # σ = 25, not named by the key
    assert classical.noise_sigma("noise", noisy) == pytest.approx(25 / 255, rel=0.25)
    with pytest.raises(ValueError, match="names no noise level"):
        classical.noise_sigma("derain")


@pytest.mark.parametrize("task", ["denoise_15", "denoise_50"])
def test_nl_means_improves_psnr_on_a_noisy_photo(photo, task):
    noisy, _ = degrade(photo, task, seed=1)
    restored = classical.nl_means(noisy, classical.noise_sigma(task))
    assert restored.shape == photo.shape and restored.dtype == np.float32
    assert psnr(restored, photo) > psnr(noisy, photo) + 2.0


def test_wavelet_improves_psnr_on_a_noisy_photo(photo):
    pytest.importorskip("pywt", reason="scikit-image's wavelet denoising needs PyWavelets")
    noisy, _ = degrade(photo, "denoise_25", seed=2)
    assert psnr(classical.wavelet(noisy, 25 / 255), photo) > psnr(noisy, photo) + 2.0


@pytest.mark.parametrize("refine", ["guided", "box"])
def test_dark_channel_prior_improves_psnr_on_synthetic_haze(photo, refine):
    hazy, _ = degrade(photo, "dehaze", seed=0, beta=1.5, airlight=0.95)
    restored = classical.dark_channel_prior(hazy, refine=refine)
    assert restored.shape == photo.shape and 0 <= restored.min() and restored.max() <= 1
    assert psnr(restored, photo) > psnr(hazy, photo) + 3.0


def test_dark_channel_pieces():
    image = np.full((20, 30, 3), 0.5, dtype=np.float64)
    image[5, 7] = [0.9, 0.95, 1.0]
    image[:, :, 0][10, 10] = 0.0
    dark = classical.dark_channel(image, 3)
    assert dark.shape == (20, 30) and dark[10, 10] == 0.0 and dark[9:12, 9:12].max() == 0.0
    airlight = classical.atmospheric_light(image, image.min(axis=2), top_fraction=1 / 600)
    np.testing.assert_allclose(airlight, [0.9, 0.95, 1.0])
    # a constant guide has no edges to keep: the filter is the box mean of the box mean of the source
    source = np.random.default_rng(0).random((20, 30))
    np.testing.assert_allclose(classical.guided_filter(np.ones((20, 30)), source, 2, 1e-3),
                               classical.box_mean(classical.box_mean(source, 2), 2), atol=1e-9)
    # the guide itself as the source comes back almost unchanged (edge-preserving) for a small eps
    guide = np.random.default_rng(1).random((20, 30))
    np.testing.assert_allclose(classical.guided_filter(guide, guide, 2, 1e-6), guide, atol=1e-3)
    assert classical.default_patch(400, 600) == 15 and classical.default_patch(64, 64) == 3
    assert classical.default_patch(128, 128) % 2 == 1
    with pytest.raises(ValueError, match="refine"):
        classical.dark_channel_prior(image, refine="matting")


def test_registry_applies_by_degradation():
    applies = classical.applicable(["denoise_25", "derain", "dehaze", "rain+haze"])
    assert applies["degraded input"] == ["denoise_25", "derain", "dehaze", "rain+haze"]
    assert applies["NL-means (scikit-image)"] == ["denoise_25"]
    assert applies["dark channel prior (He et al. 2009)"] == ["dehaze", "rain+haze"]


def test_evaluate_references_on_test_images():
    table = classical.evaluate_references(["denoise_50", "derain"], max_images=1, max_side=64,
                                          references=["degraded input", "NL-means (scikit-image)"])
    assert set(table["kind"]) == {classical.REFERENCE_KIND}
    assert sorted(zip(table["task"], table["method"])) == [
        ("denoise_50", "NL-means (scikit-image)"), ("denoise_50", "degraded input"), ("derain", "degraded input")]
    by = table.set_index(["task", "method"])["psnr"]
    assert by[("denoise_50", "NL-means (scikit-image)")] > by[("denoise_50", "degraded input")]
    with pytest.raises(ValueError, match="unknown reference"):
        classical.evaluate_references(["derain"], references=["BM3D"])
