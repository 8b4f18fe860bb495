"""csnet.io: reading every kind of image file a user may give, and deterministic atomic writes."""
from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image

from csnet.io import atomic_write, from_uint8, read_image, to_uint8, write_image


def _png16(pixels: np.ndarray) -> bytes:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit colour), filter 0 on every row."""
    height, width, channels = pixels.shape
    colour_type = {1: 0, 3: 2, 4: 6}[channels]
    raw = b"".join(b"\x00" + pixels[row].astype(">u2").tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


@pytest.fixture
def rgb8():
    return np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)


def test_rgb_png_round_trip(tmp_path, rgb8):
    Image.fromarray(rgb8).save(tmp_path / "a.png")
    image = read_image(tmp_path / "a.png")
    assert image.dtype == np.float32 and image.shape == (12, 10, 3)
    np.testing.assert_array_equal(image, rgb8.astype(np.float32) / 255)
    write_image(tmp_path / "b.png", image)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "b.png")), rgb8)


def test_grayscale_is_replicated_to_rgb(tmp_path):
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(grey, mode="L").save(tmp_path / "g.png")
    image = read_image(tmp_path / "g.png")
    assert image.shape == (8, 8, 3)
    for channel in range(3):
        np.testing.assert_array_equal(image[:, :, channel], grey / np.float32(255))


def test_bilevel_image_reads_as_black_and_white(tmp_path):
    Image.fromarray(np.eye(8, dtype=bool)).save(tmp_path / "b.png")
    image = read_image(tmp_path / "b.png")
    np.testing.assert_array_equal(image[:, :, 1], np.eye(8, dtype=np.float32))


def test_rgba_drops_alpha_without_compositing(tmp_path, rgb8):
    alpha = np.zeros(rgb8.shape[:2], dtype=np.uint8)  # fully transparent: compositing would give black
    Image.fromarray(np.dstack([rgb8, alpha]), mode="RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), from_uint8(rgb8))


def test_grey_with_alpha_drops_alpha(tmp_path):
    grey = np.full((5, 6), 200, dtype=np.uint8)
    Image.fromarray(np.dstack([grey, np.zeros_like(grey)]), mode="LA").save(tmp_path / "la.png")
    image = read_image(tmp_path / "la.png")
    assert image.shape == (5, 6, 3)
    assert np.all(image == np.float32(200 / 255))


def test_palette_image_reads_as_rgb(tmp_path, rgb8):
    Image.fromarray(rgb8).convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save(tmp_path / "p.png")
    expected = np.asarray(Image.open(tmp_path / "p.png").convert("RGB"))
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), from_uint8(expected))


def test_16bit_grey_png_is_scaled_by_65535(tmp_path):
    values = np.array([[0, 1, 257, 65535], [1000, 30000, 40000, 65534]], dtype=np.uint16)
    (tmp_path / "g16.png").write_bytes(_png16(values[:, :, None]))
    image = read_image(tmp_path / "g16.png")
    np.testing.assert_allclose(image[:, :, 0], values / 65535.0, rtol=0, atol=1e-7)
    assert image[0, 1, 0] > 0  # a 16-bit level of 1 is not lost to 8-bit truncation


def test_16bit_colour_png_keeps_its_high_byte(tmp_path):
    values = np.random.default_rng(1).integers(0, 65536, (4, 5, 3)).astype(np.uint16)
    (tmp_path / "c16.png").write_bytes(_png16(values))
    image = read_image(tmp_path / "c16.png")
    np.testing.assert_array_equal(image, from_uint8((values >> 8).astype(np.uint8)))
    assert np.abs(image - values / 65535.0).max() < 1 / 255


def test_16bit_rgba_png_drops_alpha(tmp_path):
    values = np.random.default_rng(2).integers(0, 65536, (3, 4, 4)).astype(np.uint16)
    (tmp_path / "c16a.png").write_bytes(_png16(values))
    assert read_image(tmp_path / "c16a.png").shape == (3, 4, 3)


def test_16bit_colour_tiff_keeps_full_precision(tmp_path):
    values = np.random.default_rng(3).integers(0, 65536, (6, 7, 3)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "c16.tif", values)
    np.testing.assert_allclose(read_image(tmp_path / "c16.tif"), values / 65535.0, atol=1e-7)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.png"):
        read_image(tmp_path / "nothere.png")


def test_corrupt_file_names_it_and_says_why(tmp_path):
    path = tmp_path / "corrupt.png"
    path.write_bytes(b"this is not an image at all" * 10)
    with pytest.raises(ValueError, match=r"corrupt\.png.*(not an image|corrupt)"):
        read_image(path)


def test_truncated_png_names_it(tmp_path, rgb8):
    Image.fromarray(np.tile(rgb8, (20, 20, 1))).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.png.*(corrupt|truncated)"):
        read_image(tmp_path / "cut.png")


def test_truncated_jpeg_names_it(tmp_path, rgb8):
    Image.fromarray(np.tile(rgb8, (20, 20, 1))).save(tmp_path / "full.jpg", quality=90)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match=r"cut\.jpg"):
        read_image(tmp_path / "cut.jpg")


def test_empty_file_and_folder_are_refused(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.png.*empty"):
        read_image(tmp_path / "empty.png")
    with pytest.raises(ValueError, match="is a folder"):
        read_image(tmp_path)


def test_write_image_bytes_are_deterministic_and_carry_no_metadata(tmp_path):
    image = np.random.default_rng(4).random((16, 16, 3)).astype(np.float32)
    write_image(tmp_path / "a.png", image)
    write_image(tmp_path / "b.png", image)
    data = (tmp_path / "a.png").read_bytes()
    assert data == (tmp_path / "b.png").read_bytes()
    for chunk in (b"tIME", b"tEXt", b"iTXt", b"zTXt"):
        assert chunk not in data
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), from_uint8(to_uint8(image)))


def test_write_image_clips_and_rounds(tmp_path):
    image = np.array([[[-0.5, 0.5, 2.0], [1 / 255 * 0.49, 1 / 255 * 0.51, 1.0]]], dtype=np.float32)
    write_image(tmp_path / "c.png", image)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "c.png")),
                                  [[[0, 128, 255], [0, 1, 255]]])


def test_write_image_refuses_bad_input(tmp_path):
    good = np.zeros((4, 4, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"\.png"):
        write_image(tmp_path / "out.jpg", good)
    with pytest.raises(ValueError, match="shape"):
        write_image(tmp_path / "out.png", np.zeros((4, 4, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="NaN"):
        write_image(tmp_path / "out.png", np.full((4, 4, 3), np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="uint8"):
        write_image(tmp_path / "out.png", np.zeros((4, 4, 3), dtype=np.int64))
    assert not (tmp_path / "out.png").exists()


def test_atomic_write_leaves_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "sub" / "file.txt"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_atomic_write_gives_ordinary_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "f.txt") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(mask)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o644
