"""Evaluating a trained run: per-image PSNR/SSIM as a tidy table, recognition, tiled inference.

``evaluate(run, tasks, ...)`` restores every image of an evaluation split (``"test"`` to report,
``"val"`` to choose) of every task and returns one row per ``(task, image)``: the scores
(``csnet.metrics.score``: RGB, ``data_range=1``, centre crop to a multiple of 16), which prompt the
network received (``text`` = the text anchor of the task's label, P_t; ``image`` = the image
encoder's prompt of the degraded image, P_v, the paper's test-time choice), an optional forced channel
set, and what the image encoder recognised in the whole image (``correct``; ``summarise`` reports its
mean per task as ``accuracy``, the whole-image recognition rate).

The image prompt of a whole image is computed the way the encoder saw its training data: the
L2-normalised mean of its prompts over tiles of the run's training patch size (``image_prompts`` with
``tile``; ``prompt_tile_side`` resolves the choice). The paper computes P_v on the whole test image;
its encoder, though, is trained on patches, and on a whole image at several times that size it meets
statistics it never saw (at the quick profile, haze went unrecognised on every whole test photo).
``Run.prompts(source="image")``, ``Run.recognise``, ``evaluate`` and ``csnet restore`` all go through
this one path; ``prompt_tile="whole"`` gives the paper's whole-image prompt for comparison.

``restore_image`` runs the network over overlapping tiles blended with a smooth window, so a photo of
any size is restored in memory proportional to the tile (accumulators aside: two float32 planes of
the image). Restormer's attention is over channels with global spatial support, and the fusion blocks
pool globally, so tiled output differs slightly from whole-image output; the prompt is computed once
per image, not per tile.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PROMPT_SOURCES = ("text", "image")
PROMPT_TILE_CHOICES = ("train", "whole")  # or a positive int: the tile side of P_v, pixels
PROMPT_TILE_BATCH = 64  # tiles encoded per forward pass: bounds memory on large photos
ALL_SITES_CHOICES = ("all", "all_scaled")
COLUMNS = ["run", "fusion", "seed", "task", "label", "image", "psnr", "ssim", "prompt_source", "forced",
           "predicted", "correct", "confidence", "eval_seed", "height", "width", "split", "prompt_tile"]


# --------------------------------------------------------------------------------------------------
# Tiled inference


def _to_bchw(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an H×W×3 image, got shape {image.shape}")
        return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    if image.ndim == 3:
        image = image[None]
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"expected a (B,3,H,W) tensor, got shape {tuple(image.shape)}")
    return image


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of side ``tile`` covering ``[0, length)`` with at least ``overlap`` shared."""
    if tile >= length:
        return [0]
    stride = tile - overlap
    if stride <= 0:
        raise ValueError(f"tile ({tile}) must exceed the overlap ({overlap})")
    count = math.ceil((length - tile) / stride) + 1
    starts = [min(i * stride, length - tile) for i in range(count)]
    return sorted(set(starts))


def blend_window(size: int, overlap: int, at_start: bool, at_end: bool) -> torch.Tensor:
    """1-D tile weights: on each inner edge, zero over the outer quarter of the overlap (where the
    tile's own border padding spoils the output), a raised-cosine ramp over its middle half, 1 inside.

    Two neighbours' ramps sum to 1 across a nominal overlap; edges on the image border get no ramp, so
    every pixel keeps a positive total weight. A network whose receptive field reaches less than
    ``overlap // 4`` pixels is thus tiled exactly.
    """
    weight = torch.ones(size, dtype=torch.float32)
    margin = overlap // 4
    ramp_len = overlap - 2 * margin
    # (k + 0.5) / ramp_len: strictly inside (0, 1), and ramp + reversed ramp = 1
    ramp = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(ramp_len, dtype=torch.float32) + 0.5) / max(ramp_len, 1))
    rise = torch.cat([torch.zeros(margin), ramp])
    rise = rise[:size]
    if not at_start:
        weight[:rise.numel()] = torch.minimum(weight[:rise.numel()], rise)
    if not at_end:
        fall = rise.flip(0)
        weight[size - fall.numel():] = torch.minimum(weight[size - fall.numel():], fall)
    return weight


