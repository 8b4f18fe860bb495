"""Datasets: training patches, fixed test sets, and the standard benchmarks in PromptIR's layout.

Three sources of images:

- the embedded photo corpus (``csnet.corpus``: 23 train / 5 val / 7 test photos), degraded on the fly;
- procedural dead-leaves images (``csnet.corpus.dead_leaves``), unlimited;
- the standard benchmarks, for users who have downloaded them, in the folder layout of PromptIR
  (train: BSD400 + WED, Rain100L, RESIDE-OTS; test: BSD68, Urban100, Rain100L, SOTS-outdoor) and
  AdaIR's 5-task additions (GoPro, LOL-v1). See :data:`LAYOUT`.

Training balances tasks by repetition, as PromptIR does (``rain × 120``, each σ ``× 3``): a task's
weight is how many times it appears in each block of the sampling schedule. With the corpus every
task sees the same photos, so the default is equal weights.
"""
from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from csnet import corpus, paths
from csnet.degrade import SINGLE_TASKS, SYNTHESIS_VERSION, degrade, validate_task
from csnet.io import atomic_write, from_uint8, read_image, to_uint8, write_image
from csnet.metrics import CROP_BASE, crop_multiple

KEYWORD_SOURCES = ("corpus", "dead_leaves", "mixed")
EVAL_SPLITS = ("test", "val")  # the splits an evaluation set can be built from (never "train")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

LAYOUT = """\
<root>/                                  the folder holding PromptIR's data/ and test/
  data/Train/Denoise/*                   clean images for noise (BSD400 + WED; subfolders allowed)
  data/Train/Derain/rainy/rain-N.png     Rain100L train input ...
  data/Train/Derain/gt/norain-N.png      ... and its clean image
  data/Train/Dehaze/synthetic/**/ID_A_BETA.jpg   RESIDE-OTS hazy image (e.g. 0025_0.8_0.1.jpg) ...
  data/Train/Dehaze/original/ID.jpg      ... and its clean image (any image extension)
  data/Train/Deblur/{blur,sharp}/NAME    GoPro train pairs, same file name (AdaIR's layout)
  data/Train/Enhance/{low,gt}/NAME       LOL-v1 train pairs, same file name (AdaIR's layout)
  test/denoise/bsd68/*, test/denoise/urban100/*   clean test images for noise
  test/derain/Rain100L/{input,target}/NAME        same file name (or rain-N / norain-N)
  test/dehaze/{input/ID_A_BETA.jpg, target/ID.png}   SOTS-outdoor
  test/deblur/{input,target}/NAME                 GoPro test pairs
  test/enhance/{input,target}/NAME                LOL-v1 eval15 (its low/ and high/ folders)"""

DENOISE_BENCHMARKS = ("bsd68", "urban100")


# PromptIR-layout benchmarks -------------------------------------------------------------------------

def _layout_error(what: str) -> str:
    return f"{what}\nExpected PromptIR's layout:\n{LAYOUT}"


def _folder(path: Path, description: str) -> Path:
    if not path.is_dir():
        raise FileNotFoundError(_layout_error(f"missing folder {path} ({description})"))
    return path


def _images_in(folder: Path, description: str, recursive: bool = False) -> list[Path]:
    _folder(folder, description)
    found = folder.rglob("*") if recursive else folder.iterdir()
    images = sorted(p for p in found if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                    and not p.name.startswith("."))
    if not images:
        raise ValueError(_layout_error(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder} "
                                       f"({description})"))
    return images


def _check_split(split: str) -> None:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")


def _check_root(root: str | os.PathLike) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(_layout_error(f"the dataset folder {root} does not exist"))
    return root


def _pair_up(degraded: list[Path], counterpart, what: str) -> list[tuple[Path, Path]]:
    """Pair each degraded file with its clean file; every missing counterpart is an error."""
    pairs, missing = [], []
    for path in degraded:
        clean = counterpart(path)
        if clean is None or not clean.is_file():
            missing.append(f"{path} -> {clean if clean is not None else '(no clean file)'}")
        else:
            pairs.append((path, clean))
    if missing:
        shown = "\n  ".join(missing[:5])
        more = f"\n  ... and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise ValueError(_layout_error(f"{len(missing)} {what} image(s) have no clean counterpart:"
                                       f"\n  {shown}{more}"))
    return pairs


