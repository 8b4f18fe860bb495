"""csnet.degrade: every degradation, the task-key registry, composites, and `csnet degrade`."""
from __future__ import annotations

import itertools
import json
import time

import numpy as np
import pytest
from PIL import Image

from csnet.cli import main as cli_main
from csnet.corpus import load_photo
from csnet.degrade import (APPLY_ORDER, FIVE_TASKS, PRIMITIVES, THREE_TASKS, apply_noise, degrade,
                           degrade_file, label_of, motion_kernel, params_rows, parameter_names,
                           streak_kernel, validate_task)
from csnet.io import from_uint8, read_image, to_uint8

SINGLE = ("denoise_15", "denoise_25", "denoise_50", "derain", "dehaze", "deblur", "lowlight")
COMPOSITES = ("rain+haze", "lowlight+haze", "noise+rain", "haze+rain+noise", "blur+denoise_50",
              "lowlight+blur+rain")
ALL_KEYS = SINGLE + PRIMITIVES + COMPOSITES


@pytest.fixture(scope="module")
def photo():
    return load_photo("kodim23")[100:196, 200:328]  # 96×128, a real photo


@pytest.mark.parametrize("task", ALL_KEYS)
def test_every_task_is_deterministic_seeded_and_shape_preserving(photo, task):
    first, params = degrade(photo, task, seed=3)
    again, params_again = degrade(photo, task, seed=3)
    other, params_other = degrade(photo, task, seed=4)
    assert first.dtype == np.float32 and first.shape == photo.shape
    assert first.min() >= 0.0 and first.max() <= 1.0
    np.testing.assert_array_equal(first, again)
    assert params == params_again
    assert not np.array_equal(first, other)
    assert np.mean(np.abs(first - photo).max(axis=2) > 0.02) > 0.02  # it really degrades
    json.loads(json.dumps(params))  # JSON-serialisable
    assert params["task"] == task and params["seed"] == 3
    assert params["order"] == [p for p in APPLY_ORDER if p in params]
    for primitive in params["order"]:
        assert set(params[primitive]) == set(parameter_names(task)[primitive])


def test_the_input_is_not_modified(photo):
    before = photo.copy()
    for task in ("derain", "haze+rain+noise", "lowlight+blur"):
        degrade(photo, task, 0)
    np.testing.assert_array_equal(photo, before)


@pytest.mark.parametrize("parts", [("rain", "haze"), ("haze", "rain", "noise"),
                                   ("lowlight", "blur", "denoise_15"), ("dehaze", "derain")])
def test_composites_apply_in_physical_order_whatever_the_key_order(photo, parts):
    results = [degrade(photo, "+".join(order), seed=5) for order in itertools.permutations(parts)]
    for degraded, params in results[1:]:
        np.testing.assert_array_equal(degraded, results[0][0])
        assert params["order"] == results[0][1]["order"]
    order = results[0][1]["order"]
    assert order == sorted(order, key=APPLY_ORDER.index)


def test_composite_equals_its_parts_applied_in_order(photo):
    hazy, haze_params = degrade(photo, "haze", 9)
    both, params = degrade(photo, "rain+haze", 9)
    rained_after_haze, rain_params = degrade(hazy, "rain", 9)
    np.testing.assert_array_equal(both, rained_after_haze)
    assert params["haze"] == haze_params["haze"] and params["rain"] == rain_params["rain"]


def test_noise_is_added_the_promptir_way(photo):
    noisy, params = degrade(photo, "denoise_25", seed=7)
    assert params["noise"] == {"sigma": 25.0}
    field = np.random.default_rng([7, 1]).standard_normal(photo.shape)
    expected = np.clip(to_uint8(photo) + field * 25.0, 0, 255).astype(np.uint8)  # PromptIR's formula
    np.testing.assert_array_equal(noisy, from_uint8(expected))
    np.testing.assert_array_equal(apply_noise(photo, 25.0, field), noisy)


@pytest.mark.parametrize("task, sigma", [("denoise_15", 15), ("denoise_25", 25), ("denoise_50", 50),
                                         ("noise", 25)])
def test_noise_level_matches_sigma(task, sigma):
    grey = np.full((128, 128, 3), 0.5, dtype=np.float32)  # far from the clipping bounds
    noisy, _ = degrade(grey, task, seed=0)
    residual = (noisy - from_uint8(to_uint8(grey))) * 255
    assert residual.std() == pytest.approx(sigma, rel=0.03)
    assert np.allclose(noisy * 255, np.round(noisy * 255), atol=1e-4)  # quantised to 8 bits


