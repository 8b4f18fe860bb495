"""Degradation synthesis: the registry of task keys and the five physical degradations.

Task keys (PROTOCOL.md, "Tasks, data and metrics"):

- single tasks ``denoise_15``, ``denoise_25``, ``denoise_50``, ``derain``, ``dehaze`` (the 3-task
  setting), ``deblur`` and ``lowlight`` (added in the 5-task setting);
- primitives ``noise`` (σ = 25), ``rain``, ``haze``, ``blur``, ``lowlight``;
- composites: primitives or single keys joined by ``+`` (``rain+haze``, ``lowlight+haze``,
  ``haze+rain+noise``), as CDD-11 combines low light, haze, rain and snow. Whatever order a key lists
  them in, they are applied in the fixed physical order :data:`APPLY_ORDER`: the scene is hazed, rain
  falls in front of it, the exposure is low, the camera shakes, and the sensor adds noise.

Every call is deterministic given ``seed``. Each primitive draws from its own random stream, derived
from ``(seed, primitive)``, so ``rain+haze`` and ``haze+rain`` give the same pixels, and the rain in
``rain+haze`` is the rain of ``rain`` alone with the same seed.

Parameters are drawn from the documented ranges below unless given as keyword overrides
(``degrade(img, "derain", 0, density=0.003)``); every parameter name is unique across primitives, so
an override always reaches the one degradation it belongs to. All the random draws are made whether
or not a parameter is overridden, so overriding one parameter never changes the others.
"""
from __future__ import annotations

import math
import os
from typing import Any, Callable

import numpy as np
from scipy import ndimage, signal
from skimage.transform import resize

from csnet.io import from_uint8, read_image, to_uint8, write_image

# Bump when a synthesis changes, so that caches keyed on it (csnet.data.test_set) are rebuilt.
SYNTHESIS_VERSION = 1

PRIMITIVES = ("noise", "rain", "haze", "blur", "lowlight")
# The physical order composites are applied in, whatever order their key lists them.
APPLY_ORDER = ("haze", "rain", "lowlight", "blur", "noise")

# Single task key -> (primitive, fixed parameters).
SINGLE_TASKS: dict[str, tuple[str, dict[str, float]]] = {
    "denoise_15": ("noise", {"sigma": 15.0}),
    "denoise_25": ("noise", {"sigma": 25.0}),
    "denoise_50": ("noise", {"sigma": 50.0}),
    "derain": ("rain", {}),
    "dehaze": ("haze", {}),
    "deblur": ("blur", {}),
    "lowlight": ("lowlight", {}),
}
THREE_TASKS = ("denoise_15", "denoise_25", "denoise_50", "derain", "dehaze")
# The 5-task setting of IDR / InstructIR / AdaIR evaluates denoising at σ = 25 only.
FIVE_TASKS = ("denoise_25", "derain", "dehaze", "deblur", "lowlight")

# The degradation class the prompts name (the paper's labels: 'noise', 'rain', 'haze', 'low', ...).
LABELS = {"noise": "noise", "rain": "rain", "haze": "haze", "blur": "blur", "lowlight": "low"}

# Fixed stream number of each primitive: its random draws come from (seed, stream).
_STREAMS = {"noise": 1, "rain": 2, "haze": 3, "blur": 4, "lowlight": 5}


# Task keys ------------------------------------------------------------------------------------------

def _valid_keys_text() -> str:
    return (f"single tasks {', '.join(SINGLE_TASKS)}; primitives {', '.join(PRIMITIVES)}; or a "
            "composite joining them with '+' (e.g. 'rain+haze', 'lowlight+haze', 'haze+rain+noise')")


def components(task: str) -> list[tuple[str, str, dict[str, float]]]:
    """``(part, primitive, fixed_params)`` for each ``+``-separated part of ``task``, in key order.

    Raises ``ValueError`` listing the valid keys for an unknown part, and for a key that names the
    same degradation twice (``noise+denoise_50``).
    """
    if not isinstance(task, str) or not task.strip():
        raise ValueError(f"a task key must be a non-empty string, got {task!r}; valid keys: "
                         f"{_valid_keys_text()}")
    parts = [part.strip() for part in task.split("+")]
    result = []
    for part in parts:
        if part in SINGLE_TASKS:
            primitive, fixed = SINGLE_TASKS[part]
        elif part in PRIMITIVES:
            primitive, fixed = part, {}
        else:
            raise ValueError(f"unknown task key {part!r} in {task!r}; valid keys: {_valid_keys_text()}")
        result.append((part, primitive, dict(fixed)))
    primitives = [primitive for _, primitive, _ in result]
    repeated = sorted({p for p in primitives if primitives.count(p) > 1})
    if repeated:
        raise ValueError(f"task {task!r} names the {', '.join(repeated)} degradation more than once; "
                         "each degradation may appear once in a composite")
    return result


