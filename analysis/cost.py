"""What each fusion mechanism costs, as one table: parameters, FLOPs, training throughput, latency.

The measuring is ``csnet.bench``'s (the code behind ``csnet bench``) and ``csnet.models.summary``'s; this
module only runs it for the mechanisms a notebook compares, in **one** interleaved measurement (every
round times one step of every mechanism, in an order rotated from round to round, so load from other
processes falls on all alike; the time reported is the median over rounds), and lays out the table.
Networks are built fresh from their ``ModelConfig``: timings do not depend on trained weights, and a
timed optimiser step must not touch a trained model.

- ``params`` / ``fusion_params``: parameters of the restoration network / inside its four fusion sites.
  The image prompt encoder is the same for every mechanism and counted apart (``prompt_encoder_params``).
- ``gflops_forward``: one forward pass on one ``image_side``² image (``csnet.models.summary.forward_flops``,
  2 FLOPs per multiply-add); ``train_gflops_per_step``: forward + backward of one training step on the
  ``batch_size`` × ``patch_size``² batch, the backward counted with ``csnet.bench``'s depthwise correction.
- ``train_patches_per_s``: patches per second of ``csnet.bench.train_step_action`` (forward, L1 loss,
  backward, clipping, AdamW) — the network alone; the image encoder's contrastive step is the same for
  every mechanism.
- ``latency_ms``: a batch-1 forward pass on an ``image_side``² image in inference mode; ``prompt_ms``:
  the image encoder's forward (the test-time prompt P_v), charged only to mechanisms that read the
  prompt (``none`` and ``implicit_prompt`` do not).
"""
from __future__ import annotations

import copy
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

ENCODER = "(image prompt encoder)"


def fusion_parameter_count(model: nn.Module) -> int:
    """Parameters inside the model's fusion sites (``model.fusion_sites``): 0 for a plain Restormer."""
    return int(sum(p.numel() for site in model.fusion_sites.values() for p in site.parameters()))


def encoder_action(encoder: nn.Module, image_side: int, seed: int = 0) -> Callable[[], Any]:
    """A closure running the image prompt encoder on one ``image_side``² image in inference mode."""
    device = next(encoder.parameters()).device
    image = torch.rand(1, 3, image_side, image_side, generator=torch.Generator().manual_seed(seed)).to(device)
    encoder.eval()

    def forward() -> Any:
        with torch.inference_mode():
            return encoder(image)

    return forward


def medians(times: Mapping[str, list[float]]) -> dict[str, dict[str, float]]:
    """``{name: {"median": s, "iqr": s}}`` of ``csnet.bench.interleaved``'s per-round seconds."""
    out = {}
    for name, values in times.items():
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        out[name] = {"median": float(median), "iqr": float(q3 - q1)}
    return out


def cost_table(configs: Mapping[str, Any], *, patch_size: int, batch_size: int, image_side: int,
               image_encoder: nn.Module | None = None, train_rounds: int = 5, inference_rounds: int = 10,
               warmup: int = 1, seed: int = 0, device: str | torch.device = "cpu") -> pd.DataFrame:
    """One row per mechanism: parameters, FLOPs, training throughput and inference latency.

    ``configs`` maps a mechanism's name to its ``csnet.models.ModelConfig`` (or its dict). ``image_encoder``
    (e.g. a run's) is timed in the same interleaved rounds and its latency charged to the mechanisms that
    read the prompt. See the module's docstring for what each column counts."""
    from csnet import bench
    from csnet.models import ModelConfig, build_model
    from csnet.models.summary import forward_flops, parameter_count

    device = torch.device(device)
    cfgs = {name: cfg if isinstance(cfg, ModelConfig) else ModelConfig.from_dict(dict(cfg))
            for name, cfg in configs.items()}
    models = {name: build_model(cfg).to(device) for name, cfg in cfgs.items()}
    rows = {}
    for name, model in models.items():
        cfg = cfgs[name]
        model_kwargs = {k: v for k, v in cfg.to_dict().items() if k != "fusion"}
        step_flops = bench.training_flops(model_kwargs, cfg.fusion, batch_size, patch_size)
        rows[name] = {
            "mechanism": name,
            "params": int(parameter_count(model)),
            "fusion_params": fusion_parameter_count(model),
            "gflops_forward": forward_flops(cfg, image_side) / 1e9,
            "train_gflops_per_step": (step_flops["forward"] + step_flops["backward"]) / 1e9,
            "uses_prompt": bool(model.uses_prompt),
        }
    training = {name: bench.train_step_action(copy.deepcopy(model), batch_size, patch_size, seed=seed)
                for name, model in models.items()}
    train_times = medians(bench.interleaved(training, train_rounds, warmup=warmup, device=device))
    inference = {name: bench.inference_action(model, image_side, seed=seed) for name, model in models.items()}
    encoder = copy.deepcopy(image_encoder).to(device) if image_encoder is not None else None
    if encoder is not None:
        inference[ENCODER] = encoder_action(encoder, image_side, seed=seed)
    inference_times = medians(bench.interleaved(inference, inference_rounds, warmup=warmup, device=device))
    prompt_ms = 1e3 * inference_times[ENCODER]["median"] if encoder is not None else np.nan
    for name, row in rows.items():
        step = train_times[name]["median"]
        row["train_ms_per_step"] = 1e3 * step
        row["train_patches_per_s"] = batch_size / step
        row["latency_ms"] = 1e3 * inference_times[name]["median"]
        row["latency_iqr_ms"] = 1e3 * inference_times[name]["iqr"]
        row["prompt_ms"] = prompt_ms if row["uses_prompt"] else 0.0
        row["latency_with_prompt_ms"] = row["latency_ms"] + row["prompt_ms"]
    table = pd.DataFrame(list(rows.values()))
    table["prompt_encoder_params"] = sum(p.numel() for p in encoder.parameters()) if encoder is not None else np.nan
    table["patch_size"] = patch_size
    table["batch_size"] = batch_size
    table["image_side"] = image_side
    table["device"] = str(device)
    table["torch_threads"] = torch.get_num_threads()
    table["train_rounds"] = train_rounds
    table["inference_rounds"] = inference_rounds
    return table
