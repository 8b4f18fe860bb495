"""The Restormer backbone (Zamir et al., CVPR 2022) that CSNet builds on, in the order data flows:
norm → attention (MDTA) → feed-forward (GDFN) → transformer block → down/up-sampling → the U-Net.

The U-Net keeps the official Restormer module names (``patch_embed``, ``encoder_level1`` … ``latent`` …
``refinement``, ``output``), so an official Restormer state dict loads into a model whose fusion sites
are all ``none``. Where CSNet differs from Restormer, it is only at the four *fusion sites*: the three
skip connections (encoder features of levels 1–3 before the decoder concatenates them) and the
bottleneck (the latent features). The U-Net takes those four sites as modules with the interface
``(features, prompt) -> features``; ``csnet.models.fusion`` defines what can sit there and
``csnet.models.network`` assembles the model from a config.
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

SITES = ("skip_fusion_level1", "skip_fusion_level2", "skip_fusion_level3", "bottleneck_fusion")
SITE_LEVEL = {site: level for level, site in enumerate(SITES)}  # site -> backbone level (0-based)
LAYER_NORMS = ("with_bias", "bias_free")
MULTIPLE = 8  # three 2× down-samplings: inputs are padded to a multiple of 8 and cropped back


# --- norm ----------------------------------------------------------------------------------------


class ChannelLayerNorm(nn.Module):
    """Layer normalisation over the channels of every pixel of a (B, C, H, W) map (Restormer's
    ``LayerNorm``). ``bias_free`` divides by the standard deviation without centring, as Restormer's
    ``BiasFree_LayerNorm``; ``with_bias`` is the usual affine layer norm (Restormer's default)."""

    def __init__(self, channels: int, kind: str = "with_bias", eps: float = 1e-5):
        super().__init__()
        if kind not in LAYER_NORMS:
            raise ValueError(f"layer norm kind {kind!r} is not one of {LAYER_NORMS}")
        self.kind = kind
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels)) if kind == "with_bias" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias is not None:
            # One fused kernel forward and backward over the channels of an NHWC view: var_mean over
            # dim 1 of an NCHW map is a strided reduction, and this form cuts a quick-config training
            # step's CPU time by 11–20% (csnet bench --tuning).
            normed = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
            return normed.permute(0, 3, 1, 2)  # (B, C, H, W), channels-last strides
        variance = torch.var(x, dim=1, keepdim=True, correction=0)  # (B, 1, H, W)
        return x * torch.rsqrt(variance + self.eps) * self.weight[:, None, None]


# --- attention -----------------------------------------------------------------------------------