def validate_task(task: str) -> str:
    """Return ``task`` (surrounding spaces removed) if it is a valid key, else raise ``ValueError``
    listing the valid keys."""
    components(task)
    return "+".join(part.strip() for part in task.split("+"))


def label_of(task: str) -> str:
    """The degradation class the prompts name: ``denoise_*`` → ``noise``, ``derain`` → ``rain``,
    ``dehaze`` → ``haze``, ``deblur`` → ``blur``, ``lowlight`` → ``low``; a composite joins its
    parts' labels with ``_`` in the key's order (``rain+haze`` → ``rain_haze``, as the paper's
    ``low_haze``)."""
    return "_".join(LABELS[primitive] for _, primitive, _ in components(task))


def parameter_names(task: str) -> dict[str, tuple[str, ...]]:
    """The parameters each primitive of ``task`` draws (the names ``degrade`` accepts as overrides)."""
    return {primitive: _PARAMETERS[primitive] for _, primitive, _ in components(task)}


# The degradations ----------------------------------------------------------------------------------
# Each takes (image, rng, params) where params holds the drawn values (already overridden), and
# returns a float32 image in [0, 1]. Each *_draw function draws the parameters and any random fields.

def _draw_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[dict, dict]:
    return {"sigma": 25.0}, {"field": rng.standard_normal(shape)}


def apply_noise(image: np.ndarray, sigma: float, field: np.ndarray) -> np.ndarray:
    """Additive white Gaussian noise, the PromptIR way.

    σ is on the 0–255 scale. The image is taken to 8 bits, ``field · σ`` is added, the sum is
    clipped to [0, 255] and cast to ``uint8`` (PromptIR's ``np.clip(clean + noise * sigma, 0,
    255).astype(np.uint8)``, which truncates), and read back as float in [0, 1].
    """
    noisy = np.clip(to_uint8(image).astype(np.float64) + field * sigma, 0, 255).astype(np.uint8)
    return from_uint8(noisy)


# Rain: light streaks like Rain100L's.
RAIN_RANGES = {
    "density": (0.0015, 0.004),   # fraction of pixels that start a streak
    "streak_length": (12.0, 32.0),  # px, length of a streak
    "streak_angle": (-25.0, 25.0),  # degrees from vertical, positive leans to the right going down
    "streak_width": (0.8, 1.8),   # px, full width at half maximum of the streak's cross-section
    "brightness": (0.5, 0.85),    # peak intensity of a streak (0..1) before screening
}


