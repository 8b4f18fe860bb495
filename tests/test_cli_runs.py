"""The study's models from the command line, scored on a user's standard test sets (issue 17.2–17.4).

One smoke model trained through the notebooks' code path is found finished by ``csnet train``,
``csnet eval`` and ``csnet restore``; one trained by ``csnet train`` is found finished by the
notebooks' code; ``csnet eval --test-root`` scores a small tree with the benchmarks' real file names.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import csnet.store as store
from csnet.cli import main
from csnet.io import write_image


@pytest.fixture(scope="module")
def isolated_store(tmp_path_factory):
    """A run store of this module's own (so training is counted), one torch thread."""
    mp = pytest.MonkeyPatch()
    mp.setenv("CSNET_RUNS", str(tmp_path_factory.mktemp("runs")))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    calls = []
    real = store.train

    def counting(cfg, *args, **kwargs):
        calls.append(cfg)
        return real(cfg, *args, **kwargs)

    mp.setattr(store, "train", counting)
    yield calls
    mp.undo()
    torch.set_num_threads(threads)


def notebook_config(fusion: str, seed: int):
    """The config the notebooks build: notebook 03's helper with notebook 01's κ, ω written out."""
    from analysis import fusion_comparison as fc
    from csnet.profiles import get_profile

    prof = get_profile("smoke")
    return fc.configure(prof, fusion, seed, tasks=tuple(prof.tasks), text_encoder=prof.text_encoder,
                        kappa=2.0, omega=0.5)