def test_rain_only_brightens_and_streaks_follow_density(photo):
    rainy, params = degrade(photo, "derain", seed=1)
    assert np.all(rainy >= photo - 1e-6)  # screen blend: never darker
    light, _ = degrade(photo, "derain", seed=1, density=0.001)
    heavy, heavy_params = degrade(photo, "derain", seed=1, density=0.01)
    changed = [np.mean(np.abs(x - photo).max(axis=2) > 0.02) for x in (light, heavy)]
    assert changed[0] < changed[1]
    assert heavy_params["rain"]["density"] == 0.01
    for name in ("streak_length", "streak_angle", "streak_width", "brightness"):
        assert heavy_params["rain"][name] == params["rain"][name]  # an override changes nothing else


def test_streak_kernel_points_along_its_angle():
    vertical = streak_kernel(length=21, angle=0, width=1)
    centre = vertical.shape[0] // 2
    assert vertical.max() == pytest.approx(1.0)
    assert vertical[:, centre].sum() > 10 * vertical[centre, :].sum() / 2  # long along y, thin along x
    leaning = streak_kernel(length=21, angle=45, width=1)
    assert leaning[centre + 5, centre + 5] > 0.5 and leaning[centre + 5, centre - 5] < 0.05


def test_haze_follows_the_scattering_model_and_thickens_upwards():
    scene = np.full((64, 64, 3), 0.2, dtype=np.float32)
    hazy, params = degrade(scene, "dehaze", seed=2)
    airlight = params["haze"]["airlight"]
    assert 0.8 <= airlight <= 1.0 and 0.6 <= params["haze"]["beta"] <= 1.8
    assert np.all(hazy >= 0.2 - 1e-6) and np.all(hazy <= airlight + 1e-6)  # between J and A
    transmission = (airlight - hazy[:, :, 0]) / (airlight - 0.2)
    assert transmission[0].mean() < transmission[-1].mean()  # the top (far) is hazier
    depth = -np.log(transmission) / params["haze"]["beta"]
    assert depth.min() == pytest.approx(0.1, abs=1e-3) and depth.max() == pytest.approx(1.0, abs=1e-3)


def test_motion_kernel_is_normalised_and_blur_smooths(photo):
    turns = np.random.default_rng(0).standard_normal(63)
    kernel = motion_kernel(15, 0.8, 30.0, 0.3, turns)
    assert kernel.shape == (15, 15) and kernel.min() >= 0
    assert kernel.sum() == pytest.approx(1.0)
    assert np.count_nonzero(kernel) > 8  # a path, not a point
    with pytest.raises(ValueError, match="odd"):
        motion_kernel(14, 0.8, 30.0, 0.3, turns)
    blurred, params = degrade(photo, "deblur", seed=0)
    assert params["blur"]["kernel_size"] % 2 == 1
    flat = np.full((40, 40, 3), 0.3, dtype=np.float32)
    np.testing.assert_allclose(degrade(flat, "deblur", 0)[0], flat, atol=1e-5)

    def roughness(image):
        return np.abs(np.diff(image, axis=0)).mean() + np.abs(np.diff(image, axis=1)).mean()
    assert roughness(blurred) < 0.8 * roughness(photo)


def test_low_light_darkens_with_signal_dependent_noise():
    ramp = np.concatenate([np.full((64, 64, 3), 0.2), np.full((64, 64, 3), 1.0)], axis=1)
    dark, params = degrade(ramp.astype(np.float32), "lowlight", seed=3, read_noise=0.0)
    p = params["lowlight"]
    assert dark.mean() < 0.5 * ramp.mean()
    expected_bright = p["exposure"]
    assert dark[:, 64:].mean() == pytest.approx(expected_bright, rel=0.05)
    assert dark[:, 64:].std() > 1.5 * dark[:, :64].std()  # shot noise grows with the signal


def test_overrides_are_checked(photo):
    with pytest.raises(ValueError, match=r"unknown parameter.*beta.*its parameters are .*density"):
        degrade(photo, "derain", 0, beta=1.0)
    _, params = degrade(photo, "rain+haze", 0, beta=1.0, density=0.002)
    assert params["haze"]["beta"] == 1.0 and params["rain"]["density"] == 0.002
    _, params = degrade(photo, "noise", 0, sigma=10)
    assert params["noise"]["sigma"] == 10.0


def test_registry_constants():
    assert THREE_TASKS == ("denoise_15", "denoise_25", "denoise_50", "derain", "dehaze")
    assert FIVE_TASKS == ("denoise_25", "derain", "dehaze", "deblur", "lowlight")
    assert set(PRIMITIVES) == {"noise", "rain", "haze", "blur", "lowlight"}
    assert APPLY_ORDER == ("haze", "rain", "lowlight", "blur", "noise")


@pytest.mark.parametrize("task, label", [
    ("denoise_15", "noise"), ("denoise_50", "noise"), ("derain", "rain"), ("dehaze", "haze"),
    ("deblur", "blur"), ("lowlight", "low"), ("rain+haze", "rain_haze"), ("haze+rain", "haze_rain"),
    ("lowlight+haze", "low_haze"), ("denoise_25+rain", "noise_rain"),
])
def test_label_of(task, label):
    assert label_of(task) == label


