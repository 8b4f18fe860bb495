"""Scoring any run on a user's standard test sets (PromptIR's folder layout), per image.

PromptIR, AdaIR and CSNet report all-in-one restoration on BSD68 (noise σ 15/25/50, synthesised on the
clean images with fixed seeds), Rain100L and SOTS-outdoor, with GoPro and LOL-v1 in the five-task
setting. ``evaluate_test_root(run, test_root)`` restores every test image of the sets present in the
tree (``csnet.data``'s loaders and layout; the training half ``data/Train`` is not needed) whole, not
cropped to a profile's test size, and scores them with the field's protocol (``csnet.metrics``: RGB,
``data_range=1``, centre crop to a multiple of 16). The paper does not say whether CSNet's test images
were tiled or which prompt CSNet used for SOTS's varying haze; this scores the image prompt P_v by
default (the paper's test-time choice) and whole images unless ``tile`` is given.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

# task → (the benchmark's name in the papers, its test folder under the root)
TEST_SETS = {
    "denoise_15": ("BSD68", "test/denoise/bsd68"),
    "denoise_25": ("BSD68", "test/denoise/bsd68"),
    "denoise_50": ("BSD68", "test/denoise/bsd68"),
    "derain": ("Rain100L", "test/derain/Rain100L"),
    "dehaze": ("SOTS-outdoor", "test/dehaze"),
    "deblur": ("GoPro", "test/deblur"),
    "lowlight": ("LOL-v1", "test/enhance"),
}


def available_tasks(test_root: str | os.PathLike) -> list[str]:
    """The task keys whose standard test set is present under ``test_root`` (their folder exists)."""
    root = Path(test_root)
    if not root.is_dir():
        raise FileNotFoundError(f"the test root {root} does not exist (a folder in PromptIR's layout, "
                                f"with {', '.join(sorted({f for _, f in TEST_SETS.values()}))})")
    return [task for task, (_, folder) in TEST_SETS.items() if (root / folder).is_dir()]


def tasks_to_score(test_root: str | os.PathLike, tasks: Sequence[str]) -> list[str]:
    """``tasks`` that have a test set in the tree, in order; ``ValueError`` naming what the tree holds
    when none has."""
    present = available_tasks(test_root)
    chosen = [task for task in tasks if task in present]
    if not chosen:
        raise ValueError(f"{test_root} holds test sets for {present or 'no task'}, none of the tasks "
                         f"{list(tasks)} (expected folders: "
                         + ", ".join(f"{t} → {TEST_SETS[t][1]}" for t in tasks if t in TEST_SETS) + ")")
    return chosen


def evaluate_test_root(run: Any, test_root: str | os.PathLike, tasks: Sequence[str] | None = None,
                       prompt_source: str = "image", tile: int | None = None, seed: int = 0,
                       progress: bool = False):
    """One row per ``(task, image)`` of ``run`` on the standard test sets under ``test_root``: the
    columns of ``csnet.evaluate.evaluate`` plus ``benchmark`` and ``test_root``. ``tasks`` (default:
    the run's training tasks) are kept where the tree has their test set; whole images are scored."""
    from csnet.evaluate import evaluate

    root = Path(test_root).resolve()
    chosen = tasks_to_score(root, list(tasks) if tasks is not None else list(run.config.tasks))
    table = evaluate(run, chosen, prompt_source=prompt_source, test_root=str(root), seed=seed, tile=tile,
                     progress=progress)
    table.insert(table.columns.get_loc("task") + 1, "benchmark", table["task"].map(lambda t: TEST_SETS[t][0]))
    table["test_root"] = str(root)
    return table


def evaluation_settings(profile: Any, tasks: Sequence[str], test_root: str | os.PathLike | None = None
                        ) -> tuple[dict[str, Any], list[str]]:
    """What a notebook evaluates on, as ``(evaluate_kwargs, tasks)`` for ``csnet.evaluate.evaluate`` and
    ``analysis.classical.evaluate_references``: the profile's test photos (its source, count and crop),
    or, with ``test_root``, the standard test sets of that PromptIR-layout tree as whole images, for the
    tasks the tree has (:func:`tasks_to_score`; a missing folder or no matching set is an error)."""
    if test_root is None:
        return (dict(test_source=profile.test_source, max_images=profile.test_max_images,
                     max_side=profile.test_max_side), list(tasks))
    root = Path(test_root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"test_root {root} is not a folder (expected PromptIR's layout, e.g. "
                                f"{root}/test/derain/Rain100L/input)")
    return dict(test_source=str(root), max_images=None, max_side=None), tasks_to_score(root, tasks)
