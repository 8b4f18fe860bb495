"""Table I analysis on synthetic evaluation tables whose answer is known."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from analysis import table1

LABELS = ["noise", "rain", "haze"]
TASKS = {"denoise_25": "noise", "derain": "rain", "dehaze": "haze"}


def _evaluations(own_gain: float, other_loss: float, seeds=(0, 1), images=8, draws=3, seed=0) -> pd.DataFrame:
    """Per-image rows: own channels ``own_gain`` dB above random, another task's ``other_loss`` below."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in seeds:
        for task, label in TASKS.items():
            base = 25 + rng.normal(0, 1, images)
            def add(condition, variant, psnr, draw=0):
                for i, value in enumerate(psnr):
                    rows.append(dict(variant=variant, condition=condition, task=task, label=label, seed=s,
                                     image=f"im{i}", psnr=value, ssim=0.8, draw=draw))
            for lab in LABELS:
                shift = own_gain if lab == label else -other_loss
                add(table1.own_condition(lab), "hard_select", base + shift + rng.normal(0, 0.05, images))
            add(table1.ALL, "hard_select", base - 1.0)
            add(table1.ALL_SCALED, "hard_select", base - 0.5)
            for d in range(draws):
                add(table1.RANDOM, "hard_select", base + rng.normal(0, 0.05, images), draw=d)
            add(table1.BASELINE, "none", base - 0.2)
    return pd.DataFrame(rows)


def test_summary_table_has_the_paper_layout_and_mean_over_seeds():
    df = _evaluations(2.0, 3.0)
    summary = table1.summary_table(df, LABELS, "hard_select")
    assert list(summary["channels"]) == table1.condition_order(LABELS)
    own = summary.set_index("channels").loc[table1.own_condition("rain"), "derain_psnr"]
    random = summary.set_index("channels").loc[table1.RANDOM, "derain_psnr"]
    assert own - random == pytest.approx(2.0, abs=0.1)
    assert (summary["n_seeds"] == 2).all()
    shown = table1.formatted_table(summary, list(TASKS))
    assert " ± " in shown.iloc[0]["denoise_25"] and " / " in shown.iloc[0]["denoise_25"]


def test_specialised_channels_are_called_different_at_seed_level():
    df = _evaluations(2.0, 3.0, seeds=range(5))
    comparisons = table1.paired_comparisons(df, LABELS, "hard_select", mixed=False)
    spec = table1.specificity(df, LABELS, "hard_select", mixed=False)
    own = spec[spec["kind"] == "own − random"]
    other = spec[spec["kind"] == "other − random"]
    assert len(own) == 3 and len(other) == 6
    assert (own["estimate"] > 1.5).all() and (other["estimate"] < -2.5).all()
    assert (spec["verdict"] == "different").all() and (spec["n_seeds"] == 5).all()
    assert set(other["family_size"]) == {6} and set(own["family_size"]) == {3}
    within = comparisons[comparisons["family"] == table1.WITHIN]
    headline = comparisons[comparisons["family"] == table1.HEADLINE]
    assert len(within) == 15 and (within["test"] == "paired t over seeds").all()
    assert len(headline) == 3 and (headline["test"] == "Welch t over seeds").all()
    text = table1.verdict(comparisons, spec)
    assert "own channels above every other set, each different, in 3 of 3 columns" in text
    assert "another task's set − random sets: different in 6 of 6 cells (higher in 0, lower in 6)" in text
    assert "own channels − baseline without selection on derain: +2.20 dB" in text


def test_interchangeable_channels_are_not_called_specialised_and_two_seeds_say_equivalent_or_underpowered():
    df = _evaluations(0.0, 0.0)
    comparisons = table1.paired_comparisons(df, LABELS, "hard_select", mixed=False)
    spec = table1.specificity(df, LABELS, "hard_select", mixed=False)
    assert (spec["estimate"].abs() < 0.2).all()
    assert not (spec["verdict"] == "different").any()
    tiny = spec["verdict"].str.startswith("equivalent within ±0.25 dB")  # TOST can succeed on tiny spreads
    assert tiny.any() and spec.loc[~tiny, "verdict"].str.contains("underpowered: 2 seeds cannot reliably reach").all()
    text = table1.verdict(comparisons, spec)
    assert "each different, in 0 of 3 columns" in text


def test_side_by_side_labels_the_paper_and_matches_rows():
    summary = table1.summary_table(_evaluations(1.0, 1.0), LABELS, "hard_select")
    table = table1.side_by_side(summary, list(TASKS), {t: t for t in TASKS}).set_index("channels")
    assert table.loc[table1.own_condition("noise"), "denoise_25 paper (published)"] == 31.49
    assert table.loc[table1.BASELINE, "derain paper (published)"] == 36.55  # the paper's all-channels row
    assert np.isnan(table.loc[table1.RANDOM, "dehaze paper (published)"])  # the paper has no such control


def test_jaccard_by_site_and_random_sets_have_the_right_sizes():
    sets = {"a": {"s": torch.tensor([0, 1, 2, 3])}, "b": {"s": torch.tensor([2, 3, 4, 5])}}
    overlap = table1.jaccard_by_site(sets).set_index(["a", "b"])["jaccard"]
    assert overlap[("a", "a")] == 1.0 and overlap[("a", "b")] == pytest.approx(2 / 6)

    class Site(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fusion = torch.nn.Module()
            self.fusion.expanded, self.fusion.keep = 16, 5

    class Model(torch.nn.Module):
        fusion_sites = {"s": Site()}

    class Run:
        model = Model()

    draws = table1.random_channel_sets(Run(), 4, seed=3)
    assert len(draws) == 4 and all(len(d["s"]) == 5 and len(set(d["s"].tolist())) == 5 for d in draws)
    assert [d["s"].tolist() for d in draws] == [d["s"].tolist() for d in table1.random_channel_sets(Run(), 4, seed=3)]
