"""The classical references score the validation photos when asked (the recipe sweep's yardstick)."""
from __future__ import annotations

from analysis import classical
from csnet.corpus import photo_names


def test_evaluate_references_on_the_validation_split():
    val = classical.evaluate_references(["denoise_25"], ["degraded input"], max_images=2, max_side=32,
                                        split="val")
    test = classical.evaluate_references(["denoise_25"], ["degraded input"], max_images=2, max_side=32)
    assert val["image"].tolist() == photo_names("val")[:2]
    assert test["image"].tolist() == photo_names("test")[:2]
