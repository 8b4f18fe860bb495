"""Notebook 01 shows the paper's Table I beside ours by task key and row, never by position."""
import numpy as np
import pandas as pd

from analysis import table1

TASKS = ["denoise_25", "derain", "dehaze"]


def _summary(tasks):
    rows = []
    for n, condition in enumerate(table1.condition_order(["noise", "rain", "haze"])):
        rows.append({"channels": condition, **{f"{t}_psnr": 10.0 * n + i for i, t in enumerate(TASKS)}})
    return pd.DataFrame(rows)


def test_paper_numbers_follow_the_task_key_when_tasks_are_reordered():
    summary = _summary(TASKS)
    reordered = ["derain", "dehaze", "denoise_25"]
    table = table1.side_by_side(summary, reordered).set_index("channels")
    noise = table1.own_condition("noise")
    assert table.loc[noise, "denoise_25 paper (published)"] == 31.49
    assert table.loc[noise, "derain paper (published)"] == 25.38
    assert table.loc[table1.own_condition("rain"), "derain paper (published)"] == 38.10
    assert table.loc[table1.BASELINE, "dehaze paper (published)"] == 30.43
    assert list(table.columns[:2]) == ["derain ours", "derain paper (published)"]
    same = table1.side_by_side(summary, TASKS).set_index("channels")
    pd.testing.assert_frame_equal(table[same.columns], same)


def test_tasks_the_paper_lacks_have_no_published_value():
    assert np.isnan(table1.paper_value(table1.own_condition("noise"), "denoise_50"))
    assert np.isnan(table1.paper_value(table1.RANDOM, "denoise_25"))
    assert table1.paper_value(table1.ALL, "dehaze", "ssim") == 0.975