class MultiDconvHeadTransposedAttention(nn.Module):
    """MDTA: queries, keys and values from a 1×1 convolution followed by a 3×3 depthwise convolution;
    attention is computed across channels (a C/h × C/h map per head, linear in the pixel count) with
    L2-normalised queries and keys and a learned temperature per head."""

    def __init__(self, channels: int, heads: int, bias: bool):
        super().__init__()
        if channels % heads:
            raise ValueError(f"{channels} channels cannot be split into {heads} attention heads")
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(channels, channels * 3, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(
            channels * 3, channels * 3, kernel_size=3, padding=1, groups=channels * 3, bias=bias
        )
        self.project_out = nn.Conv2d(channels, channels, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv_dwconv(self.qkv(x))  # (B, 3C, H, W)
        q, k, v = qkv.view(b, 3, self.heads, c // self.heads, h * w).unbind(1)  # each (B, h, C/h, HW)
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attention = (q @ k.transpose(-2, -1)) * self.temperature  # (B, h, C/h, C/h)
        out = attention.softmax(dim=-1) @ v  # (B, h, C/h, HW)
        return self.project_out(out.reshape(b, c, h, w))


# --- feed-forward --------------------------------------------------------------------------------


class GatedDconvFeedForward(nn.Module):
    """GDFN: a 1×1 expansion to 2·γC channels, a 3×3 depthwise convolution, then a GELU gate
    (one half gates the other) and a 1×1 projection back to C (γ = ``ffn_expansion_factor``)."""

    def __init__(self, channels: int, expansion_factor: float, bias: bool):
        super().__init__()
        hidden = int(channels * expansion_factor)
        self.project_in = nn.Conv2d(channels, hidden * 2, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(
            hidden * 2, hidden * 2, kernel_size=3, padding=1, groups=hidden * 2, bias=bias
        )
        self.project_out = nn.Conv2d(hidden, channels, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.dwconv(self.project_in(x)).chunk(2, dim=1)  # each (B, γC, H, W)
        return self.project_out(F.gelu(gate) * value)


# --- block ---------------------------------------------------------------------------------------


class TransformerBlock(nn.Module):
    """Pre-norm residual block: x + MDTA(LN(x)), then x + GDFN(LN(x))."""

    def __init__(self, channels: int, heads: int, expansion_factor: float, bias: bool, layer_norm: str):
        super().__init__()
        self.norm1 = ChannelLayerNorm(channels, layer_norm)
        self.attn = MultiDconvHeadTransposedAttention(channels, heads, bias)
        self.norm2 = ChannelLayerNorm(channels, layer_norm)
        self.ffn = GatedDconvFeedForward(channels, expansion_factor, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


def transformer_stage(
    count: int, channels: int, heads: int, expansion_factor: float, bias: bool, layer_norm: str
) -> nn.Sequential:
    """``count`` transformer blocks of the same width, one encoder/decoder level."""
    return nn.Sequential(
        *(TransformerBlock(channels, heads, expansion_factor, bias, layer_norm) for _ in range(count))
    )


# --- down / up-sampling --------------------------------------------------------------------------


class OverlapPatchEmbed(nn.Module):
    """The shallow feature extractor: a 3×3 convolution from the image to C channels (F0)."""

    def __init__(self, in_channels: int, channels: int, bias: bool):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, channels, kernel_size=3, padding=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class Downsample(nn.Module):
    """Halve the resolution, double the channels: 3×3 conv to C/2, then pixel-unshuffle (×4 channels)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels // 2, kernel_size=3, padding=1, bias=False), nn.PixelUnshuffle(2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Upsample(nn.Module):
    """Double the resolution, halve the channels: 3×3 conv to 2C, then pixel-shuffle (÷4 channels)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels * 2, kernel_size=3, padding=1, bias=False), nn.PixelShuffle(2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def pad_to_multiple(x: torch.Tensor, multiple: int = MULTIPLE) -> torch.Tensor:
    """Pad the bottom and right edges of (B, C, H, W) up to a multiple of ``multiple`` by reflection
    (replication where the image is too small to reflect)."""
    h, w = x.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    if not pad_h and not pad_w:
        return x
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


# --- network -------------------------------------------------------------------------------------


class PassThroughSite(nn.Module):
    """A fusion site that returns the features unchanged (plain Restormer)."""

    def forward(self, features: torch.Tensor, prompt: torch.Tensor | None) -> torch.Tensor:
        return features


class RestormerUNet(nn.Module):
    """Restormer's 4-level U-Net (C, 2C, 4C, 8C) with refinement blocks and a global residual, and a
    slot at each fusion site (``SITES``) for a module ``(features, prompt) -> features``.

    Each site keeps the channel count and resolution of the features it receives:
    ``skip_fusion_level1`` (C, H, W), ``skip_fusion_level2`` (2C, H/2, W/2),
    ``skip_fusion_level3`` (4C, H/4, W/4), ``bottleneck_fusion`` (8C, H/8, W/8).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        dim: int = 48,
        num_blocks: tuple[int, int, int, int] = (4, 6, 6, 8),
        heads: tuple[int, int, int, int] = (1, 2, 4, 8),
        ffn_expansion_factor: float = 2.66,
        num_refinement_blocks: int = 4,
        bias: bool = False,
        layer_norm: str = "with_bias",
        sites: Mapping[str, nn.Module] | None = None,
    ):
        super().__init__()
        sites = dict(sites or {})
        unknown = sorted(set(sites) - set(SITES))
        if unknown:
            raise ValueError(f"unknown fusion sites {unknown}; the sites are {SITES}")

        def stage(level: int, count: int, channels: int) -> nn.Sequential:
            return transformer_stage(count, channels, heads[level], ffn_expansion_factor, bias, layer_norm)

        self.patch_embed = OverlapPatchEmbed(in_channels, dim, bias)
        self.encoder_level1 = stage(0, num_blocks[0], dim)
        self.skip_fusion_level1 = sites.get("skip_fusion_level1", PassThroughSite())
        self.down1_2 = Downsample(dim)
        self.encoder_level2 = stage(1, num_blocks[1], dim * 2)
        self.skip_fusion_level2 = sites.get("skip_fusion_level2", PassThroughSite())
        self.down2_3 = Downsample(dim * 2)
        self.encoder_level3 = stage(2, num_blocks[2], dim * 4)
        self.skip_fusion_level3 = sites.get("skip_fusion_level3", PassThroughSite())
        self.down3_4 = Downsample(dim * 4)
        self.latent = stage(3, num_blocks[3], dim * 8)
        self.bottleneck_fusion = sites.get("bottleneck_fusion", PassThroughSite())

        self.up4_3 = Upsample(dim * 8)
        self.reduce_chan_level3 = nn.Conv2d(dim * 8, dim * 4, kernel_size=1, bias=bias)
        self.decoder_level3 = stage(2, num_blocks[2], dim * 4)
        self.up3_2 = Upsample(dim * 4)
        self.reduce_chan_level2 = nn.Conv2d(dim * 4, dim * 2, kernel_size=1, bias=bias)
        self.decoder_level2 = stage(1, num_blocks[1], dim * 2)
        self.up2_1 = Upsample(dim * 2)  # level 1 decodes at 2C: no channel reduction (as Restormer)
        self.decoder_level1 = stage(0, num_blocks[0], dim * 2)
        self.refinement = stage(0, num_refinement_blocks, dim * 2)
        self.output = nn.Conv2d(dim * 2, out_channels, kernel_size=3, padding=1, bias=bias)

    def forward(self, image: torch.Tensor, prompt: torch.Tensor | None = None) -> torch.Tensor:
        height, width = image.shape[-2:]
        padded = pad_to_multiple(image)  # (B, 3, H8, W8)

        encoded1 = self.encoder_level1(self.patch_embed(padded))  # (B, C, H8, W8)
        encoded2 = self.encoder_level2(self.down1_2(encoded1))  # (B, 2C, H8/2, W8/2)
        encoded3 = self.encoder_level3(self.down2_3(encoded2))  # (B, 4C, H8/4, W8/4)
        latent = self.latent(self.down3_4(encoded3))  # (B, 8C, H8/8, W8/8)
        latent = self.bottleneck_fusion(latent, prompt)

        decoded3 = torch.cat([self.up4_3(latent), self.skip_fusion_level3(encoded3, prompt)], dim=1)
        decoded3 = self.decoder_level3(self.reduce_chan_level3(decoded3))  # (B, 4C, H8/4, W8/4)
        decoded2 = torch.cat([self.up3_2(decoded3), self.skip_fusion_level2(encoded2, prompt)], dim=1)
        decoded2 = self.decoder_level2(self.reduce_chan_level2(decoded2))  # (B, 2C, H8/2, W8/2)
        decoded1 = torch.cat([self.up2_1(decoded2), self.skip_fusion_level1(encoded1, prompt)], dim=1)
        decoded1 = self.refinement(self.decoder_level1(decoded1))  # (B, 2C, H8, W8)

        restored = self.output(decoded1) + padded  # global residual
        return restored[..., :height, :width]
