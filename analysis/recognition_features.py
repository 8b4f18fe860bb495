"""Notebook 04's non-text recognisers: the features their linear readouts classify.

- **frequency cues** (AdaIR-style): FFT radial band energies, spectral slope, orientation and flatness
  statistics of each patch (:func:`frequency_features`);
- **implicit prompts** (PromptIR-style): the softmax weights over the learned prompt components at every
  fusion site of a trained ``implicit_prompt`` model, captured with forward hooks
  (:func:`implicit_prompt_weights`);

both read out by the same standardised logistic regression with its regularisation chosen by
cross-validation on the training features (:func:`fit_readout`). ``analysis.recognition`` builds the
patches and scores every recogniser on them.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch


# ----------------------------------------------------------------------------- frequency cues


def _as_nchw(images) -> np.ndarray:
    x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected images (N, 3, H, W), got shape {x.shape}")
    return x.astype(np.float64)


def frequency_feature_names(n_bands: int = 8, n_orientations: int = 4) -> list[str]:
    return (["dc_r", "dc_g", "dc_b", "log_ac_energy"] + [f"band_{i}" for i in range(n_bands)]
            + ["spectral_slope", "spectral_intercept"] + [f"orientation_{i}" for i in range(n_orientations)]
            + ["flatness", "flatness_high", "chroma_rg_high", "chroma_by_high"])


def frequency_features(images, n_bands: int = 8, n_orientations: int = 4) -> np.ndarray:
    """AdaIR-style frequency cues of each patch, ``(N, 4 + n_bands + 2 + n_orientations + 4)``.

    On the luminance, Hann-windowed and mean-removed: the log AC energy; the log share of the power in
    ``n_bands`` log-spaced radial bands (1/side to Nyquist); the slope and intercept of log band power
    against log frequency (natural images fall off as ~f^-2, noise flattens it, haze and blur steepen
    it); the share of mid-to-high-frequency power in ``n_orientations`` angular sectors (rain streaks are
    oriented); the spectral flatness overall and above a quarter of Nyquist. Also the DC of each colour
    (haze greys and brightens, low light darkens) and the high-band log energy of the two opponent
    chroma channels (sensor noise is colourful; streaks and haze are not).
    """
    x = _as_nchw(images)
    n, _, h, w = x.shape
    window = np.outer(np.hanning(h), np.hanning(w))
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    radius = np.sqrt(fy**2 + fx**2)
    angle = np.mod(np.arctan2(fy, fx), np.pi)
    eps = 1e-12

    def power(plane: np.ndarray) -> np.ndarray:  # (N, H, W) → (N, H, W) power spectrum
        centred = (plane - plane.mean(axis=(1, 2), keepdims=True)) * window
        return np.abs(np.fft.fft2(centred)) ** 2 / (h * w)

    luminance = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    spectrum = power(luminance)
    ac = radius > 0
    total = spectrum[:, ac].sum(axis=1) + eps
    edges = np.geomspace(1.0 / min(h, w), 0.5, n_bands + 1)
    band_power, band_mean, centres = [], [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (radius >= lo) & (radius < hi if hi < 0.5 else radius <= 0.5 * math.sqrt(2))
        band_power.append(spectrum[:, mask].sum(axis=1))
        band_mean.append(spectrum[:, mask].mean(axis=1) if mask.any() else np.zeros(n))
        centres.append(math.sqrt(lo * hi))
    band_share = np.log(np.stack(band_power, axis=1) / total[:, None] + eps)
    log_centres = np.log(centres)
    log_band = np.log(np.stack(band_mean, axis=1) + eps)
    slope, intercept = np.polyfit(log_centres, log_band.T, 1)
    high = radius >= 0.125
    sectors = []
    for k in range(n_orientations):
        lo, hi = k * np.pi / n_orientations, (k + 1) * np.pi / n_orientations
        sectors.append(spectrum[:, high & (angle >= lo) & (angle < hi)].sum(axis=1))
    sector_share = np.stack(sectors, axis=1) / (np.stack(sectors, axis=1).sum(axis=1, keepdims=True) + eps)

    def flatness(values: np.ndarray) -> np.ndarray:
        return np.exp(np.log(values + eps).mean(axis=1)) / (values.mean(axis=1) + eps)

    red, green, blue = x[:, 0], x[:, 1], x[:, 2]
    chroma = [power(red - green)[:, high].sum(axis=1), power(0.5 * (red + green) - blue)[:, high].sum(axis=1)]
    features = np.column_stack([
        x.mean(axis=(2, 3)),  # DC per colour
        np.log(total),
        band_share,
        slope, intercept,
        sector_share,
        flatness(spectrum[:, ac]), flatness(spectrum[:, high]),
        np.log(chroma[0] + eps), np.log(chroma[1] + eps),
    ])
    return features.astype(np.float64)


# ----------------------------------------------------------------------------- linear readout


def fit_readout(features: np.ndarray, labels: Sequence[str], seed: int = 0, folds: int = 5):
    """Standardise, then multinomial logistic regression with the inverse regularisation C chosen from
    10^-2 … 10^2 by stratified ``folds``-fold cross-validation on the training features (fewer folds when
    a class has fewer examples). Returns the fitted scikit-learn pipeline."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    if features.ndim != 2 or len(features) != len(labels):
        raise ValueError(f"features must be (N, D) with one label per row; got {features.shape} and {len(labels)}")
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise ValueError(f"a readout needs at least two classes, got {classes.tolist()}")
    k = int(min(folds, counts.min()))
    if k >= 2:
        cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        classifier = LogisticRegressionCV(Cs=np.logspace(-2, 2, 5), cv=cv, max_iter=500, tol=1e-3, random_state=seed,
                                          **_current_cv_defaults())
    else:
        classifier = LogisticRegression(max_iter=500, tol=1e-3, random_state=seed)
    return make_pipeline(StandardScaler(), classifier).fit(features, labels)


