"""analysis.design: how many seeds a study's comparisons get, and re-analysis of committed tables."""
from __future__ import annotations

import os
import time
from types import SimpleNamespace

import pandas as pd
import pytest

from analysis import design


def test_headline_comparisons_get_at_least_five_seeds_at_cpu_and_the_rest_three():
    cpu = SimpleNamespace(name="cpu", seeds=(0, 1, 2))
    smoke = SimpleNamespace(name="smoke", seeds=(0,))
    assert design.study_seeds(cpu) == [0, 1, 2] and design.headline_seeds(cpu) == [0, 1, 2, 3, 4]
    assert design.study_seeds(SimpleNamespace(name="cpu", seeds=(7,))) == [7, 8, 9]
    assert design.headline_seeds(cpu, base=[0, 1, 2]) == [0, 1, 2, 3, 4]
    assert design.headline_seeds(smoke) == [0] and design.study_seeds(smoke) == [0]
    assert design.headline_seeds(cpu, [3]) == [3] and design.study_seeds(cpu, [5, 6]) == [5, 6]  # given: kept


def test_read_table_names_the_missing_file_and_keep_touches_reused_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the notebook once without reuse_tables"):
        design.read_table(tmp_path, "per_image.csv")
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        design.previous_manifest(tmp_path)
    pd.DataFrame({"seed": [0], "psnr": [30.0]}).to_csv(tmp_path / "per_image.csv", index=False)
    assert design.read_table(tmp_path, "per_image.csv")["psnr"].tolist() == [30.0]
    old = time.time() - 3600
    os.utime(tmp_path / "per_image.csv", (old, old))
    touched = design.keep(tmp_path, ["per_image.*", "absent.csv"])
    assert touched == [tmp_path / "per_image.csv"] and (tmp_path / "per_image.csv").stat().st_mtime > old + 1800
    assert "reuse_tables=True" in design.skipped("the t-SNE of the prompts")


def test_seeds_pair_follows_the_models_training_version():
    from analysis.design import PAIRED_SEEDS_SINCE, runs_training_version, seeds_pair
    from csnet.profiles import TRAINING_VERSION

    assert runs_training_version(False) == TRAINING_VERSION >= PAIRED_SEEDS_SINCE
    assert runs_training_version(True, {"extra": {"training_version": 3}}) == 3
    assert runs_training_version(True, {"extra": {}}) == 1  # manifests before the field: unpaired runs
    assert seeds_pair(TRAINING_VERSION) is True and seeds_pair(1) is False
    assert seeds_pair(TRAINING_VERSION, False) is False  # Welch is always allowed
    with pytest.raises(ValueError, match="do not pair"):
        seeds_pair(1, True)