def _with_any_suffix(folder: Path, stem: str, preferred: str) -> Path | None:
    """``folder/stem<preferred>`` if it exists, else ``folder/stem`` with any image suffix."""
    first = folder / f"{stem}{preferred}"
    if first.is_file():
        return first
    for suffix in IMAGE_SUFFIXES:
        for candidate in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def denoise_images(root: str | os.PathLike, split: str = "train",
                   benchmark: str | None = None) -> list[Path]:
    """Clean images for the noise tasks: ``data/Train/Denoise/**`` (BSD400 + WED) for training,
    ``test/denoise/<benchmark>`` (``bsd68``, the default, or ``urban100``) for testing. The noise is
    added on the fly with fixed seeds."""
    root = _check_root(root)
    _check_split(split)
    if split == "train":
        return _images_in(root / "data" / "Train" / "Denoise", "BSD400 + WED clean images",
                          recursive=True)
    benchmark = benchmark or "bsd68"
    if benchmark not in DENOISE_BENCHMARKS:
        raise ValueError(f"unknown denoising benchmark {benchmark!r}; choose one of "
                         f"{', '.join(DENOISE_BENCHMARKS)}")
    return _images_in(root / "test" / "denoise" / benchmark, f"{benchmark} clean test images")


def derain_pairs(root: str | os.PathLike, split: str = "train") -> list[tuple[Path, Path]]:
    """Rain100L ``(rainy, clean)`` pairs: ``data/Train/Derain/rainy/rain-N.png`` ↔
    ``gt/norain-N.png`` (PromptIR's rule), ``test/derain/Rain100L/input/NAME`` ↔ ``target/NAME``
    (or ``norain-N`` for ``rain-N``)."""
    root = _check_root(root)
    _check_split(split)
    if split == "train":
        base = root / "data" / "Train" / "Derain"
        rainy = _images_in(base / "rainy", "Rain100L rainy images rain-N.png")
        gt = _folder(base / "gt", "Rain100L clean images norain-N.png")
        return _pair_up(rainy, lambda p: gt / ("norain-" + p.name.split("rain-")[-1]), "rainy")
    base = root / "test" / "derain" / "Rain100L"
    inputs = _images_in(base / "input", "Rain100L rainy test images")
    target = _folder(base / "target", "Rain100L clean test images")

    def counterpart(path: Path) -> Path:
        same = target / path.name
        return same if same.is_file() or "rain-" not in path.name else (
            target / ("norain-" + path.name.split("rain-")[-1]))
    return _pair_up(inputs, counterpart, "rainy")


def _hazy_id(path: Path) -> str:
    """RESIDE's hazy names are ``<id>_<A>_<beta>.<ext>`` (``0001_0.8_0.2.jpg``): the id is the part
    before the first underscore."""
    return path.stem.split("_")[0]


def dehaze_pairs(root: str | os.PathLike, split: str = "train") -> list[tuple[Path, Path]]:
    """RESIDE ``(hazy, clean)`` pairs: ``data/Train/Dehaze/synthetic/**/ID_A_BETA.EXT`` ↔
    ``original/ID.EXT`` (OTS), ``test/dehaze/input/ID_A_BETA.EXT`` ↔ ``target/ID.png`` (SOTS-outdoor);
    the clean file may have any image extension."""
    root = _check_root(root)
    _check_split(split)
    if split == "train":
        base = root / "data" / "Train" / "Dehaze"
        hazy = _images_in(base / "synthetic", "RESIDE-OTS hazy images ID_A_BETA.jpg", recursive=True)
        original = _folder(base / "original", "RESIDE-OTS clean images ID.jpg")
        return _pair_up(hazy, lambda p: _with_any_suffix(original, _hazy_id(p), p.suffix), "hazy")
    base = root / "test" / "dehaze"
    hazy = _images_in(base / "input", "SOTS-outdoor hazy images ID_A_BETA.jpg")
    target = _folder(base / "target", "SOTS-outdoor clean images ID.png")
    return _pair_up(hazy, lambda p: _with_any_suffix(target, _hazy_id(p), ".png"), "hazy")