def test_unknown_task_lists_the_valid_keys(photo):
    for bad in ("snow", "rain+snow", "denoise_30", "", "rain++haze"):
        with pytest.raises(ValueError, match=r"valid keys: single tasks denoise_15, .*derain.*primitives"):
            degrade(photo, bad, 0)
    with pytest.raises(ValueError, match="more than once"):
        validate_task("noise+denoise_50")
    assert validate_task(" rain + haze ") == "rain+haze"


def test_bad_images_and_seeds_are_refused(photo):
    with pytest.raises(ValueError, match="float pixels"):
        degrade(to_uint8(photo), "derain", 0)
    with pytest.raises(ValueError, match="H×W×3"):
        degrade(photo[:, :, 0], "derain", 0)
    with pytest.raises(ValueError, match="H×W×3"):
        degrade(np.dstack([photo, photo[:, :, :1]]), "derain", 0)
    with pytest.raises(ValueError, match="NaN"):
        degrade(np.full((8, 8, 3), np.nan, dtype=np.float32), "derain", 0)
    for seed in (-1, 1.5, "0", True):
        with pytest.raises(ValueError, match="seed"):
            degrade(photo, "derain", seed)


def test_small_images_work():
    tiny = np.random.default_rng(0).random((9, 11, 3)).astype(np.float32)
    for task in ALL_KEYS:
        assert degrade(tiny, task, 0)[0].shape == tiny.shape


def test_a_512_image_degrades_well_under_a_second():
    image = load_photo("sail")[:512, :512]
    for task in SINGLE + ("haze+rain+noise",):
        start = time.perf_counter()
        degrade(image, task, 0)
        assert time.perf_counter() - start < 1.0, task


def test_params_rows_flatten_a_record(photo):
    _, params = degrade(photo, "haze+rain", 1)
    rows = params_rows(params)
    assert [r["primitive"] for r in rows] == ["haze"] * 3 + ["rain"] * 5
    assert {r["parameter"] for r in rows if r["primitive"] == "haze"} == {"beta", "airlight", "depth_mix"}
    assert all(r["task"] == "haze+rain" and r["seed"] == 1 for r in rows)


def test_degrade_file_is_byte_identical_for_a_seed(tmp_path, photo):
    src = tmp_path / "in.png"
    Image.fromarray(to_uint8(photo)).save(src)
    params = degrade_file(src, "rain+haze", 0, tmp_path / "a.png")
    degrade_file(src, "rain+haze", 0, tmp_path / "b.png")
    degrade_file(src, "rain+haze", 1, tmp_path / "c.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "c.png").read_bytes()
    assert params["order"] == ["haze", "rain"]
    expected, _ = degrade(read_image(src), "rain+haze", 0)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), from_uint8(to_uint8(expected)))


def test_cli_degrade_prints_params_and_writes(tmp_path, capsys, photo):
    src = tmp_path / "in.png"
    Image.fromarray(to_uint8(photo)).save(src)
    assert cli_main(["degrade", str(src), "--task", "rain+haze", "--seed", "0", "-o",
                     str(tmp_path / "out.png")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["task"] == "rain+haze" and set(printed["order"]) == {"haze", "rain"}
    assert read_image(tmp_path / "out.png").shape == photo.shape


@pytest.mark.parametrize("args, message", [
    (["--task", "snow"], "unknown task key 'snow'"),
    (["--task", "derain", "-o", "OUT.jpg"], "written as PNG"),
])
def test_cli_degrade_user_errors_exit_2_without_traceback(tmp_path, capsys, photo, args, message):
    src = tmp_path / "in.png"
    Image.fromarray(to_uint8(photo)).save(src)
    argv = ["degrade", str(src), *args]
    if "-o" not in args:
        argv += ["-o", str(tmp_path / "out.png")]
    else:
        argv[argv.index("OUT.jpg")] = str(tmp_path / "out.jpg")
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_degrade_missing_and_corrupt_files(tmp_path, capsys):
    assert cli_main(["degrade", str(tmp_path / "none.png"), "--task", "derain", "-o",
                     str(tmp_path / "o.png")]) == 2
    assert "none.png" in capsys.readouterr().err
    (tmp_path / "bad.png").write_bytes(b"garbage" * 20)
    assert cli_main(["degrade", str(tmp_path / "bad.png"), "--task", "derain", "-o",
                     str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err
    assert "bad.png" in err and "Traceback" not in err
    assert not (tmp_path / "o.png").exists()


def test_cli_degrade_unwritable_output_is_a_user_error(tmp_path, capsys, photo):
    src = tmp_path / "in.png"
    Image.fromarray(to_uint8(photo)).save(src)
    (tmp_path / "file.txt").write_text("a file, not a folder")
    assert cli_main(["degrade", str(src), "--task", "derain", "-o",
                     str(tmp_path / "file.txt" / "out.png")]) == 2
    err = capsys.readouterr().err
    assert "csnet degrade: error:" in err and "Traceback" not in err
