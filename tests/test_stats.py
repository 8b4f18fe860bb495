"""analysis.stats: seed-level tests, crossed bootstrap, Holm families, three-way verdicts, calibration."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from analysis import calibration, stats


def tidy(matrix: np.ndarray, value: str = "psnr") -> pd.DataFrame:
    seeds, images = np.indices(matrix.shape)
    return pd.DataFrame({"seed": seeds.ravel(), "image": [f"img{i}" for i in images.ravel()],
                         value: matrix.ravel()})


@pytest.fixture
def study():
    a, b = calibration.simulate(1, 5, 7, effect=2.0, seed=3)
    return a[0], b[0]


def test_compare_tests_per_seed_means_not_pooled_images(study):
    a, b = study
    result = stats.compare(tidy(a), tidy(b), "psnr", paired=True)
    expected = sps.ttest_rel(a.mean(axis=1), b.mean(axis=1))
    assert result["p_value"] == pytest.approx(expected.pvalue)
    assert result["estimate"] == pytest.approx(a.mean() - b.mean())
    assert result["n_seeds"] == 5 and result["n_images"] == 7 and result["margin"] == stats.MARGINS["psnr"]
    assert result["seeds_agree"] == int(((a - b).mean(axis=1) > 0).sum())
    assert result["lo"] < result["estimate"] < result["hi"]
    assert np.isfinite(result["p_mixed"]) and result["estimate_mixed"] == pytest.approx(result["estimate"])
    welch = stats.compare(tidy(a), tidy(b), "psnr", paired=False, mixed=False)
    assert welch["p_value"] == pytest.approx(sps.ttest_ind(a.mean(axis=1), b.mean(axis=1), equal_var=False).pvalue)
    assert welch["test"] == "Welch t over seeds" and "p_mixed" not in welch


def test_more_rows_per_cell_are_averaged_and_incomplete_images_dropped(study):
    a, b = study
    doubled = pd.concat([tidy(a), tidy(a)])
    gappy = tidy(b).iloc[1:]  # seed 0 lacks img0: img0 is dropped from both arms
    result = stats.compare(doubled, gappy, "psnr", paired=True, mixed=False)
    assert result["n_images"] == 6
    assert result["estimate"] == pytest.approx(a[:, 1:].mean() - b[:, 1:].mean())
    with pytest.raises(ValueError, match="no seed and image in common"):
        stats.compare(tidy(a), tidy(b).assign(seed=9), "psnr", paired=True)


def test_tost_matches_pingouin(study):
    import pingouin

    a, b = study
    a = b + 0.05 + np.random.default_rng(0).normal(0, 0.05, size=b.shape)
    result = stats.compare(tidy(a), tidy(b), "psnr", paired=True, margin=0.25, mixed=False)
    reference = pingouin.tost(a.mean(axis=1), b.mean(axis=1), bound=0.25, paired=True)
    assert result["p_equivalence"] == pytest.approx(float(reference["pval"].iloc[0]))
    assert result["p_equivalence"] < 0.05


def test_crossed_bootstrap_is_deterministic_and_widens_with_image_variance():
    rng = np.random.default_rng(0)
    d = rng.normal(0, 0.1, size=(5, 7))
    assert stats.crossed_bootstrap(d, seed=1) == stats.crossed_bootstrap(d, seed=1)
    spread = d + rng.normal(0, 3.0, size=(1, 7))  # a large image effect, the same in every seed
    narrow = np.subtract(*stats.crossed_bootstrap(d, seed=1)[::-1])
    wide = np.subtract(*stats.crossed_bootstrap(spread, seed=1)[::-1])
    assert wide > 5 * narrow
    lo, hi = stats.crossed_bootstrap(d + 10, d, paired=True)
    assert lo == pytest.approx(10) and hi == pytest.approx(10)
    with pytest.raises(ValueError, match="coverage"):
        stats.crossed_bootstrap(d, ci=95)


def test_holm_families_and_three_way_verdicts():
    table = pd.DataFrame({"family": ["x", "x", "y"], "p_value": [0.01, 0.04, 0.04],
                          "p_equivalence": [0.9, 0.9, 0.001], "margin": [0.25] * 3, "n_seeds": [10] * 3,
                          "paired": [True] * 3, "seed_sd": [0.3] * 3, "estimate": [1.0, 0.5, 0.0]})
    out = stats.add_verdicts(table, family="family", unit="dB")
    assert out["p_holm"].tolist() == pytest.approx([0.02, 0.04, 0.04])
    assert out["family_size"].tolist() == [2, 2, 1]
    assert out["verdict"].tolist() == ["different", "different", "different"]
    out = stats.add_verdicts(table.assign(p_value=[0.2, 0.5, 0.6]), family="family", unit="dB")
    assert out["verdict"].tolist() == ["inconclusive", "inconclusive", "equivalent within ±0.25 dB"]
    assert stats.holm(pd.Series([0.01, np.nan, 0.02])).tolist()[::2] == pytest.approx([0.02, 0.02])


def test_underpowered_designs_say_so():
    assert stats.underpowered(2) and not stats.underpowered(5)
    assert stats.underpowered(3, family_size=6) and not stats.underpowered(3, family_size=1)
    label = stats.verdict_label(0.3, 0.9, 0.25, alpha=0.05, n_seeds=3, family_size=6, paired=True)
    assert label == ("inconclusive (underpowered: 3 seeds cannot reliably reach α = 0.05 after Holm over 6; "
                     "80% power needs ≥ 6.9 seed SDs)")
    one = stats.verdict_label(np.nan, np.nan, 0.25, alpha=0.05, n_seeds=1, family_size=1, paired=True)
    assert one.endswith("1 seed cannot reliably reach α = 0.05 after Holm over 1; no t-test over seeds)")
    assert stats.detectable_effect(5, 0.5) == pytest.approx(0.5 * stats.detectable_effect(5))
    assert stats.detectable_effect(1, 0.5) == float("inf")
    assert "0.84 dB or more" in stats.design_sentence(5, 0.5)  # TTestPower: d = 1.68 at n = 5
    with pytest.raises(ValueError, match="known"):
        stats.margin_for("lpips")


def test_sentences_carry_the_unit_and_the_seed_count(study):
    a, b = study
    row = stats.add_verdicts(pd.DataFrame([stats.compare(tidy(a), tidy(b), "psnr", paired=True, mixed=False)]))
    sentence = stats.verdict_sentence("own − other", row.iloc[0])
    assert sentence.startswith("own − other: +") and "paired t over 5 seeds" in sentence
    assert f"{row['seeds_agree'].iloc[0]} of 5 seeds agree" in sentence and sentence.endswith("different")
    summary = stats.summarise_verdicts("A vs B", row)
    assert summary == "A vs B: different in 1 of 1 comparisons (higher in 1, lower in 0), equivalent in 0, inconclusive in 0"


@pytest.mark.parametrize("n_seeds", [3, 5])
def test_calibration_no_effect_calls_different_at_most_7_percent(n_seeds):
    a, b = calibration.simulate(500, n_seeds, 7, seed=n_seeds)
    for paired in (True, False):
        rates = calibration.verdict_rates(a, b, paired=paired, n_boot=200)
        assert rates["different"] <= 0.07, rates


def test_calibration_reports_power_at_half_a_db():
    a, b = calibration.simulate(500, 5, 7, effect=0.5, seed=55)
    rates = calibration.verdict_rates(a, b, n_boot=200)
    print(f"power at 0.5 dB, 5 seeds × 7 photos: {rates['different']:.1%}")
    null = calibration.verdict_rates(*calibration.simulate(500, 5, 7, seed=56), n_boot=200)
    assert rates["different"] > 2 * null["different"]


def test_formatting_helpers():
    assert stats.format_p(0.0123) == "p = 0.012" and stats.format_p(1e-5) == "p < 0.001"
    assert stats.format_p(float("nan")) == "p n/a"
    assert stats.format_mean_std(31.4912, 0.1234) == "31.49 ± 0.12"
    assert stats.format_mean_std(31.4912, float("nan")) == "31.49"
    assert stats.join_verdicts(["a b.", "", "c d"]) == "A b; c d."
    assert stats.format_count("best", [True, False, True], unit="tasks") == "best in 2 of 3 tasks"


def test_mean_std_over_seeds_averages_images_first():
    df = pd.DataFrame({"task": ["t"] * 4, "seed": [0, 0, 1, 1], "psnr": [30.0, 32.0, 33.0, 33.0]})
    out = stats.mean_std_over_seeds(df, "task", "psnr")
    assert out.loc[0, "psnr_mean"] == pytest.approx(32.0)
    assert out.loc[0, "psnr_std"] == pytest.approx(np.std([31.0, 33.0], ddof=1))
    assert out.loc[0, "n_seeds"] == 2