def _draw_rain(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[dict, dict]:
    params = {name: float(rng.uniform(*bounds)) for name, bounds in RAIN_RANGES.items()}
    height, width = shape[:2]
    fields = {"starts": rng.random((height, width)), "strength": rng.uniform(0.6, 1.0, (height, width))}
    return params, fields


def streak_kernel(length: float, angle: float, width: float) -> np.ndarray:
    """A rain streak: a line ``length`` px long at ``angle`` degrees from vertical, with a Gaussian
    cross-section of FWHM ``width`` px and soft ends; peak value 1."""
    sigma = max(width / 2.355, 0.35)
    radius = int(math.ceil(length / 2 + 3 * sigma)) + 1
    y, x = np.mgrid[-radius:radius + 1, -radius:radius + 1].astype(np.float64)
    theta = math.radians(angle)
    along = x * math.sin(theta) + y * math.cos(theta)
    across = x * math.cos(theta) - y * math.sin(theta)
    ends = np.clip(length / 2 + 0.5 - np.abs(along), 0.0, 1.0)
    kernel = ends * np.exp(-0.5 * (across / sigma) ** 2)
    return kernel / kernel.max()


def apply_rain(image: np.ndarray, density: float, streak_length: float, streak_angle: float,
               streak_width: float, brightness: float, starts: np.ndarray,
               strength: np.ndarray) -> np.ndarray:
    """Rain streaks screened onto the image (Rain100L-like light rain).

    Streaks start at the pixels where the uniform field ``starts`` is below ``density`` (so a higher
    density adds streaks and keeps the earlier ones), each with a strength in [0.6, 1]; convolving
    these starts with :func:`streak_kernel` draws the streaks (one angle per image, as in Rain100L).
    The streak layer ``S`` (clipped to [0, 1] and scaled by ``brightness``) is combined by the screen
    blend ``1 − (1 − I)(1 − S)``, which brightens like rain and never saturates a pixel abruptly.
    """
    seeds = np.where(starts < density, strength, 0.0)
    kernel = streak_kernel(streak_length, streak_angle, streak_width)
    layer = np.clip(signal.fftconvolve(seeds, kernel, mode="same"), 0.0, 1.0) * brightness
    return (1.0 - (1.0 - image) * (1.0 - layer[:, :, None])).astype(np.float32)


# Haze: the atmospheric scattering model I = J·t + A·(1 − t), t = exp(−β·d).
HAZE_RANGES = {
    "beta": (0.6, 1.8),        # scattering coefficient per unit of the proxy depth d ∈ [0.1, 1]
    "airlight": (0.8, 1.0),    # grey atmospheric light A, RESIDE's range (its A ∈ {0.8, ..., 1.0})
    "depth_mix": (0.5, 0.8),   # weight of the vertical gradient in the depth proxy
}
NEAREST_DEPTH = 0.1  # the proxy depth of the nearest point: even the foreground sees a little haze


def _draw_haze(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[dict, dict]:
    return {name: float(rng.uniform(*bounds)) for name, bounds in HAZE_RANGES.items()}, {}


def depth_proxy(image: np.ndarray, depth_mix: float) -> np.ndarray:
    """A smooth, relative scene depth in [0.1, 1] (1 = far) for a photo without a depth map.

    Two cues, mixed with weight ``depth_mix`` on the first:

    - a vertical gradient, 1 at the top row and 0 at the bottom (outdoor scenes: sky and distance
      above, ground near the camera below);
    - the dark channel (the minimum over colours in a local window): He et al.'s prior says it is
      near zero for nearby haze-free surfaces and high for sky and distant, washed-out regions.
      (Plain inverse luminance, the other common proxy, would put dark foreground objects far away;
      the dark channel puts bright, unsaturated sky far, which is what haze then whitens.)

    The mix is smoothed with a Gaussian of σ = 1/16 of the shorter side (haze varies slowly), then
    rescaled to [0.1, 1]. RESIDE uses a real depth estimate in metres with β ∈ [0.04, 0.2]; our β
    multiplies this unitless proxy instead, so its range is chosen for the transmission it gives:
    exp(−β) at the far end lies between 0.17 and 0.55.
    """
    height, width = image.shape[:2]
    window = max(3, min(height, width) // 32)
    dark = ndimage.minimum_filter(image.min(axis=2), size=window, mode="nearest")
    vertical = np.linspace(1.0, 0.0, height, dtype=np.float64)[:, None] * np.ones((1, width))
    raw = depth_mix * vertical + (1.0 - depth_mix) * dark
    # Smooth on a grid of about 64 px along the shorter side: the same result at a fraction of the cost.
    scale = max(1.0, min(height, width) / 64.0)
    small_shape = (max(1, round(height / scale)), max(1, round(width / scale)))
    small = resize(raw, small_shape, order=1, anti_aliasing=True, mode="edge")
    small = ndimage.gaussian_filter(small, sigma=min(small_shape) / 16.0, mode="nearest")
    depth = resize(small, (height, width), order=1, mode="edge")
    span = depth.max() - depth.min()
    normalised = (depth - depth.min()) / span if span > 1e-12 else np.zeros_like(depth)
    return NEAREST_DEPTH + (1.0 - NEAREST_DEPTH) * normalised


def apply_haze(image: np.ndarray, beta: float, airlight: float, depth_mix: float) -> np.ndarray:
    """Homogeneous haze by the atmospheric scattering model: ``I = J·t + A·(1 − t)`` with
    transmission ``t = exp(−β·d)``, ``d`` from :func:`depth_proxy` and a grey airlight ``A``."""
    transmission = np.exp(-beta * depth_proxy(image, depth_mix))[:, :, None]
    return (image * transmission + airlight * (1.0 - transmission)).astype(np.float32)


# Motion blur: a random camera-shake trajectory.
BLUR_RANGES = {
    "kernel_size": (11, 27),      # odd kernel side in px (inclusive bounds)
    "blur_length": (0.5, 1.0),    # extent of the trajectory as a fraction of the kernel side
    "blur_angle": (0.0, 180.0),   # initial direction of motion in degrees
    "shake": (0.1, 0.6),          # std of the random turn per step (radians): 0 is a straight line
}
_TRAJECTORY_STEPS = 64


def _draw_blur(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[dict, dict]:
    low, high = BLUR_RANGES["kernel_size"]
    params = {
        "kernel_size": int(2 * rng.integers(low // 2, high // 2 + 1) + 1),
        "blur_length": float(rng.uniform(*BLUR_RANGES["blur_length"])),
        "blur_angle": float(rng.uniform(*BLUR_RANGES["blur_angle"])),
        "shake": float(rng.uniform(*BLUR_RANGES["shake"])),
    }
    return params, {"turns": rng.standard_normal(_TRAJECTORY_STEPS - 1)}


def motion_kernel(kernel_size: int, blur_length: float, blur_angle: float, shake: float,
                  turns: np.ndarray) -> np.ndarray:
    """A normalised motion-blur kernel from a random-walk camera trajectory.

    The camera moves in unit steps; its heading starts at ``blur_angle`` and turns by
    ``shake · turns[i]`` radians at each step (a random walk of the heading, so trajectories range
    from straight lines to curls). The path is centred, scaled so its longer extent is
    ``blur_length · (kernel_size − 1)`` px, and splatted bilinearly onto a ``kernel_size`` square
    grid, which is then normalised to sum to 1.
    """
    if kernel_size != int(kernel_size) or kernel_size < 1 or int(kernel_size) % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size}")
    kernel_size = int(kernel_size)
    heading = math.radians(blur_angle) + np.concatenate([[0.0], np.cumsum(shake * turns)])
    steps = np.stack([np.sin(heading), np.cos(heading)], axis=1)  # (row, col) per step
    path = np.concatenate([[[0.0, 0.0]], np.cumsum(steps, axis=0)])
    path -= (path.max(axis=0) + path.min(axis=0)) / 2
    extent = np.abs(path).max() * 2
    if extent > 0:
        path *= blur_length * (kernel_size - 1) / extent
    centre = (kernel_size - 1) / 2
    kernel = np.zeros((kernel_size, kernel_size))
    rows, cols = path[:, 0] + centre, path[:, 1] + centre
    row0 = np.clip(np.floor(rows).astype(int), 0, kernel_size - 1)
    col0 = np.clip(np.floor(cols).astype(int), 0, kernel_size - 1)
    row1, col1 = np.minimum(row0 + 1, kernel_size - 1), np.minimum(col0 + 1, kernel_size - 1)
    fr, fc = rows - row0, cols - col0
    for r, c, weight in ((row0, col0, (1 - fr) * (1 - fc)), (row0, col1, (1 - fr) * fc),
                         (row1, col0, fr * (1 - fc)), (row1, col1, fr * fc)):
        np.add.at(kernel, (r, c), weight)
    return kernel / kernel.sum()


def apply_blur(image: np.ndarray, kernel_size: int, blur_length: float, blur_angle: float,
               shake: float, turns: np.ndarray) -> np.ndarray:
    """Camera-shake blur: the image convolved with :func:`motion_kernel`, borders reflected."""
    kernel = motion_kernel(kernel_size, blur_length, blur_angle, shake, turns)
    pad = kernel.shape[0] // 2
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    blurred = signal.fftconvolve(padded, kernel[:, :, None], mode="valid", axes=(0, 1))
    return np.clip(blurred, 0.0, 1.0).astype(np.float32)


# Low light: under-exposure, a tone curve and sensor noise.
LOWLIGHT_RANGES = {
    "exposure": (0.1, 0.35),     # linear scale of the light reaching the sensor
    "gamma": (1.2, 1.8),         # tone-curve exponent applied before the scale (darkens mid-tones)
    "photons": (80.0, 400.0),    # photons per pixel at full scale (log-uniform): shot-noise level
    "read_noise": (0.002, 0.01), # std of the signal-independent (read) noise, in [0, 1] units
}


def _draw_lowlight(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[dict, dict]:
    low, high = LOWLIGHT_RANGES["photons"]
    params = {
        "exposure": float(rng.uniform(*LOWLIGHT_RANGES["exposure"])),
        "gamma": float(rng.uniform(*LOWLIGHT_RANGES["gamma"])),
        "photons": float(math.exp(rng.uniform(math.log(low), math.log(high)))),
        "read_noise": float(rng.uniform(*LOWLIGHT_RANGES["read_noise"])),
    }
    # The Poisson draw needs the signal, so keep a child generator for it (drawn now, used later).
    return params, {"shot_rng": np.random.default_rng(rng.integers(2**63)),
                    "read": rng.standard_normal(shape)}


def apply_lowlight(image: np.ndarray, exposure: float, gamma: float, photons: float,
                   read_noise: float, shot_rng: np.random.Generator,
                   read: np.ndarray) -> np.ndarray:
    """A low-light photo (LOL-like): ``x = exposure · J^gamma``, then Poisson–Gaussian sensor noise
    ``y = Poisson(photons · x) / photons + read_noise · n``, clipped to [0, 1]. The shot noise grows
    with the signal (std ``sqrt(x / photons)``); the read noise does not."""
    dark = exposure * np.power(np.clip(image, 0.0, 1.0), gamma)
    counts = shot_rng.poisson(dark * photons)
    noisy = counts / photons + read_noise * read
    return np.clip(noisy, 0.0, 1.0).astype(np.float32)


_DRAW: dict[str, Callable[[np.random.Generator, tuple], tuple[dict, dict]]] = {
    "noise": _draw_noise, "rain": _draw_rain, "haze": _draw_haze, "blur": _draw_blur,
    "lowlight": _draw_lowlight,
}
_APPLY: dict[str, Callable[..., np.ndarray]] = {
    "noise": apply_noise, "rain": apply_rain, "haze": apply_haze, "blur": apply_blur,
    "lowlight": apply_lowlight,
}
_PARAMETERS = {
    "noise": ("sigma",), "rain": tuple(RAIN_RANGES), "haze": tuple(HAZE_RANGES),
    "blur": tuple(BLUR_RANGES), "lowlight": tuple(LOWLIGHT_RANGES),
}


# The entry points -----------------------------------------------------------------------------------

def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise ValueError(f"expected a numpy image (H×W×3 float in [0, 1]), got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 RGB image, got shape {image.shape} (read files with "
                         "csnet.io.read_image, which turns grey and RGBA into RGB)")
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"expected float pixels in [0, 1], got {image.dtype} (divide 8-bit images "
                         "by 255, or read them with csnet.io.read_image)")
    if not np.isfinite(image).all():
        raise ValueError("the image contains NaN or infinite values")
    return np.clip(image.astype(np.float32), 0.0, 1.0)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def degrade(image: np.ndarray, task: str, seed: int, **overrides: float) -> tuple[np.ndarray, dict]:
    """Degrade ``image`` (``H×W×3`` float32 in [0, 1]) by ``task``; deterministic given ``seed``.

    Returns ``(degraded, params)``: the degraded image (same shape, float32 in [0, 1]) and a
    JSON-serialisable record ``{"task", "seed", "order", <primitive>: {parameter: value}}`` of what
    was drawn, ``order`` being the order the primitives were applied in. Keyword ``overrides`` fix
    parameters instead of drawing them (names: :func:`parameter_names`).
    """
    task = validate_task(task)
    seed = _check_seed(seed)
    image = _check_image(image)
    parts = components(task)
    allowed = {name: primitive for _, primitive, _ in parts for name in _PARAMETERS[primitive]}
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)} for task {task!r}; its parameters "
                         f"are {', '.join(sorted(allowed)) or 'none'}")
    fixed_by_key = {primitive: fixed for _, primitive, fixed in parts}
    order = [p for p in APPLY_ORDER if p in fixed_by_key]
    record: dict[str, Any] = {"task": task, "seed": seed, "order": order}
    result = image
    for primitive in order:
        rng = np.random.default_rng([seed, _STREAMS[primitive]])
        params, fields = _DRAW[primitive](rng, image.shape)
        params.update(fixed_by_key[primitive])
        params.update({k: v for k, v in overrides.items() if allowed[k] == primitive})
        params = {k: _plain(v) for k, v in params.items()}
        result = _APPLY[primitive](result, **params, **fields)
        record[primitive] = params
    return result, record


def _plain(value: Any) -> Any:
    """A JSON-friendly Python scalar."""
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value)
    raise ValueError(f"degradation parameters must be numbers, got {value!r}")


def params_rows(record: dict) -> list[dict]:
    """A ``degrade`` record as flat rows ``{"task", "seed", "step", "primitive", "parameter",
    "value"}`` (one per parameter, in the order applied), e.g. for a table."""
    return [{"task": record["task"], "seed": record["seed"], "step": step, "primitive": primitive,
             "parameter": name, "value": value}
            for step, primitive in enumerate(record["order"], start=1)
            for name, value in record[primitive].items()]


def degrade_file(src: str | os.PathLike, task: str, seed: int, out: str | os.PathLike) -> dict:
    """Read ``src``, degrade it by ``task`` with ``seed``, write ``out`` (PNG, atomic, the same bytes
    for the same inputs) and return the parameters drawn."""
    task = validate_task(task)
    image = read_image(src)
    degraded, params = degrade(image, task, seed)
    write_image(out, degraded)
    return params