@pytest.mark.slow  # trains two smoke models
def test_notebook_runs_are_the_command_lines_runs_and_back(isolated_store, tmp_path, capsys):
    trained = store.get_or_train(notebook_config("hard_select", 0), progress=False)
    assert trained.trained_now and len(isolated_store) == 1

    assert main(["train", "--profile", "smoke", "--fusion", "hard_select", "--seed", "0", "--no-progress"]) == 0
    assert f"reusing finished run: {trained.dir}" in capsys.readouterr().out
    assert main(["eval", "--profile", "smoke", "--fusion", "hard_select", "--max-images", "1",
                 "--tasks", "derain", "--no-progress"]) == 0
    assert f"run {trained.id} " in capsys.readouterr().out
    photo = tmp_path / "photo.png"
    write_image(photo, np.random.default_rng(0).random((40, 48, 3)))
    assert main(["restore", str(photo), "-o", str(tmp_path / "out.png"), "--profile", "smoke",
                 "--fusion", "hard_select"]) == 0
    said = capsys.readouterr().out
    steps = trained.config.steps
    assert f"run {trained.id}: profile smoke" in said and f"trained {steps} of {steps} steps" in said
    assert "reused from the store" in said and "pipeline check" in said
    assert (tmp_path / "out.png").exists() and len(isolated_store) == 1  # nothing trained again

    assert main(["train", "--profile", "smoke", "--fusion", "hard_select", "--seed", "1", "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith("trained: ") and len(isolated_store) == 2
    again = store.get_or_train(notebook_config("hard_select", 1), progress=False)
    assert not again.trained_now and len(isolated_store) == 2


def _tree(root, sets=("denoise", "derain", "dehaze")):
    """A PromptIR-layout test tree with the benchmarks' real file names; sides not multiples of 16."""
    rng = np.random.default_rng(1)

    def image(height=90, width=100):
        base = np.linspace(0, 1, width)[None, :, None] * np.linspace(0.3, 1, height)[:, None, None]
        return np.clip(base + 0.05 * rng.standard_normal((height, width, 3)), 0, 1)

    if "denoise" in sets:
        write_image(root / "test/denoise/bsd68/test001.png", image())
    if "derain" in sets:
        clean = image()
        write_image(root / "test/derain/Rain100L/target/norain-1.png", clean)
        write_image(root / "test/derain/Rain100L/input/rain-1.png", np.clip(clean + 0.3 * (rng.random(clean.shape) > 0.97), 0, 1))
    if "dehaze" in sets:
        clean = image()
        write_image(root / "test/dehaze/target/0001.png", clean)
        (root / "test/dehaze/input").mkdir(parents=True)
        hazy = (255 * (0.6 * clean + 0.4 * 0.8)).round().astype(np.uint8)
        Image.fromarray(hazy).save(root / "test/dehaze/input/0001_0.8_0.2.jpg", quality=95)
    return root


@pytest.mark.slow  # trains (or reuses) one smoke model and restores five whole images
def test_eval_test_root_scores_every_standard_set_per_image(isolated_store, tmp_path, capsys):
    from csnet.benchmarks import evaluate_test_root
    from csnet.io import read_image
    from csnet.metrics import score
    from csnet.profiles import study_config

    root = _tree(tmp_path / "promptir")
    out = tmp_path / "scores.csv"
    assert main(["eval", "--profile", "smoke", "--fusion", "hard_select", "--test-root", str(root),
                 "-o", str(out), "--no-progress"]) == 0
    said = capsys.readouterr().out
    assert "numbers not meaningful" in said and "whole images" in said
    table = pd.read_csv(out)
    assert list(table["task"]) == ["denoise_15", "denoise_25", "denoise_50", "derain", "dehaze"]
    assert list(table["benchmark"]) == ["BSD68"] * 3 + ["Rain100L", "SOTS-outdoor"]
    assert list(table["image"]) == ["test001"] * 3 + ["rain-1", "0001_0.8_0.2"]
    # whole images, cropped to a multiple of 16 only (the smoke profile's own test crop is 64 px)
    assert (table["height"] == 80).all() and (table["width"] == 96).all()
    assert table["psnr"].between(5, 60).all() and table["ssim"].between(-1, 1).all()

    # the field's protocol, recomputed by hand for the rainy image: image prompt at the training scale
    # (the one P_v path, Run.prompts), whole image restored, RGB
    run = store.get_or_train(study_config("smoke", "hard_select", 0), progress=False)
    from csnet.evaluate import restore_image

    rainy = read_image(root / "test/derain/Rain100L/input/rain-1.png")[5:85, 2:98]
    clean = read_image(root / "test/derain/Rain100L/target/norain-1.png")[5:85, 2:98]
    with torch.inference_mode():
        restored = restore_image(run.model, rainy, run.prompts([], source="image", images=[rainy]))
    row = table[table["task"] == "derain"].iloc[0]
    assert row["psnr"] == pytest.approx(score(restored, clean)["psnr"], abs=1e-4)

    # the same function notebooks call; tasks the tree lacks are skipped and said so
    only_rain = _tree(tmp_path / "rain_only", sets=("derain",))
    assert list(evaluate_test_root(run, only_rain)["task"]) == ["derain"]
    assert main(["eval", "--profile", "smoke", "--fusion", "hard_select", "--test-root", str(only_rain),
                 "--no-progress"]) == 0
    assert "skipped: denoise_15, denoise_25, denoise_50, dehaze" in capsys.readouterr().out


def test_eval_test_root_without_the_tasks_fails_before_training(isolated_store, tmp_path, capsys):
    (tmp_path / "empty" / "test").mkdir(parents=True)
    trained_before = len(isolated_store)
    assert main(["eval", "--profile", "smoke", "--fusion", "soft_gate", "--test-root", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "holds test sets for no task" in err and "test/derain/Rain100L" in err
    assert main(["eval", "--profile", "smoke", "--fusion", "soft_gate", "--test-root", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert len(isolated_store) == trained_before


@pytest.mark.slow  # trains a cpu-profile network for 4 steps and scores five whole images
def test_eval_test_root_at_the_cpu_profile(isolated_store, tmp_path, capsys):
    """The README's command at the cpu profile: the cpu network (C = 16, its image encoder and test
    protocol) scores a built tree. ``--steps 4`` keeps the test short: the numbers mean nothing, the path
    is the one a cpu study model takes."""
    root = _tree(tmp_path / "promptir")
    out = tmp_path / "cpu_scores.csv"
    before = len(isolated_store)
    assert main(["eval", "--profile", "cpu", "--fusion", "hard_select", "--steps", "4", "--test-root",
                 str(root), "-o", str(out), "--no-progress"]) == 0
    trained = isolated_store[before:]
    assert len(trained) == 1 and trained[0].profile == "cpu" and trained[0].steps == 4
    assert trained[0].model.get("dim", 16) == 16
    table = pd.read_csv(out)
    assert list(table["benchmark"]) == ["BSD68"] * 3 + ["Rain100L", "SOTS-outdoor"]
    assert (table["height"] == 80).all() and (table["width"] == 96).all()
    assert table["psnr"].between(5, 60).all()
    assert "cpu" in capsys.readouterr().out


def test_notebooks_take_a_test_root_through_one_helper(tmp_path):
    """``test_root`` (notebooks 01, 03, 05) swaps the profile's test photos for a user's standard test
    sets, whole images, limited to the tasks the tree holds; no tree, or no matching set, is an error."""
    from csnet.benchmarks import evaluation_settings
    from csnet.profiles import get_profile

    prof = get_profile("cpu")
    kwargs, tasks = evaluation_settings(prof, ["denoise_25", "derain", "dehaze"])
    assert kwargs == dict(test_source=prof.test_source, max_images=prof.test_max_images, max_side=prof.test_max_side)
    root = _tree(tmp_path / "promptir")
    kwargs, tasks = evaluation_settings(prof, ["dehaze", "deblur", "denoise_25"], root)
    assert kwargs == dict(test_source=str(root), max_images=None, max_side=None)
    assert tasks == ["dehaze", "denoise_25"]  # the tree has no deblur set
    with pytest.raises(FileNotFoundError, match="not a folder"):
        evaluation_settings(prof, ["derain"], tmp_path / "missing")
    with pytest.raises(ValueError, match="none of the tasks"):
        evaluation_settings(prof, ["deblur"], root)