def _same_name_pairs(degraded_dir: Path, clean_dir: Path, what: str) -> list[tuple[Path, Path]]:
    degraded = _images_in(degraded_dir, f"{what} degraded images")
    _folder(clean_dir, f"{what} clean images")
    return _pair_up(degraded, lambda p: clean_dir / p.name, what)


def deblur_pairs(root: str | os.PathLike, split: str = "train") -> list[tuple[Path, Path]]:
    """GoPro ``(blurry, sharp)`` pairs with the same file name: ``data/Train/Deblur/{blur,sharp}``,
    ``test/deblur/{input,target}`` (AdaIR's layout)."""
    root = _check_root(root)
    _check_split(split)
    if split == "train":
        base = root / "data" / "Train" / "Deblur"
        return _same_name_pairs(base / "blur", base / "sharp", "GoPro")
    base = root / "test" / "deblur"
    return _same_name_pairs(base / "input", base / "target", "GoPro")


def lowlight_pairs(root: str | os.PathLike, split: str = "train") -> list[tuple[Path, Path]]:
    """LOL-v1 ``(low, normal)`` pairs with the same file name: ``data/Train/Enhance/{low,gt}``,
    ``test/enhance/{input,target}`` (AdaIR's layout; LOL's own folders are ``low`` and ``high``)."""
    root = _check_root(root)
    _check_split(split)
    if split == "train":
        base = root / "data" / "Train" / "Enhance"
        return _same_name_pairs(base / "low", base / "gt", "LOL")
    base = root / "test" / "enhance"
    return _same_name_pairs(base / "input", base / "target", "LOL")


_PAIR_LOADERS = {"derain": derain_pairs, "dehaze": dehaze_pairs, "deblur": deblur_pairs,
                 "lowlight": lowlight_pairs}


def benchmark_files(root: str | os.PathLike, task: str, split: str = "train",
                    benchmark: str | None = None) -> list[tuple[Path | None, Path]]:
    """``(degraded, clean)`` file pairs of the standard benchmark for a single ``task`` key;
    ``degraded`` is ``None`` for the noise tasks, whose noise is synthesised with fixed seeds.

    Only the seven single task keys have benchmarks; primitives and composites are synthesised
    (use ``source="corpus"``, ``"dead_leaves"`` or ``"mixed"``).
    """
    task = validate_task(task)
    if task not in SINGLE_TASKS:
        raise ValueError(f"task {task!r} has no standard benchmark; benchmarks exist for "
                         f"{', '.join(SINGLE_TASKS)}. Synthesise it from the corpus instead "
                         "(source='corpus', 'dead_leaves' or 'mixed').")
    if task.startswith("denoise_"):
        return [(None, clean) for clean in denoise_images(root, split, benchmark)]
    if benchmark is not None:
        raise ValueError(f"benchmark= only chooses among the denoising test sets "
                         f"({', '.join(DENOISE_BENCHMARKS)}); task {task!r} has one benchmark")
    return list(_PAIR_LOADERS[task](root, split))


# Shared helpers --------------------------------------------------------------------------------------

def _check_seed(seed: Any, what: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def _is_keyword_source(source: Any) -> bool:
    return isinstance(source, str) and source in KEYWORD_SOURCES


def _root_of(source: Any) -> Path:
    """The dataset root given as ``source``; an error naming the accepted sources otherwise."""
    if isinstance(source, (str, os.PathLike)):
        root = Path(source)
        if root.is_dir():
            return root
        raise FileNotFoundError(_layout_error(
            f"source {str(source)!r} is neither one of {', '.join(KEYWORD_SOURCES)} nor an existing "
            "dataset folder"))
    raise ValueError(f"source must be one of {', '.join(KEYWORD_SOURCES)} or a dataset folder, "
                     f"got {source!r}")


def _dihedral(image: np.ndarray, mode: int) -> np.ndarray:
    """One of the 8 flips/rotations by 90° (mode 0 is the identity)."""
    if mode >= 4:
        image = image[:, ::-1]
    return np.rot90(image, k=mode % 4)


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))


