"""analysis.stats: paired comparisons, intervals, seeds, Holm, and sentences from numbers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.stats import (bootstrap_ci, format_diff, format_mean_std, format_p, format_verdict, holm,
                            join_verdicts, mean_std_over_seeds, paired_bootstrap)


@pytest.fixture
def paired():
    rng = np.random.default_rng(7)
    baseline = rng.normal(30.0, 2.0, size=68)  # per-image PSNR, varying a lot between images
    better = baseline + 0.5 + rng.normal(0.0, 0.3, size=68)  # a small, consistent gain
    return better, baseline


def test_paired_bootstrap_finds_a_consistent_gain(paired):
    better, baseline = paired
    result = paired_bootstrap(better, baseline)
    assert result["n"] == 68
    assert result["mean_diff"] == pytest.approx(np.mean(better - baseline))
    assert 0 < result["lo"] < result["mean_diff"] < result["hi"]
    assert result["p_value"] < 0.001
    flipped = paired_bootstrap(baseline, better)
    assert flipped["mean_diff"] < 0 and flipped["hi"] < 0


@pytest.mark.parametrize("test", ["signflip", "bootstrap"])
def test_paired_bootstrap_on_noise_is_not_significant(test):
    rng = np.random.default_rng(3)
    a = rng.normal(30.0, 2.0, size=50)
    result = paired_bootstrap(a, a + rng.normal(0.0, 0.3, size=50), test=test)
    assert result["lo"] < 0 < result["hi"]
    assert result["p_value"] > 0.05


def test_paired_bootstrap_is_deterministic_given_the_seed(paired):
    assert paired_bootstrap(*paired, seed=5) == paired_bootstrap(*paired, seed=5)
    assert paired_bootstrap(*paired, seed=5)["lo"] != paired_bootstrap(*paired, seed=6)["lo"]


def test_sign_flip_is_exact_for_few_pairs():
    # three positive differences: only the all-positive and all-negative patterns are as extreme
    assert paired_bootstrap([1.0, 2.0, 3.0], [0.0, 1.0, 2.5])["p_value"] == pytest.approx(2 / 8)


def test_paired_bootstrap_rejects_bad_input():
    with pytest.raises(ValueError, match="same length"):
        paired_bootstrap([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="non-finite"):
        paired_bootstrap([1, np.nan], [1, 2])
    with pytest.raises(ValueError, match="test"):
        paired_bootstrap([1, 2], [1, 2], test="t")


def test_bootstrap_ci_covers_the_true_mean():
    x = np.random.default_rng(0).normal(5.0, 1.0, size=200)
    result = bootstrap_ci(x, seed=1)
    assert result["lo"] < 5.0 < result["hi"]
    assert result["hi"] - result["lo"] == pytest.approx(2 * 1.96 / np.sqrt(200), rel=0.2)
    median = bootstrap_ci(x, statistic=np.median)
    assert median["estimate"] == pytest.approx(np.median(x))


def test_holm_matches_a_hand_computation_and_keeps_order():
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.5]), [0.04, 0.09, 0.09, 0.5])
    series = holm(pd.Series([0.2, 0.6], index=["x", "y"]))
    assert list(series.index) == ["x", "y"] and series.tolist() == [0.4, 0.6]
    with pytest.raises(ValueError):
        holm([0.1, 1.5])


def test_mean_std_over_seeds_averages_images_within_a_seed_first():
    df = pd.DataFrame({"task": ["derain"] * 6, "seed": [0, 0, 1, 1, 2, 2],
                       "psnr": [30.0, 32.0, 33.0, 33.0, 35.0, 37.0]})  # per-seed means 31, 33, 36
    row = mean_std_over_seeds(df, "task", ["psnr"]).iloc[0]
    assert row["psnr_mean"] == pytest.approx(np.mean([31, 33, 36]))
    assert row["psnr_std"] == pytest.approx(np.std([31, 33, 36], ddof=1))
    assert row["n_seeds"] == 3
    with pytest.raises(ValueError, match="ssim"):
        mean_std_over_seeds(df, "task", "ssim")


def test_sentences_are_built_from_the_numbers():
    own_best = np.array([True, True, False])
    significant = np.array([True, False, True])
    worse_than_random = [True, False, False, True, False, False]
    text = join_verdicts([format_verdict("own channels best", own_best, significant=significant),
                          format_verdict("another task's set worse than random", worse_than_random, unit="cells")])
    assert text == ("Own channels best in 2 of 3 columns, significant in 1; "
                    "another task's set worse than random in 2 of 6 cells.")
    assert format_p(0.0004) == "p < 0.001" and format_p(0.0123) == "p = 0.012"
    assert format_mean_std(31.4912, 0.1234) == "31.49 ± 0.12" and format_mean_std(31.0, float("nan")) == "31.00"
    diff = format_diff({"mean_diff": 1.234, "lo": 0.8, "hi": 1.6, "p_value": 0.003, "n": 68, "ci": 0.95})
    assert diff == "+1.23 dB (95% CI +0.80 to +1.60), p = 0.003, n = 68"