@torch.inference_mode()
def restore_image(model: nn.Module, image: np.ndarray | torch.Tensor, prompt: torch.Tensor,
                  tile: int | None = None, overlap: int = 32) -> np.ndarray | torch.Tensor:
    """Restore ``image`` (H×W×3 array or (1,3,H,W) tensor in [0, 1]) with ``prompt`` ((1,512) or (512,)).

    ``tile`` None runs the whole image at once; otherwise overlapping ``tile``×``tile`` tiles are
    restored one at a time and blended with a raised-cosine window, so peak memory is the network's
    on one tile plus the output accumulators. Returns the same kind it was given, clipped to [0, 1].
    """
    as_numpy = isinstance(image, np.ndarray)
    device = next(model.parameters()).device
    prompt = prompt.reshape(1, -1).to(device)
    if as_numpy:
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an H×W×3 image, got shape {image.shape}")
        height, width = image.shape[:2]
    else:
        image = _to_bchw(image)
        if image.shape[0] != 1:
            raise ValueError("restore_image takes one image; loop over a batch")
        height, width = image.shape[-2:]

    def tile_tensor(top: int, left: int, h: int, w: int) -> torch.Tensor:
        if as_numpy:
            crop = np.ascontiguousarray(image[top:top + h, left:left + w], dtype=np.float32)
            return torch.from_numpy(crop).permute(2, 0, 1)[None].to(device)
        return image[:, :, top:top + h, left:left + w].to(device=device, dtype=torch.float32)

    if tile is None or (tile >= height and tile >= width):
        out = model(tile_tensor(0, 0, height, width), prompt).float().clamp_(0, 1).cpu()
        return out[0].permute(1, 2, 0).numpy() if as_numpy else out
    if overlap < 0 or tile <= 2 * overlap:
        raise ValueError(f"tile ({tile}) must exceed twice the overlap ({overlap}) >= 0")

    output = torch.zeros(3, height, width, dtype=torch.float32)
    total = torch.zeros(height, width, dtype=torch.float32)
    tops, lefts = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    for top in tops:
        h = min(tile, height - top)
        wy = blend_window(h, overlap, at_start=top == 0, at_end=top + h >= height)
        for left in lefts:
            w = min(tile, width - left)
            wx = blend_window(w, overlap, at_start=left == 0, at_end=left + w >= width)
            weight = wy[:, None] * wx[None, :]  # (h, w)
            restored = model(tile_tensor(top, left, h, w), prompt).float().cpu()[0]  # (3, h, w)
            output[:, top:top + h, left:left + w] += restored * weight
            total[top:top + h, left:left + w] += weight
    output /= total
    output.clamp_(0, 1)
    return output.permute(1, 2, 0).numpy() if as_numpy else output[None]


def prompt_tile_side(prompt_tile: int | str, patch_size: int) -> int | None:
    """The tile side P_v is computed over: ``patch_size`` (the run's training patches) for
    ``"train"``, ``None`` (the whole image in one pass, the paper's test-time prompt) for
    ``"whole"``, or the given positive int."""
    if isinstance(prompt_tile, str):
        if prompt_tile not in PROMPT_TILE_CHOICES:
            raise ValueError(f"prompt_tile must be one of {PROMPT_TILE_CHOICES} or a positive int, "
                             f"got {prompt_tile!r}")
        return int(patch_size) if prompt_tile == "train" else None
    if isinstance(prompt_tile, bool) or not isinstance(prompt_tile, (int, np.integer)) or prompt_tile < 1:
        raise ValueError(f"prompt_tile must be one of {PROMPT_TILE_CHOICES} or a positive int, "
                         f"got {prompt_tile!r}")
    return int(prompt_tile)


def prompt_tiles(height: int, width: int, tile: int) -> list[tuple[int, int, int, int]]:
    """``(top, left, h, w)`` of the tiles P_v averages over: a grid of ``tile``-sided squares that
    covers the image, the last row and column moved back to end at its border (so they may overlap
    their neighbour); one tile, the whole image, when it is no larger than ``tile``."""
    tops, lefts = tile_starts(height, tile, 0), tile_starts(width, tile, 0)
    return [(top, left, min(tile, height), min(tile, width)) for top in tops for left in lefts]