# Training patches -------------------------------------------------------------------------------------

class TrainPatches(Dataset):
    """Random training patches, degraded on the fly, with a repetition-balanced task mix.

    Item ``i`` is deterministic given ``(seed, i)``: ``{"degraded": (3, P, P), "clean": (3, P, P),
    "task": key, "task_index": index into tasks}``. Each item crops a random ``patch_size`` square
    from a random source image, applies one of the 8 flips/90° rotations, then degrades it (the clean
    patch is augmented before degrading, so rain still falls downwards and haze still thickens
    upwards; with benchmark pairs, both images get the same crop and augmentation).

    ``source``: ``"corpus"`` (the train-split photos, read once per process and kept in memory),
    ``"dead_leaves"`` (a fresh seeded dead-leaves patch per item), ``"mixed"`` (either, with equal
    probability), or a dataset root in PromptIR's layout (:data:`LAYOUT`; single task keys only).

    ``task_weights``: repetition counts, as a mapping ``task -> count`` or a sequence aligned with
    ``tasks`` (default 1 each; non-integer weights are scaled to counts summing to about 1000). Items
    are drawn in blocks of ``sum(counts)``, each block a seeded shuffle of the tasks repeated by their
    counts, so every block has the exact mix.
    """

    def __init__(self, tasks: Sequence[str], patch_size: int, length: int, seed: int,
                 source: str | os.PathLike = "corpus",
                 task_weights: Mapping[str, int] | Sequence[int] | None = None):
        if isinstance(tasks, str):
            tasks = [tasks]
        self.tasks = tuple(validate_task(t) for t in tasks)
        if not self.tasks:
            raise ValueError("tasks is empty: give at least one task key")
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"tasks lists a key twice: {self.tasks}; use task_weights to repeat one")
        self.patch_size = _check_positive_int(patch_size, "patch_size")
        self.length = _check_positive_int(length, "length")
        self.seed = _check_seed(seed)
        self.weights = self._weights(task_weights)
        self._schedule = np.repeat(np.arange(len(self.tasks)), self.weights)
        self.source = source
        self._root: Path | None = None
        self._files: dict[str, list[tuple[Path | None, Path]]] = {}
        if _is_keyword_source(source):
            self._photo_names = corpus.photo_names("train") if source in ("corpus", "mixed") else []
            if source in ("corpus", "mixed"):
                self._check_corpus_sizes()
        else:
            self._root = _root_of(source)
            self._files = {task: benchmark_files(self._root, task, "train") for task in self.tasks}

    def _weights(self, task_weights) -> np.ndarray:
        """Repetition counts per task: integers as given; other positive weights are scaled to
        counts summing to about 1000 (the mix is then exact to 0.1 %)."""
        if task_weights is None:
            return np.ones(len(self.tasks), dtype=int)
        if isinstance(task_weights, Mapping):
            unknown = sorted(set(task_weights) - set(self.tasks))
            if unknown:
                raise ValueError(f"task_weights names {', '.join(unknown)}, not in tasks "
                                 f"{', '.join(self.tasks)}")
            values = [task_weights.get(task, 1) for task in self.tasks]
        else:
            values = list(task_weights)
            if len(values) != len(self.tasks):
                raise ValueError(f"task_weights has {len(values)} values for {len(self.tasks)} tasks")
        for task, value in zip(self.tasks, values):
            if (isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))
                    or not np.isfinite(value) or value <= 0):
                raise ValueError(f"task_weights must be positive numbers (repetition counts, as "
                                 f"PromptIR repeats rain ×120); got {value!r} for {task!r}")
        weights = np.asarray(values, dtype=float)
        if np.all(weights == np.round(weights)):
            return weights.astype(int)
        return np.maximum(1, np.round(weights / weights.sum() * 1000)).astype(int)

    def _check_corpus_sizes(self) -> None:
        entries = {e.name: e for e in corpus.corpus_entries()}
        small = [f"{n} ({entries[n].height}×{entries[n].width})" for n in self._photo_names
                 if min(entries[n].height, entries[n].width) < self.patch_size]
        if small:
            largest = min(min(entries[n].height, entries[n].width) for n in self._photo_names)
            raise ValueError(f"patch_size {self.patch_size} is larger than these train photos: "
                             f"{', '.join(small)}; the corpus allows patches up to {largest} px "
                             "(or use source='dead_leaves')")
        if not self._photo_names:
            raise ValueError("no train photos are available (see `csnet corpus`); install the "
                             "packages that ship them or use source='dead_leaves'")

    def __len__(self) -> int:
        return self.length

    def task_of(self, index: int) -> str:
        """The task of item ``index`` (cheap: no image is read)."""
        return self.tasks[self._task_index(self._check_index(index))]

    def _check_index(self, index: int) -> int:
        if index < 0:
            index += self.length
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} patches")
        return int(index)

    def _task_index(self, index: int) -> int:
        block, position = divmod(index, len(self._schedule))
        order = np.random.default_rng([self.seed, block, 1]).permutation(len(self._schedule))
        return int(self._schedule[order[position]])

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = self._check_index(index)
        task_index = self._task_index(index)
        task = self.tasks[task_index]
        rng = np.random.default_rng([self.seed, index, 0])
        degrade_seed = int(rng.integers(2**31))
        mode = int(rng.integers(8))
        if self._root is not None:
            degraded, clean = self._benchmark_patch(task, rng, mode, degrade_seed)
        else:
            clean = _dihedral(self._clean_patch(rng), mode)
            degraded, _ = degrade(np.ascontiguousarray(clean), task, degrade_seed)
        return {"degraded": _to_tensor(degraded), "clean": _to_tensor(clean), "task": task,
                "task_index": task_index}

    def _clean_patch(self, rng: np.random.Generator) -> np.ndarray:
        size = self.patch_size
        use_corpus = self.source == "corpus" or (self.source == "mixed" and rng.random() < 0.5)
        if not use_corpus:
            return corpus.dead_leaves(size, int(rng.integers(2**31)))
        name = self._photo_names[int(rng.integers(len(self._photo_names)))]
        photo = corpus.cached_photo(name)
        top = int(rng.integers(photo.shape[0] - size + 1))
        left = int(rng.integers(photo.shape[1] - size + 1))
        return photo[top:top + size, left:left + size]

    def _benchmark_patch(self, task: str, rng: np.random.Generator, mode: int,
                         degrade_seed: int) -> tuple[np.ndarray, np.ndarray]:
        files = self._files[task]
        degraded_path, clean_path = files[int(rng.integers(len(files)))]
        clean = read_image(clean_path)
        degraded = read_image(degraded_path) if degraded_path is not None else None
        if degraded is not None and degraded.shape != clean.shape:
            raise ValueError(f"{degraded_path} is {degraded.shape[0]}×{degraded.shape[1]} but its "
                             f"clean image {clean_path} is {clean.shape[0]}×{clean.shape[1]}")
        size = self.patch_size
        if min(clean.shape[:2]) < size:
            raise ValueError(f"{clean_path} is {clean.shape[0]}×{clean.shape[1]} px, too small for "
                             f"{size}×{size} patches")
        top = int(rng.integers(clean.shape[0] - size + 1))
        left = int(rng.integers(clean.shape[1] - size + 1))
        clean = _dihedral(clean[top:top + size, left:left + size], mode)
        if degraded is None:
            degraded, _ = degrade(np.ascontiguousarray(clean), task, degrade_seed)
        else:
            degraded = _dihedral(degraded[top:top + size, left:left + size], mode)
        return degraded, clean