def _current_cv_defaults() -> dict:
    """Plain L2 and accuracy scoring, said explicitly where scikit-learn >= 1.8 warns that its defaults
    will change (older versions lack these arguments and already behave so)."""
    import inspect

    from sklearn.linear_model import LogisticRegressionCV

    parameters = inspect.signature(LogisticRegressionCV).parameters
    wanted = {"l1_ratios": (0.0,), "scoring": "accuracy", "use_legacy_attributes": False}
    return {k: v for k, v in wanted.items() if k in parameters and parameters[k].default == "warn"}


# ----------------------------------------------------------------------------- implicit prompts


def implicit_sites(model) -> dict[str, torch.nn.Module]:
    """Site → ``ImplicitPrompt`` module, for the sites of ``model`` that carry one."""
    from csnet.models.fusion import ImplicitPrompt

    sites = {name: site.fusion for name, site in model.fusion_sites.items() if isinstance(site.fusion, ImplicitPrompt)}
    if not sites:
        raise ValueError(f"the model has no implicit_prompt site (fusion {getattr(model.config, 'fusion', '?')!r})")
    return sites


@torch.inference_mode()
def implicit_prompt_weights(model, images: torch.Tensor, batch_size: int = 64) -> tuple[np.ndarray, list[str]]:
    """The softmax weights over the learned prompt components at every implicit-prompt site, captured
    by forward hooks on each site's ``component_weights`` layer while the model restores ``images``.

    Returns ``(features (N, sites × prompt_len), column names "site/w<i>")``."""
    sites = implicit_sites(model)
    captured: dict[str, list[torch.Tensor]] = {name: [] for name in sites}
    handles = []
    for name, fusion in sites.items():
        def hook(module, inputs, output, name=name):
            captured[name].append(output.float().softmax(dim=1).cpu())  # (B, prompt_len)
        handles.append(fusion.component_weights.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        for start in range(0, len(images), batch_size):
            model(images[start:start + batch_size].to(device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    columns = [f"{name}/w{i}" for name in sites for i in range(captured[name][0].shape[1])]
    features = torch.cat([torch.cat(captured[name]) for name in sites], dim=1).numpy()
    return features, columns
