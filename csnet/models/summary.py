"""How big each mechanism makes the network: parameters, forward FLOPs, channels kept per site.

Parameters and FLOPs are counted on the ``meta`` device: no weights are initialised and nothing is
computed, so the paper-scale network is summarised in seconds on a laptop.

FLOPs are **forward only**, from ``torch.utils.flop_counter`` (2 FLOPs per multiply-add; it counts
convolutions and matrix products, attention included, and ignores normalisation, activations and other
element-wise work). Papers in this field often report multiply-adds as "FLOPs": halve ours to compare.
The flop counter's backward formula for convolutions ignores ``groups`` and overcounts every depthwise
convolution's weight gradient by its channel count, which is why no backward count is given here.

At the paper scale our Restormer (``none``) has 26.13 M parameters, as the paper's retrained Restormer.
CSNet's published 30.06 M is not pinned down by the paper: it depends on κ and γ (ω changes no
parameter). With γ = 4, κ ≈ 3.91 reaches 30.06 M (κ = 4: 30.13 M); our default κ = 2 gives 28.61 M.
"""
from __future__ import annotations

from typing import Iterable

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from csnet.models.config import site_channels
from csnet.models.fusion import FUSIONS, SELECTING, expanded_channels, kept_channels
from csnet.models.network import CSNet, ModelConfig
from csnet.models.restormer import SITES

PUBLISHED_PARAMS_M = {"none": 26.13, "hard_select": 30.06}  # the paper: retrained Restormer, CSNet
PUBLISHED_LABEL = "paper (published)"


def parameter_count(model: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


def _meta_model(cfg: ModelConfig) -> CSNet:
    with torch.device("meta"):
        return CSNet(cfg).eval()


def forward_flops(cfg: ModelConfig, size: int | tuple[int, int] = 128, batch: int = 1) -> int:
    """Forward FLOPs of the network on a (batch, 3, H, W) input (counted on the meta device)."""
    height, width = (size, size) if isinstance(size, int) else size
    model = _meta_model(cfg)
    image = torch.empty(batch, cfg.in_channels, height, width, device="meta")
    prompt = torch.empty(batch, cfg.prompt_dim, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(image, prompt)
    return int(counter.get_total_flops())


def channels_kept(cfg: ModelConfig) -> dict[str, tuple[int, int]]:
    """Site → (channels kept, κĈ) at the sites where ``cfg.fusion`` works on expanded channels: K for
    ``hard_select`` and ``random_select``, all κĈ (gated) for ``soft_gate``; empty for the others."""
    if cfg.fusion not in SELECTING:
        return {}
    kept = {}
    for site in SITES:
        if site in cfg.fusion_sites:
            channels = site_channels(cfg, site)
            expanded = expanded_channels(channels, cfg.kappa)
            kept[site] = (expanded if cfg.fusion == "soft_gate" else kept_channels(channels, cfg.kappa, cfg.omega), expanded)
    return kept


def is_paper_backbone(cfg: ModelConfig) -> bool:
    """Whether the backbone fields equal the paper's (C = 48, blocks 4/6/6/8, ...)."""
    paper = ModelConfig.paper()
    fields = ("in_channels", "out_channels", "dim", "num_blocks", "heads", "ffn_expansion_factor",
              "num_refinement_blocks", "bias", "layer_norm", "prompt_dim")
    return all(getattr(cfg, name) == getattr(paper, name) for name in fields)


def summarise(cfg: ModelConfig, size: int = 128, fusions: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per mechanism: parameters (M), forward GFLOPs at size², channels kept per site (K/κĈ),
    and for the paper backbone the paper's published parameter counts beside ours."""
    rows = []
    for fusion in fusions or FUSIONS:
        variant = ModelConfig.from_dict({**cfg.to_dict(), "fusion": fusion})
        kept = channels_kept(variant)
        row = {
            "fusion": fusion,
            "params (M)": round(parameter_count(_meta_model(variant)) / 1e6, 2),
            f"GFLOPs fwd @{size}²": round(forward_flops(variant, size) / 1e9, 2),
            "kept per site (K/κĈ)": (" ".join(f"{k}/{n}" for k, n in kept.values()) if kept else "all")
            + (" (gated)" if fusion == "soft_gate" else ""),
        }
        if is_paper_backbone(cfg):
            published = PUBLISHED_PARAMS_M.get(fusion)
            row[f"{PUBLISHED_LABEL} params (M)"] = "" if published is None else f"{published:.2f}"
        rows.append(row)
    return pd.DataFrame(rows)