# Fixed test sets -------------------------------------------------------------------------------------

@dataclass
class TestImage:
    """One image of a fixed test set: the degraded input, its clean target, and what was drawn."""

    __test__ = False  # not a pytest test class

    name: str
    degraded: np.ndarray
    clean: np.ndarray
    params: dict = field(default_factory=dict)


def centre_crop(image: np.ndarray, max_side: int | None = None, base: int = CROP_BASE) -> np.ndarray:
    """Centre-crop to at most ``max_side`` per side, then to a multiple of ``base`` (PromptIR's
    ``crop_img``)."""
    if max_side is not None:
        height, width = image.shape[:2]
        top, left = (height - min(height, max_side)) // 2, (width - min(width, max_side)) // 2
        image = image[top:top + min(height, max_side), left:left + min(width, max_side)]
    return crop_multiple(image, base)


def image_seed(seed: int, name: str) -> int:
    """The fixed degradation seed of test image ``name`` in the test set of ``seed``: stable across
    runs, machines and ``max_images``."""
    state = np.random.SeedSequence([seed, zlib.crc32(name.encode("utf-8"))]).generate_state(1)
    return int(state[0])


def _source_items(task: str, source, seed: int, max_images: int | None, benchmark: str | None,
                  split: str) -> tuple[str, list[tuple[str, Any, Any, str]]]:
    """``(cache tag, [(name, clean loader, degraded loader or None, fingerprint)])``."""
    if source == "corpus":
        entries = [e for e in corpus.corpus_entries() if e.split == split and e.available]
        if not entries:
            raise ValueError(f"no {split} photos are available (see `csnet corpus`)")
        items = [(e.name, (lambda n=e.name: corpus.load_photo(n)), None, e.actual_sha256)
                 for e in entries]
        return "corpus", items[:max_images]
    if source == "dead_leaves":
        prefix = "dead_leaves" if split == "test" else f"dead_leaves_{split}"  # test names predate val
        items = [(f"{prefix}_{k:02d}",
                  (lambda k=k: corpus.dead_leaves(256, image_seed(seed, f"{prefix}_{k}"))),
                  None, "procedural") for k in range(max_images or 8)]
        return "dead_leaves", items
    if source == "mixed":
        raise ValueError("test sets are fixed: use source='corpus', 'dead_leaves' or a dataset "
                         "folder, not 'mixed'")
    if split != "test":
        raise ValueError(f"the benchmarks in PromptIR's layout have no {split!r} split, only 'test' "
                         "(hold out training files in a folder of your own and pass it as a source)")
    root = _root_of(source).resolve()
    files = benchmark_files(root, task, "test", benchmark)[:max_images]
    digest = hashlib.sha1(f"{root}|{benchmark}".encode()).hexdigest()[:10]
    items = []
    for degraded_path, clean_path in files:
        stat = clean_path.stat()
        fingerprint = f"{clean_path.name}:{stat.st_size}:{stat.st_mtime_ns}"
        if degraded_path is not None:
            dstat = degraded_path.stat()
            fingerprint += f"|{degraded_path.name}:{dstat.st_size}:{dstat.st_mtime_ns}"
        name = (degraded_path or clean_path).stem
        items.append((name, (lambda p=clean_path: read_image(p)),
                      (lambda p=degraded_path: read_image(p)) if degraded_path else None,
                      fingerprint))
    return f"{root.name}-{digest}", items


