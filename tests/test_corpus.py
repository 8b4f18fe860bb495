"""csnet.corpus: the embedded photos, their fixed split, checksums, missing packages, dead leaves."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from csnet import corpus
from csnet.cli import main as cli_main

SPORCO = {"kodim23", "monarch", "sail", "tulips", "barbara"}


@pytest.fixture
def fresh_corpus(monkeypatch):
    """Lets a test change the photo list; the per-process caches are cleared before and after."""
    corpus._entries.cache_clear()
    corpus._load_cached.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    corpus._entries.cache_clear()
    corpus._load_cached.cache_clear()


def test_at_least_30_photos_with_the_documented_split():
    entries = corpus.corpus_entries()
    names = [e.name for e in entries]
    assert len(names) == len(set(names)) >= 30
    assert all(e.available and e.status == "ok" for e in entries)
    test = {e.name for e in entries if e.split == "test"}
    train = {e.name for e in entries if e.split == "train"}
    val = {e.name for e in entries if e.split == "val"}
    assert SPORCO <= test and len(test - SPORCO) >= 2
    assert test == {"kodim23", "monarch", "sail", "tulips", "barbara", "chelsea", "rocket"}
    assert len(train) >= 20 and not test & train
    assert {e.split for e in entries} == {"train", "val", "test"} == set(corpus.SPLITS)
    assert corpus.photo_names("test") == [n for n in names if n in test]
    assert corpus.photo_names("val") == [n for n in names if n in val]


def test_the_validation_photos_are_fixed_train_photos_with_a_reason():
    assert list(corpus.VALIDATION_PHOTOS) == ["coffee", "china", "imagenet_05_853", "imagenet_09_455",
                                              "imagenet_16_251"]
    assert all(len(reason) > 10 for reason in corpus.VALIDATION_PHOTOS.values())
    assembled = {row[0]: row[7] for row in corpus._PHOTOS}
    assert {assembled[name] for name in corpus.VALIDATION_PHOTOS} == {"train"}  # never a test photo
    splits = {s: set(corpus.photo_names(s)) for s in corpus.SPLITS}
    assert splits["val"] == set(corpus.VALIDATION_PHOTOS)
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (23, 5, 7)
    assert not splits["train"] & splits["val"] and not splits["train"] & splits["test"]
    assert not splits["val"] & splits["test"]
    assert set().union(*splits.values()) == set(corpus.photo_names())
    assert list(corpus.photos("val")) == corpus.photo_names("val")
    assert {"motorcycle_left", "motorcycle_right"} <= splits["train"]  # the stereo pair stays together


def test_entries_describe_their_files_exactly():
    for entry in corpus.corpus_entries():
        assert entry.path.is_file() and entry.path.as_posix().endswith(entry.file)
        assert hashlib.sha256(entry.path.read_bytes()).hexdigest() == entry.sha256 == entry.actual_sha256
        assert entry.licence and entry.package
        image = corpus.cached_photo(entry.name)
        assert image.shape == (entry.height, entry.width, 3), entry.name
    assert {e.package for e in corpus.corpus_entries()} >= {
        "scikit-image", "scikit-learn", "matplotlib", "sporco", "foolbox", "mahotas"}


def test_photos_are_rgb_floats_and_load_photo_returns_a_private_copy():
    photos = corpus.photos("test")
    assert list(photos) == corpus.photo_names("test")
    for image in photos.values():
        assert image.dtype == np.float32 and image.ndim == 3 and image.shape[2] == 3
        assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0.05
    copy = corpus.load_photo("sail")
    copy[:] = 0
    assert corpus.load_photo("sail").max() > 0
    assert not corpus.cached_photo("sail").flags.writeable
    assert len(corpus.photos()) == len(corpus.corpus_entries())


def test_unknown_names_and_splits_are_refused():
    with pytest.raises(ValueError, match=r"no corpus photo named 'lena'.*astronaut"):
        corpus.load_photo("lena")
    with pytest.raises(ValueError, match="the splits are train, val, test"):
        corpus.photos("validation")


def test_checksum_mismatch_warns_and_keeps_the_photo(fresh_corpus):
    photos = list(corpus._PHOTOS)
    row = list(photos[0])
    row[6] = "0" * 64
    photos[0] = tuple(row)
    fresh_corpus.setattr(corpus, "_PHOTOS", tuple(photos))
    with pytest.warns(UserWarning, match=r"'astronaut'.*differs from the recorded file"):
        entries = corpus.corpus_entries()
    assert entries[0].status == "checksum differs" and entries[0].available
    assert corpus.load_photo("astronaut").shape == (512, 512, 3)
    assert "checksum differs" in corpus.format_table()


def test_missing_package_is_listed_not_fatal(fresh_corpus):
    extra = ("ghost", "csnet-ghost-pkg", "csnet_ghost_pkg", "data/ghost.png", 64, 64, "0" * 64,
             "train", "does not exist")
    fresh_corpus.setattr(corpus, "_PHOTOS", corpus._PHOTOS + (extra,))
    entry = corpus.corpus_entries()[-1]
    assert not entry.available and "pip install csnet-ghost-pkg" in entry.status
    table = corpus.format_table()
    assert "ghost" in table and "missing: package 'csnet-ghost-pkg' is not installed" in table
    with pytest.warns(UserWarning, match="unavailable and skipped: ghost"):
        train = corpus.photos("train")
    assert "ghost" not in train and len(train) == len(corpus.photo_names("train"))
    with pytest.raises(FileNotFoundError, match="'ghost' is not available"):
        corpus.load_photo("ghost")


def test_missing_file_in_an_installed_package_is_listed(fresh_corpus):
    extra = ("phantom_file", "scikit-image", "skimage", "data/no_such_photo.png", 64, 64, "0" * 64,
             "train", "does not exist")
    fresh_corpus.setattr(corpus, "_PHOTOS", corpus._PHOTOS + (extra,))
    assert "has no data/no_such_photo.png" in corpus.corpus_entries()[-1].status


def test_format_table_lists_name_source_size_split():
    table = corpus.format_table()
    lines = table.splitlines()
    assert lines[0].split()[:2] == ["name", "source"] and "split" in lines[0]
    sail = next(line for line in lines if line.startswith("sail "))
    assert "sporco/data/sail.png" in sail and "512×768" in sail and " test " in sail
    assert lines[-1].startswith(f"{len(corpus.corpus_entries())} photos available")


def test_corpus_frame_has_a_row_per_photo():
    frame = corpus.corpus_frame()
    assert len(frame) == len(corpus.corpus_entries())
    assert {"name", "package", "height", "width", "split", "licence", "sha256"} <= set(frame.columns)


def test_cli_corpus_prints_the_table(capsys):
    assert cli_main(["corpus"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == corpus.format_table()
    assert sum(1 for line in out.splitlines() if line.endswith(" ok")) >= 30


def test_dead_leaves_is_seeded_and_natural_ish():
    first = corpus.dead_leaves(96, seed=1)
    assert first.dtype == np.float32 and first.shape == (96, 96, 3)
    assert 0.0 <= first.min() and first.max() <= 1.0
    np.testing.assert_array_equal(first, corpus.dead_leaves(96, seed=1))
    assert not np.array_equal(first, corpus.dead_leaves(96, seed=2))
    rect = corpus.dead_leaves((40, 70), seed=0)
    assert rect.shape == (40, 70, 3)
    sharp = corpus.dead_leaves(128, seed=3, blur_sigma=0)
    colours = np.unique(sharp.reshape(-1, 3), axis=0)
    assert 30 < len(colours) < 128 * 128 / 4  # many disks, each a flat colour
    assert np.abs(np.diff(sharp, axis=1)).max() > 0.3  # hard occlusion edges
    soft = corpus.dead_leaves(128, seed=3)  # the default slight blur softens the same edges
    assert np.abs(np.diff(soft, axis=1)).max() < np.abs(np.diff(sharp, axis=1)).max()
    assert np.abs(soft - sharp).mean() < 0.05


def test_dead_leaves_rejects_bad_arguments():
    with pytest.raises(ValueError, match="seed"):
        corpus.dead_leaves(32, seed=-1)
    with pytest.raises(ValueError, match="size"):
        corpus.dead_leaves(0, seed=0)
    with pytest.raises(ValueError, match="r_min"):
        corpus.dead_leaves(32, seed=0, r_min=10, r_max=5)
