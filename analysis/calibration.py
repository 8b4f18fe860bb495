"""Calibration of the seed-level verdicts (:mod:`analysis.stats`) on simulated studies.

A simulated study has two settings evaluated on the same photos: value = image effect (shared by both
settings, a crossed factor) + a seed effect per setting and seed (each setting's training run) + a
residual per (setting, seed, image) + the true effect in the first setting. The default standard
deviations are of the order the committed cpu results measure (notebook 03, per task and mechanism,
mixed-model variance components: seed 0.1–1.3 dB, image 0.1–3.4 dB, residual 0.1–2.7 dB).
The rates are what :func:`analysis.stats.verdict_label` calls on such studies, not a property of the
real data, whose variance structure is only estimated from 3 seeds.
"""
from __future__ import annotations

import numpy as np

from analysis import stats

SEED_SD, IMAGE_SD, RESIDUAL_SD = 0.5, 1.5, 0.5  # dB


def simulate(n_studies: int, n_seeds: int, n_images: int, *, effect: float = 0.0, seed_sd: float = SEED_SD,
             image_sd: float = IMAGE_SD, residual_sd: float = RESIDUAL_SD,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two ``(n_studies, n_seeds, n_images)`` arrays of per-image values; the first is ``effect`` higher."""
    rng = np.random.default_rng(seed)
    image = rng.normal(0.0, image_sd, size=(n_studies, 1, n_images))
    a = image + rng.normal(0.0, seed_sd, size=(n_studies, n_seeds, 1)) \
        + rng.normal(0.0, residual_sd, size=(n_studies, n_seeds, n_images)) + effect
    b = image + rng.normal(0.0, seed_sd, size=(n_studies, n_seeds, 1)) \
        + rng.normal(0.0, residual_sd, size=(n_studies, n_seeds, n_images))
    return a, b


def verdict_rates(a: np.ndarray, b: np.ndarray, *, paired: bool = True, alpha: float = 0.05,
                  margin: float = stats.MARGINS["psnr"], n_boot: int = 1000, seed: int = 0) -> dict:
    """Share of simulated studies (one comparison each, a family of 1) per verdict, and how often the
    crossed bootstrap interval excludes 0."""
    n_seeds = a.shape[-2]
    tests = stats.seed_tests(a.mean(axis=-1), b.mean(axis=-1), paired=paired, margin=margin)
    labels = [stats.verdict_label(p, q, margin, alpha=alpha, n_seeds=n_seeds, family_size=1, paired=paired)
              for p, q in zip(tests["p_value"], tests["p_equivalence"])]
    lo, hi = stats.crossed_bootstrap(a, b, paired=paired, n_boot=n_boot, seed=seed, ci=1 - alpha)
    labels = np.asarray(labels)
    return {"different": float(np.mean(labels == "different")),
            "equivalent": float(np.mean(np.char.startswith(labels.astype(str), "equivalent"))),
            "inconclusive": float(np.mean(np.char.startswith(labels.astype(str), "inconclusive"))),
            "interval_excludes_0": float(np.mean((lo > 0) | (hi < 0))), "n_studies": int(a.shape[0])}
