"""``csnet suite plan`` / ``csnet suite run --dry-run``: the compute plan of a suite run, at the smoke profile,
against a run store of the test's own (seconds per step given, so nothing is timed unless a test says so)."""
from __future__ import annotations

import math

import pytest

from analysis import budget, design
from analysis.compute_plan import format_plan, remaining_steps, suite_plan
from csnet.cli import main
from csnet.profiles import get_profile, run_config, run_id
from csnet.store import DONE_FILE
from csnet.train import checkpoint_path

SMOKE = get_profile("smoke")  # seeds (0,), 20 steps, cosine


@pytest.fixture
def store(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    monkeypatch.setenv("CSNET_RUNS", str(root))
    return root


def row(table, notebook):
    return table.set_index("notebook").loc[notebook]


def hard_select_01():
    """Notebook 01's hard_select run at seed 0 (κ 2, ω 0.5: its defaults)."""
    return run_config(SMOKE, "hard_select", 0, model={"kappa": 2.0, "omega": 0.5})


def test_models_shared_and_steps_of_two_notebooks_with_an_empty_store(store):
    assert SMOKE.seeds == (0,) and SMOKE.steps == 20  # the counts below are for this profile
    table = suite_plan("smoke", only=["01", "02"], seconds_per_step=0.5)
    assert list(table["notebook"]) == ["01_table1_channel_misallocation", "02_channel_sensitivity", "total"]
    first, second, total = (row(table, n) for n in table["notebook"])
    # 01: hard_select, none and hard_select+mask_noise at seed 0; 02: four mechanisms, two of them 01's
    assert (first["models"], first["new_models"], first["shared"], first["in_store"]) == (3, 3, 0, 0)
    assert (second["models"], second["new_models"], second["shared"], second["in_store"]) == (4, 2, 2, 0)
    assert (first["steps_to_train"], second["steps_to_train"]) == (60, 40)
    assert (total["models"], total["new_models"], total["shared"], total["steps_to_train"]) == (5, 5, 2, 100)
    assert total["cpu_minutes"] == pytest.approx(100 * 0.5 / 60)
    assert first["cpu_s_per_step"] == pytest.approx(0.5)
    assert not store.exists() or not any(store.iterdir())  # the plan only reads the store


def test_a_finished_run_counts_as_in_store_and_a_partial_one_by_its_remaining_steps(store):
    finished = store / run_id(hard_select_01())
    finished.mkdir(parents=True)
    (finished / DONE_FILE).write_text("done\n")
    none_run = run_config(SMOKE, "none", 0)
    partial = store / run_id(none_run)
    partial.mkdir(parents=True)
    for step in (5, 15):
        checkpoint_path(partial, step).write_bytes(b"")  # the newest decides (validity is checked when training)
    table = suite_plan("smoke", only=["01"], seconds_per_step=1.0)
    first = row(table, "01_table1_channel_misallocation")
    assert (first["models"], first["new_models"], first["in_store"]) == (3, 2, 1)
    assert first["steps_to_train"] == (20 - 15) + 20  # the partial none run, the mask-noise run
    assert remaining_steps(none_run, root=store) == ("partial", 5)
    assert remaining_steps(hard_select_01(), root=store) == ("in_store", 0)
    assert any("resume from a checkpoint" in note for note in table.attrs["notes"]["01_table1_channel_misallocation"])


def test_budget_branches_train_their_decay_only_when_their_trunk_keeps_its_state(store):
    seeds = design.study_seeds(SMOKE, None)
    mechanisms = list(budget.MECHANISMS)
    budgets = budget.default_budgets(SMOKE.steps, SMOKE.warmup_steps, SMOKE.decay_fraction)
    expected = budget.plan(SMOKE, mechanisms, seeds, budgets)
    table = suite_plan("smoke", only=["05"], seconds_per_step=1.0)
    notebook = row(table, "05_training_budget")
    assert notebook["models"] == len(expected) == len(mechanisms) * len(seeds) * len(budgets)
    assert notebook["steps_to_train"] == expected["steps_trained"].sum()  # trunks all steps, branches decay
    one = row(suite_plan("smoke", only=["05"], params={"train_jobs": 1}, seconds_per_step=1.0), "05_training_budget")
    assert one["wall_minutes"] == one["cpu_minutes"] == pytest.approx(notebook["steps_to_train"] / 60)
    two = row(suite_plan("smoke", only=["05"], params={"train_jobs": 2}, seconds_per_step=1.0), "05_training_budget")
    assert two["wall_minutes"] == pytest.approx(two["cpu_minutes"] / 2)  # its own two training processes

    # a trunk finished without keep_steps (as another notebook trains it) leaves no state to branch from
    trunk = budget.budget_config(SMOKE, "none", seeds[0], max(budgets), budgets=budgets)
    (store / run_id(trunk)).mkdir(parents=True)
    (store / run_id(trunk) / DONE_FILE).write_text("done\n")
    table = suite_plan("smoke", only=["05"], seconds_per_step=1.0)
    chain = expected[(expected["mechanism"] == "none") & (expected["seed"] == seeds[0])]
    branches = chain[chain["role"] == "branch"]
    assert row(table, "05_training_budget")["steps_to_train"] == (expected["steps_trained"].sum() - trunk.steps
                                                                  - branches["steps_trained"].sum()
                                                                  + branches["budget"].sum())


def test_parameters_reach_the_notebooks_and_reuse_tables_trains_nothing(store):
    two = suite_plan("smoke", only=["02"], params={"seeds": [0, 1], "mechanisms": ["none", "hard_select"]},
                     seconds_per_step=1.0)
    assert row(two, "02_channel_sensitivity")["models"] == 4
    reused = suite_plan("smoke", only=["01", "02"], params={"reuse_tables": True}, seconds_per_step=1.0)
    assert reused["models"].sum() == 0 and reused["steps_to_train"].sum() == 0
    with pytest.raises(ValueError, match="unknown parameter"):
        suite_plan("smoke", only=["01"], params={"no_such_parameter": 1}, seconds_per_step=1.0)
    with pytest.raises(ValueError, match="unknown profile"):
        suite_plan("huge", seconds_per_step=1.0)


def test_seconds_per_step_is_measured_once_per_architecture(store, monkeypatch):
    import csnet.train

    calls = []

    def fake(cfg, steps=3):
        calls.append(cfg)
        return 2.0 if cfg.fusion == "none" else 1.0

    monkeypatch.setattr(csnet.train, "seconds_per_step", fake)
    table = suite_plan("smoke", only=["01"])
    # hard_select and its mask-noise variant share an architecture: two measurements for three models
    assert sorted(c.fusion for c in calls) == ["hard_select", "none"]
    assert table.attrs["measured"][0]["how"].startswith("measured")
    assert row(table, "01_table1_channel_misallocation")["cpu_minutes"] == pytest.approx((2 * 20 * 1.0 + 20 * 2.0) / 60)
    assert math.isfinite(table.attrs["load"]["before"]["load_average"])
    text = format_plan(table)
    assert "load average" in text and "Training only" in text


def test_seconds_per_step_times_real_training_steps(one_torch_thread):
    from csnet.train import seconds_per_step

    cfg = run_config(SMOKE, "hard_select", 0, text_encoder="onehot", patch_size=16, batch_size=2,
                     model={"dim": 8, "heads": (1, 1, 1, 1)})
    seconds = seconds_per_step(cfg, steps=1)
    assert 0 < seconds < 60
    with pytest.raises(ValueError, match="steps"):
        seconds_per_step(cfg, steps=0)


def test_cli_plan_prints_the_table(store, capsys):
    assert main(["suite", "plan", "--profile", "smoke", "--only", "01", "--only", "03", "--jobs", "2",
                 "--seconds-per-step", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "| notebook" in out and "01_table1_channel_misallocation" in out and "03_fusion_comparison" in out
    assert "| total" in out and "2 job(s)" in out and "Training only" in out
    assert main(["suite", "plan", "--profile", "smoke", "-p", "seeds", "[0, 1]", "-p", "seeds", "[0]"]) == 2


def test_dry_run_prints_the_plan_and_trains_nothing(store, tmp_path, capsys):
    results = tmp_path / "results"
    assert main(["suite", "run", "--profile", "smoke", "--only", "01", "--dry-run", "--seconds-per-step", "0.5",
                 "--results-root", str(results)]) == 0
    out = capsys.readouterr().out
    assert "01_table1_channel_misallocation" in out and "| total" in out
    assert not store.exists() or not any(store.iterdir())
    assert not results.exists()
    assert main(["suite", "run", "--profile", "smoke", "--only", "01", "--seconds-per-step", "0.5"]) == 2


class _RecordedRun:
    """What the training cells read off a run, for a run that was only asked for."""

    text_encoder_info = {"name": "not loaded: the run was only recorded"}

    def __init__(self, cfg):
        self.id = run_id(cfg)

    def to(self, device):
        return self


@pytest.mark.parametrize("stem", ["01_table1_channel_misallocation", "02_channel_sensitivity",
                                  "03_fusion_comparison", "04_degradation_recognition"])
def test_the_plan_lists_exactly_the_runs_each_notebook_asks_the_store_for(stem, store, tmp_path):
    """Execute the notebook's parameters cell (profile smoke), its set-up cell and every cell that calls
    get_or_train, with get_or_train recording the configs instead of training; the plan must list the same
    runs in the same order. A cell that goes on to evaluate the recorded runs stops there (they hold no model)."""
    import nbformat

    from analysis.compute_plan import notebook_work
    from csnet.suite import PARAMETERS_TAG, default_notebooks_dir

    path = default_notebooks_dir() / f"{stem}.ipynb"
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    first = next(i for i, c in enumerate(cells) if PARAMETERS_TAG in c.metadata.get("tags", []))
    asked = []

    def record(cfg, *args, **kwargs):
        asked.append(run_id(cfg))
        return _RecordedRun(cfg)

    namespace = {}
    for i, cell in enumerate(cells[first:], start=first):
        if i > first + 1 and "get_or_train(" not in cell.source:
            continue
        source = cell.source.replace("from csnet.store import get_or_train", "")
        if i == first:
            source += f"\nprofile = 'smoke'\noutput_dir = {str(tmp_path / stem)!r}\n"
        namespace["get_or_train"] = record
        try:
            exec(compile(source, f"{stem} cell {i}", "exec"), namespace)
        except AttributeError as err:  # evaluating a recorded run: everything before was asked for
            assert "_RecordedRun" in str(err), err
    planned = [run_id(cfg) for cfg in notebook_work(path, "smoke").configs]
    assert asked and list(dict.fromkeys(asked)) == list(dict.fromkeys(planned))
