"""Classical reference restorers: numbers that put the learned models in context, not learned methods.

Each is run on the very test images the networks see (``csnet.data.test_set``) and scored the same way
(``csnet.metrics.score``), and every row it produces is labelled as a reference:

- the degraded input itself (the floor: what "restoring nothing" scores), for every task;
- scikit-image's non-local means (Buades et al. 2005) and BayesShrink wavelet denoising (Chang et al.
  2000) for tasks with noise; σ comes from the task key when it names one (``denoise_25`` → 25/255),
  else from ``skimage.restoration.estimate_sigma``;
- the dark channel prior dehazer of He, Sun and Tang (CVPR 2009) for tasks with haze, written here
  (:func:`dark_channel_prior`), its transmission refined by the guided filter of He, Sun and Tang
  (ECCV 2010) or by a box filter.

Images are numpy ``float32`` H×W×3 in [0, 1] (the suite's convention).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import ndimage

REFERENCE_KIND = "reference (not learned)"


# ------------------------------------------------------------------------------------ noise


def noise_sigma(task: str, image: np.ndarray | None = None) -> float:
    """σ of the task's Gaussian noise on the [0, 1] scale: from the key when it names one
    (``denoise_15`` → 15/255), else estimated from ``image`` (``estimate_sigma``, averaged over
    channels). Raises ``ValueError`` when neither is possible."""
    from csnet.degrade import components

    for _, primitive, fixed in components(task):
        if primitive == "noise" and "sigma" in fixed:
            return float(fixed["sigma"]) / 255.0
    if image is None:
        raise ValueError(f"task {task!r} names no noise level; pass the image to estimate σ from it")
    from skimage.restoration import estimate_sigma

    return float(estimate_sigma(image, channel_axis=-1, average_sigmas=True))


def nl_means(image: np.ndarray, sigma: float, *, patch_size: int = 5, patch_distance: int = 6,
             h_factor: float = 0.8) -> np.ndarray:
    """Non-local means (scikit-image, fast mode) with the noise σ known; ``h = h_factor · σ``, the
    filtering strength scikit-image's documentation recommends when σ is passed."""
    from skimage.restoration import denoise_nl_means

    restored = denoise_nl_means(image, h=h_factor * sigma, sigma=sigma, patch_size=patch_size,
                                patch_distance=patch_distance, fast_mode=True, channel_axis=-1)
    return np.clip(restored, 0, 1).astype(np.float32)


def wavelet(image: np.ndarray, sigma: float) -> np.ndarray:
    """BayesShrink soft-threshold wavelet denoising (scikit-image) in YCbCr, σ known."""
    from skimage.restoration import denoise_wavelet

    restored = denoise_wavelet(image, sigma=sigma, method="BayesShrink", mode="soft", channel_axis=-1,
                               convert2ycbcr=True, rescale_sigma=True)
    return np.clip(restored, 0, 1).astype(np.float32)


# -------------------------------------------------------------------------------------- haze


def dark_channel(image: np.ndarray, patch: int) -> np.ndarray:
    """min over colours, then min over a ``patch``×``patch`` window: He et al.'s dark channel (H×W)."""
    return ndimage.minimum_filter(image.min(axis=2), size=patch, mode="nearest")


def atmospheric_light(image: np.ndarray, dark: np.ndarray, top_fraction: float = 0.001) -> np.ndarray:
    """He et al.'s estimate of the atmospheric light A (3,): among the ``top_fraction`` brightest
    pixels of the dark channel, the input pixel of highest intensity (sum over colours)."""
    flat_dark = dark.reshape(-1)
    count = max(1, int(round(top_fraction * flat_dark.size)))
    candidates = np.argpartition(flat_dark, -count)[-count:]
    pixels = image.reshape(-1, 3)[candidates]
    return pixels[np.argmax(pixels.sum(axis=1))].astype(np.float64)