def _save_exact(stem: Path, image: np.ndarray) -> str:
    """Save losslessly: as PNG when the pixels are exactly 8-bit levels, else as float32 NPY."""
    if np.array_equal(from_uint8(to_uint8(image)), image):
        write_image(stem.with_name(stem.name + ".png"), image)
        return stem.name + ".png"
    with atomic_write(stem.with_name(stem.name + ".npy")) as tmp, open(tmp, "wb") as handle:
        np.save(handle, image.astype(np.float32), allow_pickle=False)
    return stem.name + ".npy"


def _load_exact(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        try:
            image = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise ValueError(f"{path}: corrupt cache file ({err})") from err
        if image.dtype != np.float32 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"{path}: unexpected cached array {image.dtype} {image.shape}")
        return image
    return read_image(path)


def _load_cached(folder: Path, name: str, fingerprint: str) -> TestImage | None:
    """The cached test image, or ``None`` if absent, stale or corrupt (it is then rebuilt)."""
    record_path = folder / f"{name}.json"
    if not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text())
        if record.get("fingerprint") != fingerprint:
            return None
        degraded = _load_exact(folder / record["degraded"])
        clean = _load_exact(folder / record["clean"])
    except (ValueError, KeyError, TypeError, OSError):
        return None
    if degraded.shape != clean.shape or list(clean.shape) != record.get("shape"):
        return None
    return TestImage(name, degraded, clean, record.get("params", {}))


