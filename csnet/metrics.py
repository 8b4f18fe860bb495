"""PSNR and SSIM exactly as PromptIR, AdaIR and InstructIR report them.

The field's protocol (PROTOCOL.md, "Tasks, data and metrics"):

- both images centre-cropped to a multiple of 16 pixels per side, the crop PromptIR's ``crop_img``
  makes (the odd remainder pixel goes to the bottom/right);
- both clipped to [0, 1] as float32, **not** re-quantised to 8 bits;
- scikit-image on **RGB** (not the Y channel): ``peak_signal_noise_ratio(clean, restored,
  data_range=1)`` and ``structural_similarity(restored, clean, data_range=1, channel_axis=-1)`` with
  scikit-image's default 7×7 uniform window (PromptIR passed ``multichannel=True``, the older
  spelling of ``channel_axis=-1``);
- averaged per image (``score_batch`` returns one score per image; average them yourself).

Identical images have an infinite PSNR, as in scikit-image.
"""
from __future__ import annotations

import warnings

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

# scikit-image's default SSIM window is 7×7: smaller images cannot be scored.
SSIM_WINDOW = 7
CROP_BASE = 16


def crop_multiple(image: np.ndarray, base: int = CROP_BASE) -> np.ndarray:
    """Centre-crop an ``H×W(×C)`` image so that both sides are multiples of ``base``.

    The same crop as PromptIR's ``crop_img``: with ``r = H % base`` rows to remove, ``r // 2`` go
    from the top and the rest from the bottom (likewise for columns). Raises ``ValueError`` when a
    side is shorter than ``base``, which would leave nothing.
    """
    if base < 1:
        raise ValueError(f"base must be a positive integer, got {base}")
    height, width = image.shape[:2]
    if height < base or width < base:
        raise ValueError(
            f"an image of {height}×{width} px cannot be centre-cropped to a multiple of {base} px "
            f"(a side is shorter than {base}); score it with crop=False"
        )
    extra_h, extra_w = height % base, width % base
    top, left = extra_h // 2, extra_w // 2
    return image[top:height - extra_h + top, left:width - extra_w + left]


def _prepare(restored: np.ndarray, clean: np.ndarray, crop: bool) -> tuple[np.ndarray, np.ndarray]:
    restored = np.asarray(restored)
    clean = np.asarray(clean)
    if restored.shape != clean.shape:
        raise ValueError(f"the restored image has shape {restored.shape} but the clean image "
                         f"{clean.shape}: they must match")
    if restored.ndim != 3:
        raise ValueError(f"expected H×W×C images, got shape {restored.shape}")
    if crop:
        restored, clean = crop_multiple(restored), crop_multiple(clean)
    return (np.clip(restored.astype(np.float32), 0.0, 1.0),
            np.clip(clean.astype(np.float32), 0.0, 1.0))


def psnr(restored: np.ndarray, clean: np.ndarray, crop: bool = True) -> float:
    """PSNR in dB of ``restored`` against ``clean`` (``H×W×3`` float in [0, 1]), the field's way."""
    restored, clean = _prepare(restored, clean, crop)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # identical images: log10(0) → inf
        return float(peak_signal_noise_ratio(clean, restored, data_range=1))


def ssim(restored: np.ndarray, clean: np.ndarray, crop: bool = True) -> float:
    """SSIM of ``restored`` against ``clean`` on RGB with scikit-image's default 7×7 window.

    Images with a side under 7 px (after the crop) raise ``ValueError``: the window does not fit.
    """
    restored, clean = _prepare(restored, clean, crop)
    height, width = clean.shape[:2]
    if min(height, width) < SSIM_WINDOW:
        raise ValueError(
            f"SSIM's {SSIM_WINDOW}×{SSIM_WINDOW} window needs images of at least {SSIM_WINDOW} px "
            f"per side; this one is {height}×{width} px"
        )
    return float(structural_similarity(restored, clean, data_range=1, channel_axis=-1))


def score(restored: np.ndarray, clean: np.ndarray, crop: bool = True) -> dict[str, float]:
    """``{"psnr": dB, "ssim": value}`` for one ``H×W×3`` image pair."""
    return {"psnr": psnr(restored, clean, crop), "ssim": ssim(restored, clean, crop)}


def score_batch(restored, clean, crop: bool = True) -> list[dict[str, float]]:
    """One ``score`` per image of two ``B×3×H×W`` batches (torch tensors or numpy arrays)."""
    restored_np, clean_np = _to_numpy(restored), _to_numpy(clean)
    if restored_np.shape != clean_np.shape:
        raise ValueError(f"the restored batch has shape {tuple(restored_np.shape)} but the clean "
                         f"batch {tuple(clean_np.shape)}: they must match")
    if restored_np.ndim != 4:
        raise ValueError(f"expected B×C×H×W batches, got shape {tuple(restored_np.shape)}")
    return [score(np.transpose(r, (1, 2, 0)), np.transpose(c, (1, 2, 0)), crop)
            for r, c in zip(restored_np, clean_np)]


def _to_numpy(batch) -> np.ndarray:
    if hasattr(batch, "detach"):  # a torch tensor, on any device
        return batch.detach().to("cpu").float().numpy()
    return np.asarray(batch, dtype=np.float32)
