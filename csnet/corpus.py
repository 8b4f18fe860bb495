"""The embedded photo corpus: natural photos that ship inside installed PyPI packages.

No machine here can download a dataset, but several wheels carry real photographs as package data.
They are gathered into one corpus with a fixed split (PROTOCOL.md, "What no machine here has"):

- **test** (7 photos): the five Kodak/Waterloo photos of sporco (``kodim23``, ``monarch``, ``sail``,
  ``tulips``, ``barbara``, the classic restoration test images) plus ``chelsea`` and ``rocket`` from
  scikit-image (a close-up texture and an outdoor scene with sky, which haze and rain need);
- **val** (5 photos, :data:`VALIDATION_PHOTOS`): five photos taken out of the train photos and
  never trained on, on which every choice of recipe or protocol is made (issue 12), so the test
  photos are only ever used to report. Chosen by hand for varied content, each with its reason;
- **train** (23 photos): everything else: scikit-image's other colour photos, scikit-learn's
  ``flower``, matplotlib's Grace Hopper, 17 ImageNet photos from foolbox and mahotas' portrait
  ``luispedro``. The stereo pair ``motorcycle_left``/``_right`` stays together in train, so no
  split holds a near-copy of another's photo.

Files are found through ``importlib.util.find_spec`` (which locates a package without importing it)
and read directly: nothing is downloaded, and scikit-image's fetchers (which may download) are not
called. Left out on purpose: grey photos (camera, moon, ...), microscopy/astronomy/medical images
(ihc, hubble_deep_field, retina, nuclear), synthetic images, mahotas' ``DepartmentStore.jpg`` (a
"Where's Wally?" drawing, not a photograph, and someone else's artwork) and mahotas' ``lena.jpg``
(retired by the image-processing community; IEEE journals no longer accept it).

Each entry records the checksum of the file it was built from. When an installed package carries a
different file (another version may re-encode it), the photo is still used, a ``UserWarning`` says
so, and the table marks it: the split is by name, so it stays well defined, and the actual checksum
(``CorpusEntry.actual_sha256``) can go into a run's manifest. A photo whose package is not installed
is listed as missing (with the pip command) and left out of ``photos()``; it never crashes the corpus.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from csnet.io import read_image

SPLITS = ("train", "val", "test")

# The validation photos (taken from the train photos the corpus was assembled with), each with why it
# was chosen: together they span the content the tasks care about (sky and depth for haze and rain,
# smooth and textured regions for noise).
VALIDATION_PHOTOS: dict[str, str] = {
    "coffee": "indoor still life: smooth gradients and specular highlights",
    "china": "outdoor landscape with sky and distance, as haze and rain need",
    "imagenet_05_853": "thatched cottage under sky: fine straw texture beside flat areas",
    "imagenet_09_455": "close-up bottle cap: sharp printed edges and lettering",
    "imagenet_16_251": "dalmatian: high-contrast fur texture",
}

_PD = "public domain"
_SKIMAGE = "scikit-image sample data (BSD-3 package); "
_FOOLBOX = "ImageNet validation photo shipped by foolbox (MIT package); ImageNet terms: research use"
_SPORCO_KODAK = "Kodak test image, released for unrestricted use (sporco data README)"
_SPORCO_WATERLOO = "Waterloo BragZone image, free of copyright restrictions (sporco data README)"

# (name, pip distribution, import package, file inside the package, height, width, sha256, split as
#  assembled ("train" or "test"; VALIDATION_PHOTOS then moves five train photos to "val"), licence note)
_PHOTOS: tuple[tuple[str, str, str, str, int, int, str, str, str], ...] = (
    ("astronaut", "scikit-image", "skimage", "data/astronaut.png", 512, 512,
     "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5", "train",
     _SKIMAGE + "NASA photo of Eileen Collins, " + _PD),
    ("chelsea", "scikit-image", "skimage", "data/chelsea.png", 300, 451,
     "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb", "test",
     _SKIMAGE + "CC0 (Stefan van der Walt)"),
    ("coffee", "scikit-image", "skimage", "data/coffee.png", 400, 600,
     "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7", "train",
     _SKIMAGE + "CC0 (Rachel Michetti)"),
    ("rocket", "scikit-image", "skimage", "data/rocket.jpg", 427, 640,
     "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c", "test",
     _SKIMAGE + "SpaceX launch photo, " + _PD),
    ("motorcycle_left", "scikit-image", "skimage", "data/motorcycle_left.png", 500, 741,
     "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179", "train",
     _SKIMAGE + "Middlebury 2014 stereo benchmark (research use)"),
    ("motorcycle_right", "scikit-image", "skimage", "data/motorcycle_right.png", 500, 741,
     "5fc913ae870e42a4b662314bc904d1786bcad8e2f0b9b67dba5a229406357797", "train",
     _SKIMAGE + "Middlebury 2014 stereo benchmark (research use)"),
    ("china", "scikit-learn", "sklearn", "datasets/images/china.jpg", 427, 640,
     "8378025ad2519d649d02e32bd98990db4ab572357d9f09841c2fbfbb4fefad29", "train",
     "scikit-learn sample image, CC BY 2.0 (danielbuechele on Flickr)"),
    ("flower", "scikit-learn", "sklearn", "datasets/images/flower.jpg", 427, 640,
     "a77f6ec41e353afdf8bdff2ea981b2955535d8d83294f8cfa49cf4e423dd5638", "train",
     "scikit-learn sample image, CC BY 2.0 (vultilion on Flickr)"),
    ("grace_hopper", "matplotlib", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", 600, 512,
     "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130", "train",
     "matplotlib sample data; US Navy photo, " + _PD),
    ("kodim23", "sporco", "sporco", "data/kodim23.png", 512, 768,
     "34d8f029d2eae3ed37b65e2f94fd2c319923ebfae0fa8bff5f001e2565b7d80f", "test", _SPORCO_KODAK),
    ("monarch", "sporco", "sporco", "data/monarch.png", 512, 768,
     "c2435a5e37c04658824d26124ab27c3943e7b95b0eeeb27effa6439f81ff5ca9", "test", _SPORCO_WATERLOO),
    ("sail", "sporco", "sporco", "data/sail.png", 512, 768,
     "7b8a3b23c79bf83b233915e2199c190589c40980d54d20eb3bf446a33c6e0461", "test", _SPORCO_WATERLOO),
    ("tulips", "sporco", "sporco", "data/tulips.png", 512, 768,
     "6f7fa671ce446f85c47fcda0ba9658f22b9824baf3c1abfae7051448665c37d1", "test", _SPORCO_WATERLOO),
    ("barbara", "sporco", "sporco", "data/barbara.png", 574, 702,
     "61ce3bead097f17d7359b5466975b91938f5ba03822c3771707e42891576842b", "test",
     "classic test image attributed to Allen Gersho, believed freely redistributable "
     "(sporco data README)"),
    ("luispedro", "mahotas", "mahotas", "demos/data/luispedro.jpg", 377, 300,
     "27e7af47501a4e9a06e4d8bd8b834bd773fe7b187baef2f47e120c663524bed1", "train",
     "mahotas demo image (MIT package): portrait of its author, Luis Pedro Coelho"),
) + tuple(
    (f"imagenet_{stem}", "foolbox", "foolbox", f"data/imagenet_{stem}.jpg", height, width, sha,
     "train", _FOOLBOX)
    for stem, height, width, sha in (
        ("00_243", 512, 512, "28b7b933c8028c6e20bf74a86a709eda42ce99f14c8742cb657cb386f08a4c9d"),
        ("01_559", 512, 512, "5f03b0c74dff01b5b4195d0beabcae2a625a406e6917957ab9c455b5b7dea6d6"),
        ("02_438", 512, 512, "ccef0734c1a65549c6cb5adb0f5d9b1c0b2e2104aba50a9e5f9202dc6d4532ed"),
        ("03_990", 512, 512, "c7f0b2f1e9ee39d8f900759e8983afa2e4a2d7de090060e8bb947f6e90cace5f"),
        ("04_949", 512, 512, "a7f62f3c1d214de4718c7253871ab38209283249e131faf65b8f2b7fdc970669"),
        ("05_853", 512, 512, "8a449436c61da867528b1f4efaf8ae832ab9c9201705eae0d3af1353fbdac131"),
        ("06_609", 512, 512, "fb061102a4e58b3ed942bb2a4f9542e1e1acdc8f225ef95498e93889290e192f"),
        ("07_609", 512, 512, "2c297ad1e5c4804a647e9b34bc02ee2fc348b05a4d49050d170fb61c948efa5c"),
        ("08_915", 512, 512, "c6a3411a3987799f0de45adc142f00ca412c3e14073c635e2adfae1f3913180c"),
        ("09_455", 512, 512, "ace3716b60ac5843269b270e17020e4f8138440cd30ef3487f7d6e54da9745a4"),
        ("10_541", 683, 1024, "f325c71d9f4290ee45e99bd7ad42f4bffe513b1450ad21e7bd61c7cb137395d9"),
        ("11_630", 512, 512, "892dff58fc528fe63d2df0c783aa3eca2342637798578ce01763fbc0553eda01"),
        ("12_741", 512, 512, "6c256e17545b25bbf2e06cf6513ff48d049583569515ac4d4c3a52aea804a529"),
        ("13_471", 512, 512, "52ed0e738b90d27afcabc3e92c81ae637f160c2d9f75b93a65211005ab5dcd81"),
        ("14_129", 512, 512, "ad9371d813bf24b0365ee2f78f28c08718ee7c5975f060caa16c3f264e828139"),
        ("15_99", 512, 512, "4b588649cd835d4c65521727ebee03d9621baff1f54d3e8a53a26b53d983ec2e"),
        ("16_251", 512, 512, "ce3440a3b7beb6ca3009817504c44d39fa789e7c2f70a2eef7e2f9cc9a87b129"),
        ("17_22", 512, 512, "b432341845620e9cfd67d848c4783c32dd6eaddad45513866b17180d2b09fcf5"),
        ("18_317", 512, 512, "b9412f92f0b1c3faede45b55a44940977daa744f2040118d0538cf597fca785d"),
        ("19_305", 512, 512, "e1f58f00e2e47ce930d7ecab0e46a78316054f68c10d0742e87c1cc092324556"),
    )
)


@dataclass(frozen=True)
class CorpusEntry:
    """One photo of the corpus: where it comes from, how big it is, under which terms, which split.

    ``sha256`` is the checksum recorded when the corpus was assembled; ``actual_sha256`` that of the
    installed file (``None`` when missing). ``status`` is ``"ok"``, ``"checksum differs"`` (used, with
    a warning) or ``"missing: ..."`` (the package is not installed or lacks the file).
    """

    name: str
    package: str        # the pip distribution that ships it
    file: str           # path inside the import package, e.g. "skimage/data/astronaut.png"
    height: int
    width: int
    licence: str
    sha256: str
    split: str
    path: Path | None = None
    actual_sha256: str | None = None
    status: str = "ok"

    @property
    def available(self) -> bool:
        return self.path is not None


def _package_folder(import_name: str) -> Path | None:
    """The folder of an installed package, found without importing it (``None`` if absent)."""
    try:
        spec = importlib.util.find_spec(import_name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def corpus_entries() -> list[CorpusEntry]:
    """Every photo of the corpus, in a fixed order, with its availability on this installation.

    Computed once per process (hashing ~10 MB of files); photos whose file differs from the recorded
    checksum warn once, the first time.
    """
    return list(_entries())


@functools.lru_cache(maxsize=1)
def _entries() -> tuple[CorpusEntry, ...]:
    entries = []
    for name, dist, import_name, rel, height, width, sha, split, licence in _PHOTOS:
        split = "val" if name in VALIDATION_PHOTOS else split
        folder = _package_folder(import_name)
        common = dict(name=name, package=dist, file=f"{import_name}/{rel}", height=height,
                      width=width, licence=licence, sha256=sha, split=split)
        if folder is None:
            entries.append(CorpusEntry(**common, status=f"missing: package {dist!r} is not "
                                                        f"installed (pip install {dist})"))
            continue
        path = folder / rel
        if not path.is_file():
            entries.append(CorpusEntry(**common, status=f"missing: the installed {dist} has no "
                                                        f"{rel} (another version?)"))
            continue
        actual = _sha256(path)
        status = "ok"
        if actual != sha:
            status = "checksum differs"
            warnings.warn(f"corpus photo {name!r}: {path} differs from the recorded file (sha256 "
                          f"{actual[:12]}… instead of {sha[:12]}…); another {dist} version may ship "
                          "a re-encoded copy. It is used as is; results may differ slightly from "
                          "runs made with the recorded file.", UserWarning, stacklevel=3)
        entries.append(CorpusEntry(**common, path=path, actual_sha256=actual, status=status))
    return tuple(entries)


def _entry(name: str) -> CorpusEntry:
    for entry in corpus_entries():
        if entry.name == name:
            return entry
    names = ", ".join(e.name for e in corpus_entries())
    raise ValueError(f"no corpus photo named {name!r}; the corpus has: {names}")


@functools.lru_cache(maxsize=None)
def _load_cached(name: str) -> np.ndarray:
    entry = _entry(name)
    if entry.path is None:
        raise FileNotFoundError(f"corpus photo {name!r} is not available: {entry.status}")
    image = read_image(entry.path)
    image.setflags(write=False)  # shared by every caller in this process
    return image


def cached_photo(name: str) -> np.ndarray:
    """A corpus photo as read once per process: a shared, read-only array (no copy)."""
    return _load_cached(name)


def load_photo(name: str) -> np.ndarray:
    """A corpus photo as float32 ``H×W×3`` RGB in [0, 1] (a fresh, writable copy).

    Raises ``ValueError`` for an unknown name (listing the names) and ``FileNotFoundError`` when the
    package that ships it is not installed.
    """
    return _load_cached(name).copy()


def photos(split: str | None = None) -> dict[str, np.ndarray]:
    """The available photos of ``split`` (``"train"``, ``"val"``, ``"test"`` or ``None`` for all), by name, in
    the corpus order. Read once per process and kept in memory (read-only arrays: copy before
    modifying). Missing photos are skipped with a warning."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; the splits are {', '.join(SPLITS)} (or None)")
    chosen = [e for e in corpus_entries() if split is None or e.split == split]
    missing = [e.name for e in chosen if not e.available]
    if missing:
        warnings.warn(f"{len(missing)} corpus photo(s) unavailable and skipped: {', '.join(missing)} "
                      "(see `csnet corpus`)", UserWarning, stacklevel=2)
    return {e.name: _load_cached(e.name) for e in chosen if e.available}