@torch.inference_mode()
def image_prompts(encoder: nn.Module, images: Any, tile: int | None = None,
                  device: str | torch.device | None = None) -> torch.Tensor:
    """(B, 512) visual prompts P_v of ``images`` ((B,3,H,W) tensor or a list of H×W×3 arrays).

    With ``tile``, each image is encoded as the L2-normalised mean of its tiles' prompts
    (:func:`prompt_tiles`; full resolution, so noise keeps its statistics), ``PROMPT_TILE_BATCH``
    tiles per pass; ``None`` encodes each image whole. Most callers want ``Run.prompts``, which
    picks the tile from the run.
    """
    device = device or next(encoder.parameters()).device
    whole_batch = isinstance(images, torch.Tensor) and images.ndim == 4
    if whole_batch and (tile is None or max(images.shape[-2:]) <= tile):  # one pass: nothing to tile
        return encoder(images.to(device=device, dtype=torch.float32)).float()
    single = (isinstance(images, np.ndarray) and images.ndim == 3) or (
        isinstance(images, torch.Tensor) and images.ndim == 3)
    items = [images] if single else list(images)
    out = []
    for item in items:
        x = _to_bchw(item)
        height, width = x.shape[-2:]
        if tile is None or (height <= tile and width <= tile):
            out.append(encoder(x.to(device=device, dtype=torch.float32)).float()[0])
            continue
        crops = torch.cat([x[:, :, top:top + h, left:left + w]
                           for top, left, h, w in prompt_tiles(height, width, tile)])  # (T, 3, t, t)
        parts = torch.cat([encoder(crops[s:s + PROMPT_TILE_BATCH].to(device=device, dtype=torch.float32))
                           .float() for s in range(0, len(crops), PROMPT_TILE_BATCH)])  # (T, 512)
        out.append(F.normalize(parts.mean(0), dim=0))
    if not out:
        return torch.zeros(0, 512, device=device)
    return torch.stack(out)


# --------------------------------------------------------------------------------------------------
# Forced channel sets


def forced_channels(run: Any, force: str | Mapping[str, Any] | None) -> tuple[dict | None, str | None]:
    """``(mapping for model.force_channels, label for the table)`` from ``force``.

    ``force``: None (the prompt selects), ``"all"`` / ``"all_scaled"`` (every channel, at every site),
    a degradation label (the channels the run's text prompt for that label selects, at every site), or
    a ``{site: indices | "all" | "all_scaled"}`` mapping passed through (labelled ``"custom"``).
    """
    if force is None:
        return None, None
    from csnet.models import SELECTING

    if isinstance(force, Mapping):
        return dict(force), "custom"
    if not isinstance(force, str):
        raise ValueError(f"force must be None, 'all', 'all_scaled', a label or a mapping; got {force!r}")
    if run.fusion not in SELECTING:
        raise ValueError(f"fusion {run.fusion!r} selects no channels, so force must be None; the fusions "
                         f"that select are {SELECTING}")
    if force in ALL_SITES_CHOICES:
        return {site: force for site in run.model.config.fusion_sites}, force
    with torch.inference_mode():
        chosen = run.model.selected_channels(run.anchor(force)[None])  # {site: (1, K)}
    return {site: idx for site, idx in chosen.items()}, force


# --------------------------------------------------------------------------------------------------
# Evaluation


