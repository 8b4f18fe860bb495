"""csnet.data: training patches, fixed cached test sets, and the PromptIR-layout benchmark loaders."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from csnet import data
from csnet.corpus import load_photo, photo_names
from csnet.data import (TrainPatches, benchmark_files, dehaze_pairs, denoise_images, derain_pairs,
                        deblur_pairs, image_seed, lowlight_pairs, test_set)
from csnet.degrade import degrade
from csnet.io import from_uint8, read_image, to_uint8
from csnet.metrics import crop_multiple


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CSNET_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


# A small tree in PromptIR's layout, with the real file naming ----------------------------------------

def _save(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(image)).save(path, quality=100)


def _scene(seed: int, height: int = 48, width: int = 56) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((height, width, 3)).astype(np.float32)


def _halved(image: np.ndarray) -> np.ndarray:
    """The 'degraded' files of the tree are the clean image at half brightness, so that a test can
    check which crop of which file a patch came from."""
    return from_uint8(to_uint8(image) // 2)


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "PromptIR"
    train, test = root / "data" / "Train", root / "test"
    for name in ("1.png", "sub/2.jpg"):
        _save(train / "Denoise" / name, _scene(len(name)))
    for n in (1, 2):
        clean = _scene(10 + n)
        _save(train / "Derain" / "gt" / f"norain-{n}.png", clean)
        _save(train / "Derain" / "rainy" / f"rain-{n}.png", _halved(clean))
    for ident in ("0001", "0002"):
        clean = _scene(int(ident) + 20)
        _save(train / "Dehaze" / "original" / f"{ident}.png", clean)
    _save(train / "Dehaze" / "synthetic" / "part1" / "0001_0.8_0.2.png",
          _halved(read_image(train / "Dehaze" / "original" / "0001.png")))
    _save(train / "Dehaze" / "synthetic" / "part1" / "0001_0.9_0.1.png",
          _halved(read_image(train / "Dehaze" / "original" / "0001.png")))
    _save(train / "Dehaze" / "synthetic" / "part2" / "0002_1_0.04.png",
          _halved(read_image(train / "Dehaze" / "original" / "0002.png")))
    gopro = "GOPR0372_07_00_000047.png"
    _save(train / "Deblur" / "sharp" / gopro, _scene(30))
    _save(train / "Deblur" / "blur" / gopro, _halved(_scene(30)))
    _save(train / "Enhance" / "gt" / "2.png", _scene(31))
    _save(train / "Enhance" / "low" / "2.png", _halved(_scene(31)))
    _save(test / "denoise" / "bsd68" / "3096.png", _scene(40, 40, 50))
    _save(test / "denoise" / "bsd68" / "12084.png", _scene(41, 37, 45))
    _save(test / "denoise" / "urban100" / "img_001.png", _scene(42, 64, 64))
    _save(test / "derain" / "Rain100L" / "target" / "1.png", _scene(43, 35, 50))
    _save(test / "derain" / "Rain100L" / "input" / "1.png", _halved(_scene(43, 35, 50)))
    _save(test / "derain" / "Rain100L" / "target" / "norain-2.png", _scene(44))
    _save(test / "derain" / "Rain100L" / "input" / "rain-2.png", _halved(_scene(44)))
    _save(test / "dehaze" / "target" / "0001.png", _scene(45))
    _save(test / "dehaze" / "input" / "0001_0.8_0.2.jpg", _scene(46))
    _save(test / "deblur" / "target" / gopro, _scene(47))
    _save(test / "deblur" / "input" / gopro, _scene(48))
    _save(test / "enhance" / "target" / "1.png", _scene(49))
    _save(test / "enhance" / "input" / "1.png", _scene(50))
    return root


def test_loaders_pair_the_real_file_names(tree):
    train, test = tree / "data" / "Train", tree / "test"
    assert denoise_images(tree) == [train / "Denoise" / "1.png", train / "Denoise" / "sub" / "2.jpg"]
    assert derain_pairs(tree) == [
        (train / "Derain" / "rainy" / "rain-1.png", train / "Derain" / "gt" / "norain-1.png"),
        (train / "Derain" / "rainy" / "rain-2.png", train / "Derain" / "gt" / "norain-2.png")]
    synthetic, original = train / "Dehaze" / "synthetic", train / "Dehaze" / "original"
    assert dehaze_pairs(tree) == [
        (synthetic / "part1" / "0001_0.8_0.2.png", original / "0001.png"),
        (synthetic / "part1" / "0001_0.9_0.1.png", original / "0001.png"),
        (synthetic / "part2" / "0002_1_0.04.png", original / "0002.png")]
    gopro = "GOPR0372_07_00_000047.png"
    assert deblur_pairs(tree) == [(train / "Deblur" / "blur" / gopro, train / "Deblur" / "sharp" / gopro)]
    assert lowlight_pairs(tree) == [(train / "Enhance" / "low" / "2.png", train / "Enhance" / "gt" / "2.png")]

    assert denoise_images(tree, "test") == [test / "denoise" / "bsd68" / "12084.png",
                                            test / "denoise" / "bsd68" / "3096.png"]
    assert denoise_images(tree, "test", "urban100") == [test / "denoise" / "urban100" / "img_001.png"]
    rain = test / "derain" / "Rain100L"
    assert derain_pairs(tree, "test") == [(rain / "input" / "1.png", rain / "target" / "1.png"),
                                          (rain / "input" / "rain-2.png", rain / "target" / "norain-2.png")]
    assert dehaze_pairs(tree, "test") == [(test / "dehaze" / "input" / "0001_0.8_0.2.jpg",
                                           test / "dehaze" / "target" / "0001.png")]
    assert deblur_pairs(tree, "test") == [(test / "deblur" / "input" / gopro, test / "deblur" / "target" / gopro)]
    assert lowlight_pairs(tree, "test") == [(test / "enhance" / "input" / "1.png",
                                             test / "enhance" / "target" / "1.png")]
    assert benchmark_files(tree, "denoise_50") == [(None, p) for p in denoise_images(tree)]
    assert benchmark_files(tree, "derain", "test") == derain_pairs(tree, "test")


def test_missing_folder_names_the_expected_layout(tmp_path, tree):
    import shutil

    with pytest.raises(FileNotFoundError,
                       match=r"(?s)dataset folder .*nothing does not exist.*Expected PromptIR's layout"):
        derain_pairs(tmp_path / "nothing")
    shutil.rmtree(tree / "data" / "Train" / "Derain" / "rainy")
    with pytest.raises(FileNotFoundError, match=r"(?s)missing folder .*Derain/rainy \(Rain100L rainy.*Expected"):
        derain_pairs(tree)
    shutil.rmtree(tree / "test" / "dehaze" / "target")
    with pytest.raises(FileNotFoundError, match=r"(?s)dehaze/target.*data/Train/Derain/rainy/rain-N.png"):
        dehaze_pairs(tree, "test")
    shutil.rmtree(tree / "data" / "Train" / "Deblur")
    with pytest.raises(FileNotFoundError, match=r"Deblur/blur"):
        TrainPatches(["deblur"], 16, 4, 0, source=tree)


def test_empty_folder_says_it_has_no_images(tree):
    folder = tree / "test" / "denoise" / "urban100"
    for path in folder.iterdir():
        path.unlink()
    (folder / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match=r"(?s)no images .* in .*urban100.*Expected PromptIR's layout"):
        denoise_images(tree, "test", "urban100")


def test_an_unpaired_image_is_named(tree):
    (tree / "data" / "Train" / "Derain" / "gt" / "norain-2.png").unlink()
    with pytest.raises(ValueError,
                       match=r"(?s)1 rainy image\(s\) have no clean counterpart.*rain-2.png -> .*norain-2.png"):
        derain_pairs(tree)


def test_benchmark_arguments_are_checked(tree):
    with pytest.raises(ValueError, match="has no standard benchmark"):
        benchmark_files(tree, "rain+haze")
    with pytest.raises(ValueError, match="bsd68, urban100"):
        denoise_images(tree, "test", "set12")
    with pytest.raises(ValueError, match="split must be"):
        derain_pairs(tree, "val")
    with pytest.raises(ValueError, match="only chooses among the denoising"):
        benchmark_files(tree, "derain", "test", benchmark="urban100")


# Training patches ---------------------------------------------------------------------------------------

def test_corpus_patches_are_deterministic_per_seed_and_index():
    tasks = ["denoise_25", "derain", "rain+haze"]
    dataset = TrainPatches(tasks, patch_size=32, length=12, seed=0)
    item = dataset[5]
    assert set(item) == {"degraded", "clean", "task", "task_index"}
    assert item["degraded"].shape == item["clean"].shape == (3, 32, 32)
    assert item["degraded"].dtype == torch.float32
    assert 0 <= item["clean"].min() and item["clean"].max() <= 1
    assert tasks[item["task_index"]] == item["task"]
    assert not torch.equal(item["degraded"], item["clean"])
    again = TrainPatches(tasks, patch_size=32, length=12, seed=0)[5]
    assert torch.equal(item["degraded"], again["degraded"]) and torch.equal(item["clean"], again["clean"])
    other = TrainPatches(tasks, patch_size=32, length=12, seed=1)[5]
    assert not torch.equal(item["clean"], other["clean"])
    assert torch.equal(dataset[-1]["clean"], dataset[11]["clean"])
    with pytest.raises(IndexError):
        dataset[12]


def test_patches_come_from_train_photos_only(monkeypatch):
    from csnet import corpus

    used = []
    real = corpus.cached_photo
    monkeypatch.setattr(corpus, "cached_photo", lambda name: used.append(name) or real(name))
    dataset = TrainPatches(["derain"], patch_size=16, length=40, seed=3)
    for index in range(len(dataset)):
        dataset[index]
    assert len(used) == 40 and len(set(used)) > 10
    assert set(used) <= set(photo_names("train"))
    assert not set(used) & (set(photo_names("val")) | set(photo_names("test")))
    held_out = set(photo_names("val")) | set(photo_names("test"))
    assert not held_out & set(dataset._photo_names) and len(dataset._photo_names) == 23


def test_the_task_mix_is_balanced_by_repetition():
    dataset = TrainPatches(["denoise_15", "derain", "dehaze"], patch_size=16, length=60, seed=0,
                           task_weights={"derain": 3})
    counts = Counter(dataset.task_of(i) for i in range(60))
    assert counts == {"derain": 36, "denoise_15": 12, "dehaze": 12}
    for block in range(12):  # every block of 5 items holds the exact mix
        assert Counter(dataset.task_of(block * 5 + j) for j in range(5))["derain"] == 3
    equal = TrainPatches(["denoise_15", "derain"], patch_size=16, length=40, seed=0)
    assert Counter(equal.task_of(i) for i in range(40)) == {"denoise_15": 20, "derain": 20}
    sequences = [[TrainPatches(["denoise_15", "derain"], 16, 40, seed=s).task_of(i) for i in range(40)]
                 for s in (0, 1)]
    assert sequences[0] != sequences[1]  # the order is shuffled per seed
    as_list = TrainPatches(["denoise_15", "derain"], 16, 40, seed=0, task_weights=[1.0, 3.0])
    assert Counter(as_list.task_of(i) for i in range(40)) == {"denoise_15": 10, "derain": 30}
    fractional = TrainPatches(["denoise_15", "derain"], 16, 10, seed=0, task_weights=[0.25, 0.75])
    assert list(fractional.weights) == [250, 750]


def test_dihedral_gives_eight_distinct_orientations():
    image = np.arange(2 * 3 * 1).reshape(2, 3, 1)
    variants = {data._dihedral(image, mode).tobytes() + bytes(data._dihedral(image, mode).shape)
                for mode in range(8)}
    assert len(variants) == 8


def test_dead_leaves_and_mixed_sources():
    leaves = TrainPatches(["denoise_50"], patch_size=24, length=4, seed=0, source="dead_leaves")
    item = leaves[0]
    assert item["clean"].shape == (3, 24, 24)
    assert torch.equal(item["clean"], leaves[0]["clean"])
    mixed = TrainPatches(["dehaze"], patch_size=24, length=4, seed=0, source="mixed")
    assert all(mixed[i]["degraded"].shape == (3, 24, 24) for i in range(4))


def test_a_dataloader_batches_items():
    dataset = TrainPatches(["denoise_25", "dehaze"], patch_size=16, length=4, seed=0)
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=4)))
    assert batch["degraded"].shape == (4, 3, 16, 16)
    assert batch["task_index"].tolist() == [dataset.tasks.index(t) for t in batch["task"]]


def test_training_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="valid keys"):
        TrainPatches(["snow"], 32, 10, 0)
    with pytest.raises(ValueError, match="empty"):
        TrainPatches([], 32, 10, 0)
    with pytest.raises(ValueError, match="twice"):
        TrainPatches(["derain", "derain"], 32, 10, 0)
    with pytest.raises(ValueError, match="patch_size"):
        TrainPatches(["derain"], 0, 10, 0)
    with pytest.raises(ValueError, match="length"):
        TrainPatches(["derain"], 32, 0, 0)
    with pytest.raises(ValueError, match="seed"):
        TrainPatches(["derain"], 32, 10, -2)
    with pytest.raises(ValueError, match="positive numbers"):
        TrainPatches(["derain", "dehaze"], 32, 10, 0, task_weights=[1, 0])
    with pytest.raises(ValueError, match="2 values for 1 tasks"):
        TrainPatches(["derain"], 32, 10, 0, task_weights=[1, 2])
    with pytest.raises(ValueError, match="names dehaze, not in tasks"):
        TrainPatches(["derain"], 32, 10, 0, task_weights={"dehaze": 2})
    with pytest.raises(FileNotFoundError, match="neither one of corpus, dead_leaves, mixed"):
        TrainPatches(["derain"], 32, 10, 0, source="corpse")
    with pytest.raises(ValueError, match="source must be"):
        TrainPatches(["derain"], 32, 10, 0, source=42)


def test_a_patch_too_big_for_the_corpus_says_which_photos():
    with pytest.raises(ValueError, match=r"patch_size 400 is larger than these train photos: "
                                         r".*luispedro \(377×300\).*up to 300 px"):
        TrainPatches(["derain"], 400, 10, 0)


def test_benchmark_patches_crop_both_images_alike(tree):
    tasks = ["denoise_15", "derain", "dehaze", "deblur", "lowlight"]
    dataset = TrainPatches(tasks, patch_size=16, length=20, seed=0, source=tree)
    for index in range(20):
        item = dataset[index]
        degraded, clean = item["degraded"].numpy(), item["clean"].numpy()
        assert degraded.shape == clean.shape == (3, 16, 16)
        if item["task"] == "denoise_15":
            assert 0.02 < np.abs(degraded - clean).mean() < 0.1
        else:  # the tree's degraded files are the clean images at half brightness, pixel for pixel
            np.testing.assert_allclose(degraded, from_uint8(to_uint8(clean) // 2), atol=1e-6)


def test_benchmark_source_refuses_composites_and_small_images(tree):
    with pytest.raises(ValueError, match="has no standard benchmark"):
        TrainPatches(["rain+haze"], 16, 4, 0, source=tree)
    big = TrainPatches(["derain"], 50, 4, 0, source=str(tree))  # a str root works too
    with pytest.raises(ValueError, match=r"rain-[12].png|norain-[12].png"):
        big[0]
    with pytest.raises(ValueError, match="too small for 50×50 patches"):
        big[0]


def test_mismatched_pair_sizes_are_named(tree):
    _save(tree / "data" / "Train" / "Enhance" / "low" / "2.png", _scene(1, 30, 30))
    dataset = TrainPatches(["lowlight"], 16, 2, 0, source=tree)
    with pytest.raises(ValueError, match=r"low/2.png is 30×30 but its clean image .*gt/2.png is 48×56"):
        dataset[0]


# Fixed test sets -------------------------------------------------------------------------------------------

def test_corpus_test_set_is_cropped_degraded_and_cached(own_cache, monkeypatch):
    images = test_set("derain", max_side=64)
    assert [im.name for im in images] == photo_names("test")
    for image in images:
        assert image.degraded.shape == image.clean.shape
        assert image.clean.shape[0] % 16 == 0 and image.clean.shape[1] % 16 == 0
        assert max(image.clean.shape[:2]) <= 64
        assert image.params["rain"] and not np.array_equal(image.degraded, image.clean)
        expected, _ = degrade(image.clean, "derain", image_seed(0, image.name))
        np.testing.assert_array_equal(image.degraded, expected)
    sail = load_photo("sail")  # 512×768: the centre 64×64
    np.testing.assert_array_equal(images[photo_names("test").index("sail")].clean, sail[224:288, 352:416])
    folder = own_cache / "testsets" / "corpus" / "derain_test_seed0_side64_v1"
    assert (folder / "sail.json").is_file() and (folder / "sail.degraded.npy").is_file()

    def no_degrading(*args, **kwargs):
        raise AssertionError("the cache should have been used")
    monkeypatch.setattr(data, "degrade", no_degrading)
    cached = test_set("derain", max_side=64)
    for a, b in zip(images, cached):
        np.testing.assert_array_equal(a.degraded, b.degraded)
        np.testing.assert_array_equal(a.clean, b.clean)
        assert a.params == b.params


def test_whole_photos_are_cropped_like_promptir():
    images = test_set("denoise_15", max_images=2)
    chelsea = load_photo("chelsea")  # 300×451 -> 288×448
    assert images[0].name == "chelsea"
    np.testing.assert_array_equal(images[0].clean, crop_multiple(chelsea, 16))
    assert images[0].clean.shape == (288, 448, 3)
    noise_free = images[0].degraded * 255
    assert np.allclose(noise_free, np.round(noise_free), atol=1e-4)  # 8-bit noisy image, saved as PNG


def test_seeds_are_per_image_and_stable_under_max_images():
    full = test_set("dehaze", max_side=32)
    first_two = test_set("dehaze", max_side=32, max_images=2)
    np.testing.assert_array_equal(full[1].degraded, first_two[1].degraded)
    other_seed = test_set("dehaze", seed=1, max_side=32, max_images=2)
    assert not np.array_equal(full[1].degraded, other_seed[1].degraded)
    assert image_seed(0, "sail") != image_seed(0, "tulips") != image_seed(1, "sail")


def test_a_corrupt_cache_file_is_rebuilt(own_cache):
    original = test_set("haze+rain", max_side=32, max_images=3)
    folder = own_cache / "testsets" / "corpus" / "haze+rain_test_seed0_side32_v1"
    (folder / "rocket.degraded.npy").write_bytes(b"\x93NUMPY garbage")
    (folder / "chelsea.clean.png").write_bytes(b"")
    (folder / "kodim23.json").write_text("{ not json")
    rebuilt = test_set("haze+rain", max_side=32, max_images=3)
    for a, b in zip(original, rebuilt):
        np.testing.assert_array_equal(a.degraded, b.degraded)
        np.testing.assert_array_equal(a.clean, b.clean)
    assert np.load(folder / "rocket.degraded.npy").shape == original[1].degraded.shape


def test_a_validation_set_holds_only_the_validation_photos(own_cache):
    val = test_set("denoise_25", max_side=32, split="val")
    assert [im.name for im in val] == photo_names("val") == ["coffee", "china", "imagenet_05_853",
                                                             "imagenet_09_455", "imagenet_16_251"]
    np.testing.assert_array_equal(val[1].clean, crop_multiple(load_photo("china")[197:229, 304:336], 16))
    test = test_set("denoise_25", max_side=32)
    assert not {im.name for im in val} & {im.name for im in test}
    assert (own_cache / "testsets" / "corpus" / "denoise_25_val_seed0_side32_v1" / "china.json").is_file()
    leaves_val = test_set("derain", source="dead_leaves", max_images=1, split="val")
    leaves_test = test_set("derain", source="dead_leaves", max_images=1)
    assert leaves_val[0].name == "dead_leaves_val_00" and leaves_test[0].name == "dead_leaves_00"
    assert not np.array_equal(leaves_val[0].clean, leaves_test[0].clean)


def test_dead_leaves_test_set():
    images = test_set("lowlight", source="dead_leaves", max_images=2)
    assert [im.name for im in images] == ["dead_leaves_00", "dead_leaves_01"]
    assert images[0].clean.shape == (256, 256, 3)
    assert not np.array_equal(images[0].clean, images[1].clean)


def test_benchmark_test_sets(tree):
    rain = test_set("derain", source=tree)
    assert [im.name for im in rain] == ["1", "rain-2"]
    assert rain[0].clean.shape == (32, 48, 3)  # 35×50 cropped to multiples of 16
    np.testing.assert_array_equal(
        rain[0].degraded, crop_multiple(read_image(tree / "test/derain/Rain100L/input/1.png")))
    noisy = test_set("denoise_25", source=tree)
    assert [im.name for im in noisy] == ["12084", "3096"] and noisy[0].clean.shape == (32, 32, 3)
    assert 0.05 < np.abs(noisy[1].degraded - noisy[1].clean).mean() < 0.15
    urban = test_set("denoise_25", source=tree, benchmark="urban100")
    assert [im.name for im in urban] == ["img_001"]
    with pytest.raises(ValueError, match="has no standard benchmark"):
        test_set("rain+haze", source=tree)


def test_test_set_arguments_are_checked(tree):
    with pytest.raises(ValueError, match="valid keys"):
        test_set("snow")
    with pytest.raises(ValueError, match="not 'mixed'"):
        test_set("derain", source="mixed")
    with pytest.raises(ValueError, match="max_side must be at least 16"):
        test_set("derain", max_side=8)
    with pytest.raises(ValueError, match="max_images"):
        test_set("derain", max_images=0)
    with pytest.raises(ValueError, match=r"split must be one of \('test', 'val'\).*'train'"):
        test_set("derain", split="train")
    with pytest.raises(ValueError, match="no 'val' split, only 'test'"):
        test_set("derain", source=tree, split="val")
    with pytest.raises(FileNotFoundError, match="Expected PromptIR's layout"):
        test_set("derain", source=tree / "missing")
    _save(tree / "test" / "denoise" / "bsd68" / "tiny.png", _scene(0, 10, 40))
    with pytest.raises(ValueError, match=r"test image 'tiny': an image of 10×40 px cannot be centre-cropped"):
        test_set("denoise_15", source=tree)