def photo_names(split: str | None = None) -> list[str]:
    """Names of the available photos of ``split`` in the corpus order (no pixels are read)."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; the splits are {', '.join(SPLITS)} (or None)")
    return [e.name for e in corpus_entries() if e.available and (split is None or e.split == split)]


def format_table() -> str:
    """The corpus as a plain-text table (name, source, size, split, status), for ``csnet corpus``."""
    entries = corpus_entries()
    header = ("name", "source", "size (H×W)", "split", "status")
    rows = [(e.name, e.file, f"{e.height}×{e.width}", e.split, e.status) for e in entries]
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(header, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    counts = {s: sum(1 for e in entries if e.split == s and e.available) for s in SPLITS}
    lines.append(f"{sum(counts.values())} photos available of {len(entries)}: "
                 + ", ".join(f"{counts[s]} {s}" for s in SPLITS))
    return "\n".join(lines)


def corpus_frame():
    """The corpus as a pandas DataFrame, one row per photo (for notebooks and the README table)."""
    import pandas as pd

    return pd.DataFrame([
        {"name": e.name, "package": e.package, "file": e.file, "height": e.height, "width": e.width,
         "split": e.split, "licence": e.licence, "sha256": e.sha256,
         "actual_sha256": e.actual_sha256, "status": e.status}
        for e in corpus_entries()
    ])


# Dead leaves ----------------------------------------------------------------------------------------

def dead_leaves(size: int | tuple[int, int], seed: int, r_min: float = 2.0,
                r_max: float | None = None, exponent: float = 3.0,
                blur_sigma: float = 0.5) -> np.ndarray:
    """A seeded "dead leaves" image: an unlimited procedural stand-in for natural photos.

    Opaque disks fall on the image one after another, each hiding what is beneath (painted here front
    to back: a disk only fills the pixels no earlier disk covered), until every pixel is covered.
    Radii follow the power law p(r) ∝ r^(−exponent) on [r_min, r_max] (exponent 3 gives the scale
    invariance of natural images); r_max defaults to a third of the shorter side. Colours are
    natural-ish: a random hue with mostly moderate saturation (Beta(2, 3)) and a value drawn
    uniformly, in HSV. A Gaussian blur of ``blur_sigma`` px (0 to disable) softens the aliased disk
    edges as a lens would. Returns float32 ``H×W×3`` in [0, 1].
    """
    height, width = (size, size) if isinstance(size, (int, np.integer)) else size
    if height < 1 or width < 1:
        raise ValueError(f"dead_leaves size must be positive, got {size}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    r_max = max(r_min, min(height, width) / 3.0) if r_max is None else r_max
    if not 0 < r_min <= r_max:
        raise ValueError(f"need 0 < r_min <= r_max, got r_min={r_min}, r_max={r_max}")
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3))
    uncovered = np.ones((height, width), dtype=bool)
    remaining = height * width
    batch = 256
    while remaining > 0:
        # Inverse-CDF draw of the truncated power law (exponent != 1).
        u = rng.random(batch)
        a, b = r_min ** (1 - exponent), r_max ** (1 - exponent)
        radii = (a + u * (b - a)) ** (1 / (1 - exponent))
        centres_y = rng.uniform(-r_max / 2, height + r_max / 2, batch)
        centres_x = rng.uniform(-r_max / 2, width + r_max / 2, batch)
        colours = _natural_colours(rng, batch)
        for radius, cy, cx, colour in zip(radii, centres_y, centres_x, colours):
            y0, y1 = max(0, int(cy - radius)), min(height, int(cy + radius) + 1)
            x0, x1 = max(0, int(cx - radius)), min(width, int(cx + radius) + 1)
            if y0 >= y1 or x0 >= x1:
                continue
            yy, xx = np.ogrid[y0:y1, x0:x1]
            disk = ((yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2) & uncovered[y0:y1, x0:x1]
            if disk.any():
                image[y0:y1, x0:x1][disk] = colour
                uncovered[y0:y1, x0:x1][disk] = False
                remaining -= int(disk.sum())
                if remaining == 0:
                    break
    if blur_sigma > 0:
        image = ndimage.gaussian_filter(image, sigma=(blur_sigma, blur_sigma, 0), mode="reflect")
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _natural_colours(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` RGB colours: uniform hue, Beta(2, 3) saturation, uniform value (HSV → RGB)."""
    hue = rng.random(count)
    saturation = rng.beta(2.0, 3.0, count)
    value = rng.uniform(0.05, 1.0, count)
    sector = np.floor(hue * 6).astype(int) % 6
    f = hue * 6 - np.floor(hue * 6)
    p, q, t = value * (1 - saturation), value * (1 - f * saturation), value * (1 - (1 - f) * saturation)
    table = np.stack([
        np.stack([value, t, p], 1), np.stack([q, value, p], 1), np.stack([p, value, t], 1),
        np.stack([p, q, value], 1), np.stack([t, p, value], 1), np.stack([value, p, q], 1),
    ])
    return table[sector, np.arange(count)]