def test_set(task: str, source: str | os.PathLike = "corpus", seed: int = 0,
             max_images: int | None = None, max_side: int | None = None,
             benchmark: str | None = None, split: str = "test") -> list[TestImage]:
    """A fixed evaluation set for ``task``: the same images, degraded the same way, every time.

    ``split`` is ``"test"`` (report numbers) or ``"val"`` (make choices: the corpus's validation
    photos, or dead-leaves images under their own names; the benchmarks have no validation split).
    Whole images (the corpus's photos of ``split``, 256² dead-leaves images, or a benchmark's test files)
    are centre-cropped to at most ``max_side`` per side and then to a multiple of 16, the crop of
    PromptIR's test loaders. Synthesised degradations use the per-image seed :func:`image_seed`
    ``(seed, name)``. The result is cached under ``csnet.paths.cache_dir("testsets", ...)`` keyed by
    source, task, split, seed, crop and synthesis version, and reused; a missing, stale (changed
    source file) or corrupt cache file is rebuilt. Benchmarks with real degraded images (Rain100L, SOTS, GoPro,
    LOL) use them as they are; ``benchmark`` picks ``bsd68`` or ``urban100`` for denoising.
    """
    task = validate_task(task)
    seed = _check_seed(seed)
    if max_images is not None:
        max_images = _check_positive_int(max_images, "max_images")
    if max_side is not None:
        max_side = _check_positive_int(max_side, "max_side")
        if max_side < CROP_BASE:
            raise ValueError(f"max_side must be at least {CROP_BASE} (the crop is to a multiple of "
                             f"{CROP_BASE}), got {max_side}")
    if split not in EVAL_SPLITS:
        raise ValueError(f"split must be one of {EVAL_SPLITS} (evaluation sets), got {split!r}")
    tag, items = _source_items(task, source, seed, max_images, benchmark, split)
    key = f"{task}_{split}_seed{seed}_side{max_side or 'full'}_v{SYNTHESIS_VERSION}"
    folder = paths.cache_dir("testsets", tag, key)
    result = []
    for name, load_clean, load_degraded, fingerprint in items:
        cached = _load_cached(folder, name, fingerprint)
        if cached is None:
            cached = _build_test_image(folder, task, seed, name, load_clean, load_degraded,
                                       fingerprint, max_side)
        result.append(cached)
    return result


test_set.__test__ = False  # a library function, not a pytest test, wherever it is imported


def _build_test_image(folder: Path, task: str, seed: int, name: str, load_clean, load_degraded,
                      fingerprint: str, max_side: int | None) -> TestImage:
    clean_full = load_clean()
    try:
        clean = np.ascontiguousarray(centre_crop(clean_full, max_side))
    except ValueError as err:
        raise ValueError(f"test image {name!r}: {err}") from err
    if load_degraded is not None:
        degraded_full = load_degraded()
        if degraded_full.shape != clean_full.shape:
            raise ValueError(f"test image {name!r}: the degraded image is "
                             f"{degraded_full.shape[0]}×{degraded_full.shape[1]} but the clean one "
                             f"{clean_full.shape[0]}×{clean_full.shape[1]}")
        degraded = np.ascontiguousarray(centre_crop(degraded_full, max_side))
        params = {"task": task, "source": "benchmark file"}
    else:
        degraded, params = degrade(clean, task, image_seed(seed, name))
    record = {
        "name": name, "task": task, "fingerprint": fingerprint, "shape": list(clean.shape),
        "clean": _save_exact(folder / f"{name}.clean", clean),
        "degraded": _save_exact(folder / f"{name}.degraded", degraded),
        "params": params,
    }
    with atomic_write(folder / f"{name}.json") as tmp:  # written last: it marks the entry complete
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
    return TestImage(name, degraded, clean, params)