def evaluate(run: Any, tasks: str | Sequence[str], prompt_source: str = "text",
             force: str | Mapping[str, Any] | None = None, test_source: str = "corpus",
             max_images: int | None = None, max_side: int | None = None, seed: int = 0,
             tile: int | None = None, tile_overlap: int = 32, progress: bool = False,
             test_root: str | None = None,
             split: str = "test", prompt_tile: int | str = "train"):
    """One row per ``(task, image)``: scores, prompt source, forced channels, recognition.

    ``run`` is a ``csnet.store.Run``. ``split`` picks the evaluation images (``csnet.data.test_set``:
    ``"test"`` to report, ``"val"`` to choose a recipe or protocol). ``prompt_source`` ``"text"``
    gives the network the text anchor of the task's label (P_t), ``"image"`` the image encoder's
    prompt of the degraded image (P_v, from ``run.prompts``: tiles of ``prompt_tile``, by default the
    run's training patch size; ``"whole"`` for the paper's whole-image prompt). Recognition
    (``predicted``, ``correct``, ``confidence``) always comes from that same P_v, whatever the source.
    ``tile`` and ``tile_overlap`` tile the restoration only. The ``prompt_tile`` column holds the tile
    side used, 0 for the whole image. ``test_root``: a PromptIR-layout folder whose standard test sets
    replace ``test_source`` (``csnet.benchmarks.evaluate_test_root`` picks the tasks the tree has and
    scores whole images).
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from csnet.data import test_set
    from csnet.degrade import label_of
    from csnet.metrics import score
    from csnet.prompts import recognise

    if prompt_source not in PROMPT_SOURCES:
        raise ValueError(f"prompt_source must be one of {PROMPT_SOURCES}, got {prompt_source!r}")
    tasks = [tasks] if isinstance(tasks, str) else list(tasks)
    prompt_side = prompt_tile_side(prompt_tile, run.config.patch_size) or 0
    forced, forced_label = forced_channels(run, force)
    run.model.eval()
    run.image_encoder.eval()
    rows = []
    for task in tasks:
        label = label_of(task)
        images = test_set(task, source=test_root if test_root is not None else test_source, seed=seed,
                          max_images=max_images, max_side=max_side, split=split)
        for item in tqdm(images, desc=f"{run.id} {task}", disable=not progress, leave=False):
            visual = run.prompts([], source="image", images=[item.degraded], tile=prompt_tile)  # (1, 512)
            pred, confidence = recognise(visual, run.anchors)
            predicted = run.labels[int(pred[0])]
            prompt = visual if prompt_source == "image" else run.anchor(label)[None]
            if forced is not None:
                with run.model.force_channels(forced):
                    restored = restore_image(run.model, item.degraded, prompt, tile=tile, overlap=tile_overlap)
            else:
                restored = restore_image(run.model, item.degraded, prompt, tile=tile, overlap=tile_overlap)
            scores = score(restored, item.clean)
            rows.append({
                "run": run.id, "fusion": run.fusion, "seed": run.seed, "task": task, "label": label,
                "image": item.name, "psnr": float(scores["psnr"]), "ssim": float(scores["ssim"]),
                "prompt_source": prompt_source, "forced": forced_label, "predicted": predicted,
                "correct": predicted == label, "confidence": float(confidence[0]), "eval_seed": seed,
                "height": int(item.degraded.shape[0]), "width": int(item.degraded.shape[1]),
                "split": split, "prompt_tile": prompt_side,
            })
    return pd.DataFrame(rows, columns=COLUMNS)


def summarise(table, by: Sequence[str] = ("task",)):
    """Mean PSNR/SSIM, whole-image recognition accuracy (the share of images whose P_v is nearest
    its own label's anchor) and image count per group of an ``evaluate`` table."""
    grouped = table.groupby(list(by), sort=False)
    out = grouped.agg(psnr=("psnr", "mean"), ssim=("ssim", "mean"), accuracy=("correct", "mean"),
                      images=("image", "count")).reset_index()
    return out


def recognition_accuracy(table, by: Sequence[str] = ("label",)):
    """Share of images whose degradation the image encoder named correctly, per group, with counts
    and the confusion (most frequent wrong prediction)."""
    import pandas as pd

    rows = []
    for key, group in table.groupby(list(by), sort=False):
        wrong = group.loc[~group["correct"], "predicted"]
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))),
                     "accuracy": float(group["correct"].mean()), "images": len(group),
                     "mean_confidence": float(group["confidence"].mean()),
                     "most_confused_with": wrong.mode().iloc[0] if len(wrong) else None})
    return pd.DataFrame(rows)