def box_mean(image: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)² window, edges replicated (the guided filter's box filter)."""
    return ndimage.uniform_filter(image, size=2 * radius + 1, mode="nearest")


def guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """The grey-guide guided filter (He, Sun and Tang, "Guided Image Filtering", ECCV 2010, Alg. 1):
    ``q = mean(a)·I + mean(b)`` with ``a = cov(I, p) / (var(I) + eps)``, ``b = mean(p) − a·mean(I)``."""
    mean_i = box_mean(guide, radius)
    mean_p = box_mean(source, radius)
    cov_ip = box_mean(guide * source, radius) - mean_i * mean_p
    var_i = box_mean(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_mean(a, radius) * guide + box_mean(b, radius)


def default_patch(height: int, width: int) -> int:
    """The dark channel's window for an image this size: He et al. use 15 px on images of about
    600×400; we keep that ratio (shorter side / 27), odd, between 3 and 15."""
    return min(15, max(3, int(round(min(height, width) / 27)))) | 1


def dark_channel_prior(image: np.ndarray, *, patch: int | None = None, omega: float = 0.95,
                       t0: float = 0.1, top_fraction: float = 0.001, refine: str = "guided",
                       radius: int | None = None, eps: float = 1e-3) -> np.ndarray:
    """Single-image dehazing by the dark channel prior.

    He, K., Sun, J. and Tang, X. "Single Image Haze Removal Using Dark Channel Prior", CVPR 2009
    (TPAMI 2011). With the haze model ``I = J·t + A·(1 − t)``:

    1. dark channel of ``I`` over ``patch``×``patch`` windows (:func:`default_patch` when None);
    2. atmospheric light ``A`` from the brightest ``top_fraction`` (0.1%) of the dark channel
       (:func:`atmospheric_light`);
    3. transmission ``t̃ = 1 − ω · dark(I / A)`` with ``ω = 0.95`` (a little haze is kept for depth);
    4. refinement of ``t̃``: ``"guided"`` — the guided filter with the grey input as guide (the
       paper's later replacement of soft matting; radius ``4·patch`` and ε = 1e-3 by default),
       ``"box"`` — a box mean of the same radius, or ``"none"``;
    5. ``J = (I − A) / max(t, t0) + A`` with ``t0 = 0.1``, clipped to [0, 1].
    """
    refinements = ("guided", "box", "none")
    if refine not in refinements:
        raise ValueError(f"refine must be one of {refinements}, got {refine!r}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"dark_channel_prior needs an H×W×3 image, got shape {image.shape}")
    hazy = np.asarray(image, dtype=np.float64)
    patch = patch or default_patch(*hazy.shape[:2])
    airlight = atmospheric_light(hazy, dark_channel(hazy, patch), top_fraction)
    transmission = 1.0 - omega * dark_channel(hazy / np.maximum(airlight, 1e-6), patch)
    radius = radius if radius is not None else 4 * patch
    if refine == "guided":
        transmission = guided_filter(hazy.mean(axis=2), transmission, radius, eps)
    elif refine == "box":
        transmission = box_mean(transmission, radius)
    transmission = np.maximum(transmission, t0)[:, :, None]
    restored = (hazy - airlight) / transmission + airlight
    return np.clip(restored, 0, 1).astype(np.float32)


# ---------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Reference:
    """A reference restorer: its table name, which tasks it applies to, and how it restores."""

    name: str
    applies_to: Callable[[str], bool]
    restore: Callable[[np.ndarray, str], np.ndarray]
    requires: tuple[str, ...] = ()  # importable modules it needs beyond the project's dependencies

    def missing(self) -> list[str]:
        """The modules in ``requires`` that cannot be imported here."""
        import importlib.util

        return [module for module in self.requires if importlib.util.find_spec(module) is None]


def _has(primitive: str) -> Callable[[str], bool]:
    def check(task: str) -> bool:
        from csnet.degrade import components

        return any(p == primitive for _, p, _ in components(task))

    return check


REFERENCES: dict[str, Reference] = {
    ref.name: ref
    for ref in (
        Reference("degraded input", lambda task: True, lambda image, task: image),
        Reference("NL-means (scikit-image)", _has("noise"),
                  lambda image, task: nl_means(image, noise_sigma(task, image))),
        Reference("wavelet BayesShrink (scikit-image)", _has("noise"),
                  lambda image, task: wavelet(image, noise_sigma(task, image)), requires=("pywt",)),
        Reference("dark channel prior (He et al. 2009)", _has("haze"),
                  lambda image, task: dark_channel_prior(image)),
    )
}


def evaluate_references(tasks: Sequence[str], references: Sequence[str] | None = None, *,
                        test_source: str = "corpus", max_images: int | None = None,
                        max_side: int | None = None, seed: int = 0, split: str = "test") -> pd.DataFrame:
    """One row per (reference, task, image) on ``csnet.data.test_set``'s images of ``split`` (``"test"``
    or ``"val"``): ``method``, ``task``,
    ``label``, ``image``, ``psnr``, ``ssim``, ``kind`` (= :data:`REFERENCE_KIND`). A reference is run
    only on the tasks it applies to; ``references`` names a subset of :data:`REFERENCES`. A reference
    whose optional module is missing (scikit-image's wavelets need PyWavelets) is skipped with a
    warning that names the package; :func:`unavailable` says which."""
    from csnet.data import test_set
    from csnet.degrade import label_of
    from csnet.metrics import score

    names = list(REFERENCES) if references is None else list(references)
    unknown = [name for name in names if name not in REFERENCES]
    if unknown:
        raise ValueError(f"unknown reference(s) {unknown}; known: {list(REFERENCES)}")
    skipped = unavailable(names)
    for name, modules in skipped.items():
        warnings.warn(f"reference {name!r} skipped: module(s) {modules} not installed "
                      "(PyWavelets provides pywt: pip install PyWavelets)", stacklevel=2)
    names = [name for name in names if name not in skipped]
    rows = []
    for task in tasks:
        chosen = [REFERENCES[name] for name in names if REFERENCES[name].applies_to(task)]
        if not chosen:
            continue
        for item in test_set(task, source=test_source, seed=seed, max_images=max_images, max_side=max_side,
                             split=split):
            for ref in chosen:
                scores = score(ref.restore(item.degraded, task), item.clean)
                rows.append({"method": ref.name, "task": task, "label": label_of(task), "image": item.name,
                             "psnr": float(scores["psnr"]), "ssim": float(scores["ssim"]),
                             "kind": REFERENCE_KIND})
    return pd.DataFrame(rows, columns=["method", "task", "label", "image", "psnr", "ssim", "kind"])


def unavailable(references: Sequence[str] | None = None) -> dict[str, list[str]]:
    """reference name → its missing modules, for the references (default all) that cannot run here."""
    names = list(REFERENCES) if references is None else list(references)
    return {name: REFERENCES[name].missing() for name in names if REFERENCES[name].missing()}


def applicable(tasks: Sequence[str]) -> Mapping[str, list[str]]:
    """reference name → the tasks (of ``tasks``) it applies to."""
    return {name: [t for t in tasks if ref.applies_to(t)] for name, ref in REFERENCES.items()}
