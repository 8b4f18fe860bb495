"""Files in and out: atomic writes, and image reading with answers a person can act on."""
from __future__ import annotations

import contextlib
import os
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    An interrupted run therefore never leaves a half-written file that a later run would trust.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates the file readable by its owner only; give it the usual permissions.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


# Image files ----------------------------------------------------------------------------------------

# Pillow modes that carry 16 bits per sample (grey only: Pillow has no 16-bit colour mode).
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_TIFF_SUFFIXES = (".tif", ".tiff")


def from_uint8(pixels: np.ndarray) -> np.ndarray:
    """8-bit pixels as float32 in [0, 1] (the one conversion every reader and writer here shares)."""
    return pixels.astype(np.float32) / np.float32(255.0)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float pixels in [0, 1] as 8-bit, clipped and rounded to the nearest level."""
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def _as_rgb(pixels: np.ndarray, path: Path) -> np.ndarray:
    """Integer or float samples of any depth, grey or colour, as float32 RGB in [0, 1]."""
    if pixels.dtype == np.uint8:
        image = from_uint8(pixels)
    elif pixels.dtype == np.uint16:
        image = pixels.astype(np.float32) / np.float32(65535.0)
    elif np.issubdtype(pixels.dtype, np.floating):
        image = np.clip(pixels.astype(np.float32), 0.0, 1.0)
    else:
        raise ValueError(f"{path}: samples of type {pixels.dtype} are not supported "
                         "(expected 8-bit, 16-bit or floating-point pixels)")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"{path}: an image of shape {pixels.shape} is neither grey nor RGB(A)")
    if image.shape[2] in (2, 4):  # grey+alpha or RGBA: the alpha channel is dropped, not composited
        image = image[:, :, :-1]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image)


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    try:
        pixels = tifffile.imread(path, key=0)
    except Exception as err:  # tifffile raises many types for a damaged file
        raise ValueError(f"{path}: cannot read this TIFF file ({err})") from err
    if pixels.ndim == 3 and pixels.shape[0] in (3, 4) and pixels.shape[2] not in (3, 4):
        pixels = np.moveaxis(pixels, 0, -1)  # planar (C, H, W) storage
    return pixels


def _read_with_pillow(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as handle:
            handle.load()
            mode = handle.mode
            if mode in _SIXTEEN_BIT_MODES:
                return np.asarray(handle).astype(np.uint16)
            if mode == "I":
                # 32-bit integer storage. Pillow uses it for 16-bit grey files: values beyond 8 bits
                # mean 16-bit samples; a file whose values all fit in 8 bits is read as 8-bit.
                pixels = np.asarray(handle)
                if pixels.min() < 0 or pixels.max() > 65535:
                    raise ValueError(f"{path}: 32-bit integer samples are not supported")
                return pixels.astype(np.uint16 if pixels.max() > 255 else np.uint8)
            if mode == "F":
                return np.asarray(handle, dtype=np.float32)
            if mode == "P":
                handle = handle.convert("RGBA" if "transparency" in handle.info else "RGB")
            elif mode == "1":
                handle = handle.convert("L")
            elif mode not in ("L", "LA", "RGB", "RGBA"):
                handle = handle.convert("RGB")  # CMYK, YCbCr, LAB, HSV
            return np.asarray(handle)
    except UnidentifiedImageError as err:
        raise ValueError(f"{path}: not an image file that can be read (unknown format or corrupt "
                         "header)") from err
    except PermissionError as err:
        raise ValueError(f"{path}: cannot open the file ({err.strerror or 'permission denied'})") from err
    except (OSError, SyntaxError, struct.error, zlib.error) as err:
        raise ValueError(f"{path}: the image data is corrupt or truncated ({err})") from err


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as float32 ``H×W×3`` RGB in [0, 1].

    What the suite does with files that are not plain 8-bit RGB, so that nothing surprises a user:

    - grey (and bi-level) images are replicated to three equal channels;
    - an alpha channel (RGBA, grey+alpha, palette transparency) is dropped, not composited;
    - 16-bit samples are divided by 65535. Pillow keeps full 16-bit precision for grey PNG/TIFF
      but reduces 16-bit *colour* PNGs to their 8 high bits; colour TIFFs are read with tifffile at
      full precision;
    - floating-point TIFF samples are taken as already in [0, 1] and clipped.

    A missing file raises ``FileNotFoundError``; a folder, an unknown format or a corrupt/truncated
    file raises ``ValueError``; each message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such image file")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not an image file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty (0 bytes), not an image")
    if path.suffix.lower() in _TIFF_SUFFIXES:
        pixels = _read_tiff(path)
    else:
        pixels = _read_with_pillow(path)
    return _as_rgb(pixels, path)


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an RGB (or grey) image as an 8-bit PNG, atomically and with deterministic bytes.

    Float input is taken as [0, 1], clipped and rounded to 8 bits; ``uint8`` input is written as is.
    No metadata (no time stamp, no software tag) is stored, so the same pixels always give the same
    file. Returns the path written.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: images are written as PNG; give a file name ending in .png")
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(f"{path}: expected an H×W×3 RGB or H×W grey image, got shape {array.shape}")
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f"{path}: expected float pixels in [0, 1] or uint8, got {array.dtype}")
        if not np.isfinite(array).all():
            raise ValueError(f"{path}: the image contains NaN or infinite values")
        array = to_uint8(array)
    with atomic_write(path) as tmp:
        Image.fromarray(np.ascontiguousarray(array)).save(tmp, format="PNG", compress_level=6)
    return path
