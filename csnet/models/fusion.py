"""Where the degradation prompt meets the features: every fusion mechanism the study compares.

All mechanisms share one interface, ``forward(features (B, Ĉ, H, W), prompt (B, P)) -> (B, Ĉ, H, W)``,
and sit at the same four sites of the U-Net (``csnet.models.restormer.SITES``), wrapped in a
``FusionSite`` whose ``probe`` (an ``nn.Identity``) is the one stable place for hooks and captum.

| name                | what enters the features                                            | anchor     |
|---------------------|---------------------------------------------------------------------|------------|
| ``none``            | nothing                                                             | Restormer  |
| ``implicit_prompt`` | learned prompt components weighted by softmax(Linear(GAP(features))) | PromptIR   |
| ``channel_attention``| features · sigmoid(Linear(prompt)) on every channel                | InstructIR |
| ``soft_gate``       | the CSB with the hard Top-K replaced by sigmoid weights              | soft route |
| ``cross_attention`` | features attend to prompt tokens; result added back                  | NDR        |
| ``hard_select``     | CSNet's Channel Selection Block: Top-K channels kept, rest discarded | CSNet      |
| ``random_select``   | the CSB with a fixed random K-subset (the control; not prompt-driven) | —          |

``soft_gate``, ``hard_select`` and ``random_select`` are one module family (``ChannelSelectionBlock``):
the same FASM expansion, FEM contraction and PIFM, differing only in how the κĈ expanded channels are
weighted. Every constant marked *ours* below is a choice of this suite, not a value from the paper.
"""
from __future__ import annotations

import abc
import math
from typing import Union

import torch
import torch.nn.functional as F
from torch import nn

from csnet.models.config import ESTIMATORS, FUSION_NAMES, SELECTION_STARTS, ModelConfig
from csnet.models.restormer import SITE_LEVEL, ChannelLayerNorm

ForcedChannels = Union[torch.Tensor, str]  # indices (K,) or (B, K) into the κĈ channels, "all", "all_scaled"


def expanded_channels(channels: int, kappa: float) -> int:
    """κĈ, the width after FASM's channel expansion (rounded to the nearest integer)."""
    return max(1, int(math.floor(kappa * channels + 0.5)))


def kept_channels(channels: int, kappa: float, omega: float) -> int:
    """K = round(κ·ω·Ĉ), the channels hard selection keeps (halves round up), at least 1."""
    return min(expanded_channels(channels, kappa), max(1, int(math.floor(kappa * omega * channels + 0.5))))


# --- the mechanisms without channel selection ------------------------------------------------------


class NoFusion(nn.Module):
    """``none``: the features pass unchanged (the plain Restormer baseline)."""

    uses_prompt = False

    def forward(self, features: torch.Tensor, prompt: torch.Tensor | None) -> torch.Tensor:
        return features

    @classmethod
    def from_config(cls, channels: int, cfg: ModelConfig, site: str) -> "NoFusion":
        return cls()


class ImplicitPrompt(nn.Module):
    """``implicit_prompt``: PromptIR's prompt generation module (PGM). ``prompt_len`` learned prompt
    components (each Ĉp × s × s) are mixed with weights softmax(Linear(GAP(features))), resized to the
    features, passed through a 3×3 convolution, concatenated with the features and projected back to Ĉ
    by a 1×1 convolution.

    The prompt is *implicit*: the external degradation prompt P_e is ignored, which is PromptIR's point
    and the contrast CSNet draws. Differences from PromptIR (ours): PromptIR places its PGMs in the
    decoder and runs a full transformer block over the concatenation before the 1×1 reduction; here the
    PGM sits at the common fusion sites and the concatenation is reduced by the 1×1 convolution alone,
    so that the comparison is about the fusion, not about an extra transformer block. Ĉp = Ĉ and
    s = ``prompt_size`` (PromptIR used 64/128/320 channels and 64/32/16 pixels at its three levels).
    """

    uses_prompt = False

    def __init__(self, channels: int, prompt_len: int = 5, prompt_size: int = 16, bias: bool = False):
        super().__init__()
        self.components = nn.Parameter(torch.rand(prompt_len, channels, prompt_size, prompt_size))
        self.component_weights = nn.Linear(channels, prompt_len)
        self.prompt_conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.reduce = nn.Conv2d(channels * 2, channels, kernel_size=1, bias=bias)

    def forward(self, features: torch.Tensor, prompt: torch.Tensor | None) -> torch.Tensor:
        weights = self.component_weights(features.mean(dim=(2, 3))).softmax(dim=1)  # (B, N)
        mixed = torch.einsum("bn,nchw->bchw", weights, self.components)  # (B, Ĉ, s, s)
        mixed = F.interpolate(mixed, size=features.shape[-2:], mode="bilinear", align_corners=False)
        mixed = self.prompt_conv(mixed)  # (B, Ĉ, H, W)
        return self.reduce(torch.cat([features, mixed], dim=1))  # (B, Ĉ, H, W)

    @classmethod
    def from_config(cls, channels: int, cfg: ModelConfig, site: str) -> "ImplicitPrompt":
        return cls(channels, cfg.implicit_prompt_len, cfg.implicit_prompt_size, cfg.bias)


class ChannelAttention(nn.Module):
    """``channel_attention``: InstructIR's instruction-conditioned block without its NAFBlock:
    features · sigmoid(Linear(P_e)), one weight per channel, every channel kept."""

    uses_prompt = True

    def __init__(self, channels: int, prompt_dim: int = 512):
        super().__init__()
        self.channel_weights = nn.Linear(prompt_dim, channels)

    def forward(self, features: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        weights = torch.sigmoid(self.channel_weights(prompt))  # (B, Ĉ)
        return features * weights[:, :, None, None]

    @classmethod
    def from_config(cls, channels: int, cfg: ModelConfig, site: str) -> "ChannelAttention":
        return cls(channels, cfg.prompt_dim)


class CrossAttention(nn.Module):
    """``cross_attention``: NDR-style: every pixel's (layer-normed) features query ``tokens`` prompt
    tokens made from P_e by a linear map (P → tokens·Ĉ); multi-head attention over the tokens; the
    result, projected by a 1×1 convolution, is added back to the features. The token count and the
    head count (the backbone level's) are ours."""

    uses_prompt = True

    def __init__(self, channels: int, prompt_dim: int = 512, heads: int = 1, tokens: int = 4, bias: bool = False):
        super().__init__()
        if channels % heads:
            raise ValueError(f"{channels} channels cannot be split into {heads} attention heads")
        self.heads = heads
        self.tokens = tokens
        self.norm = ChannelLayerNorm(channels)
        self.prompt_tokens = nn.Linear(prompt_dim, tokens * channels)
        self.query = nn.Conv2d(channels, channels, kernel_size=1, bias=bias)
        self.key_value = nn.Linear(channels, channels * 2, bias=bias)
        self.project_out = nn.Conv2d(channels, channels, kernel_size=1, bias=bias)

    def forward(self, features: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        b, c, h, w = features.shape
        head_dim = c // self.heads
        tokens = self.prompt_tokens(prompt).view(b, self.tokens, c)  # (B, n, Ĉ)
        query = self.query(self.norm(features)).view(b, self.heads, head_dim, h * w)
        query = query.transpose(-2, -1)  # (B, heads, HW, d)
        key, value = self.key_value(tokens).view(b, self.tokens, 2, self.heads, head_dim).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(query, key, value)  # (B, heads, HW, d)
        attended = attended.transpose(-2, -1).reshape(b, c, h, w)
        return features + self.project_out(attended)

    @classmethod
    def from_config(cls, channels: int, cfg: ModelConfig, site: str) -> "CrossAttention":
        return cls(channels, cfg.prompt_dim, cfg.heads[SITE_LEVEL[site]], cfg.cross_attention_tokens, cfg.bias)


# --- the Channel Selection Block family -------------------------------------------------------------


class PromptImageFusion(nn.Module):
    """FEM's PIFM with its Degradation Guidance Layer. DGL maps P_e (P) to P_de (Ĉ); GAP(F̃_s),
    GMP(F̃_s) and P_de are concatenated (3Ĉ), reduced 3Ĉ → 3Ĉ/γ → Ĉ, and the sigmoid of the result
    scales F̃_s, plus F̃_s: F̃_n = F̃_s · σ(·) + F̃_s. The activation between the two linear maps is not
    drawn in the paper's figure; ReLU (as in squeeze-and-excitation) is ours."""

    def __init__(self, channels: int, prompt_dim: int = 512, gamma: float = 4.0):
        super().__init__()
        hidden = max(1, int(math.floor(3 * channels / gamma + 0.5)))
        self.degradation_guidance = nn.Linear(prompt_dim, channels)  # DGL
        self.squeeze = nn.Linear(3 * channels, hidden)
        self.excite = nn.Linear(hidden, channels)

    def forward(self, features: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat(
            [features.mean(dim=(2, 3)), features.amax(dim=(2, 3)), self.degradation_guidance(prompt)], dim=1
        )  # (B, 3Ĉ)
        weights = torch.sigmoid(self.excite(F.relu(self.squeeze(pooled))))  # (B, Ĉ)
        return features * weights[:, :, None, None] + features


class ChannelSelectionBlock(nn.Module, abc.ABC):
    """CSNet's Channel Selection Block (CSB), shared by ``hard_select``, ``soft_gate`` and
    ``random_select``; subclasses only say how the κĈ expanded channels are weighted.

    - FASM: channel expansion (a 1×1 convolution Ĉ → κĈ) gives F_nc; the subclass weights its
      channels (hard Top-K keep-mask, sigmoid gate, or a fixed random keep-mask) giving F_s.
    - FEM: channel contraction (a 1×1 convolution κĈ → Ĉ) gives F̃_s, then the PIFM.

    The paper's Top-K "discards" the unselected channels and contracts κωĈ → Ĉ. Here the discarded
    channels are zeroed by a mask inside κĈ and contracted by a κĈ → Ĉ convolution: the zero channels
    meet their contraction weights and contribute exactly nothing, so the two are the same function up
    to a permutation of the contraction weights when the selection is fixed for a degradation type; the
    mask form keeps channel identities, which reading and forcing channels (Table I) need. The paper
    leaves κ, ω and γ open (``ModelConfig`` defaults are ours).

    ``start`` (``ModelConfig.selection_start``): ``"projection"`` is the block as the figure draws it,
    F̃_n = PIFM(CC(F_s)), which at initialisation is a random projection of its input; ``"identity"``
    puts the same block on a residual path, F + PIFM(CC(F_s)), with CC's weights (and bias) zero, so the
    block is the identity on its input at initialisation, like ``none``'s skip paths (ours: the paper
    does not say how the block starts).

    ``selection_probe`` (an ``nn.Identity``) sees the weighted expanded channels F_s (B, κĈ, H, W).
    ``forced_mask`` is a non-persistent buffer, None unless ``CSNet.force_channels`` sets it.
    """

    uses_prompt = True

    def __init__(self, channels: int, prompt_dim: int = 512, kappa: float = 2.0, omega: float = 0.5,
                 gamma: float = 4.0, bias: bool = False, start: str = "projection"):
        super().__init__()
        if start not in SELECTION_STARTS:
            raise ValueError(f"selection start {start!r} is not one of {SELECTION_STARTS}")
        self.channels = channels
        self.start = start
        self.expanded = expanded_channels(channels, kappa)  # κĈ
        self.keep = kept_channels(channels, kappa, omega)  # K
        self.channel_expansion = nn.Conv2d(channels, self.expanded, kernel_size=1, bias=bias)  # FASM's CE
        self.selection_probe = nn.Identity()
        self.channel_contraction = nn.Conv2d(self.expanded, channels, kernel_size=1, bias=bias)  # FEM's CC
        if start == "identity":
            nn.init.zeros_(self.channel_contraction.weight)
            if self.channel_contraction.bias is not None:
                nn.init.zeros_(self.channel_contraction.bias)
        self.pifm = PromptImageFusion(channels, prompt_dim, gamma)
        self.register_buffer("forced_mask", None, persistent=False)

    @abc.abstractmethod
    def channel_weights(self, prompt: torch.Tensor) -> torch.Tensor:
        """(B, κĈ) weights of the expanded channels, as the mechanism chooses them (forcing aside)."""

    def forced_scale(self, prompt: torch.Tensor) -> torch.Tensor | None:
        """What multiplies a forced keep-mask: None (1) for the selections, the gate for ``soft_gate``."""
        return None

    @abc.abstractmethod
    def selection_indices(self, prompt: torch.Tensor) -> torch.Tensor:
        """(B, K) sorted indices of the channels the mechanism keeps for each prompt."""

    def forward(self, features: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        weights = self.channel_weights(prompt) if self.forced_mask is None else self._forced_weights(prompt)
        if self._fold():
            contracted = self._folded_contraction(features, weights)  # F̃_s (B, Ĉ, H, W)
        else:
            expanded = self.channel_expansion(features)  # F_nc (B, κĈ, H, W)
            selected = self.selection_probe(expanded * weights[:, :, None, None])  # F_s (B, κĈ, H, W)
            contracted = self.channel_contraction(selected)  # F̃_s (B, Ĉ, H, W)
        fused = self.pifm(contracted, prompt)  # F̃_n (B, Ĉ, H, W)
        return features + fused if self.start == "identity" else fused

    def _fold(self) -> bool:
        """Fold expansion, weighting and contraction into one map only while autograd records (training)
        and no hook watches the expansion, F_s (``selection_probe``) or the contraction: evaluation and
        the studies (no_grad, hooks, captum) compute every step as written, bit for bit."""
        watched = (self.channel_expansion, self.selection_probe, self.channel_contraction)
        hooked = (any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks for m in watched)
                  or nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks)
        return torch.is_grad_enabled() and not hooked

    def _folded_contraction(self, features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """contraction(expansion(x) · w) computed as one per-sample Ĉ×Ĉ map (W_c · diag(w) · W_e) x plus
        the biases' share: the same function (and gradients) without the (B, κĈ, H, W) tensor F_s, at
        1/κ of the two 1×1 convolutions' cost."""
        expansion = self.channel_expansion.weight[:, :, 0, 0]  # (κĈ, Ĉ)
        contraction = self.channel_contraction.weight[:, :, 0, 0]  # (Ĉ, κĈ)
        weights = weights.to(expansion.dtype)
        mixing = torch.einsum("ok,bk,ki->boi", contraction, weights, expansion)  # (B, Ĉ, Ĉ)
        contracted = torch.einsum("boi,bihw->bohw", mixing.to(features.dtype), features)  # (B, Ĉ, H, W)
        if self.channel_expansion.bias is not None:
            shift = torch.einsum("ok,bk,k->bo", contraction, weights, self.channel_expansion.bias)  # (B, Ĉ)
            contracted = contracted + shift[:, :, None, None].to(features.dtype)
        if self.channel_contraction.bias is not None:
            contracted = contracted + self.channel_contraction.bias[None, :, None, None].to(features.dtype)
        return contracted

    def _forced_weights(self, prompt: torch.Tensor) -> torch.Tensor:
        mask = self.forced_mask
        batch = prompt.shape[0]
        if mask.dim() == 2 and mask.shape[0] != batch:
            raise ValueError(f"forced channels were given for a batch of {mask.shape[0]}, the input has {batch}")
        mask = mask.expand(batch, self.expanded).to(prompt.dtype)  # (B, κĈ)
        scale = self.forced_scale(prompt)
        return mask if scale is None else mask * scale

    def mask_for(self, forced: ForcedChannels) -> torch.Tensor:
        """The keep-mask ((κĈ,) or (B, κĈ)) that ``forced`` names; ValueError for bad indices."""
        device = self.channel_contraction.weight.device
        if isinstance(forced, str):
            if forced == "all":
                return torch.ones(self.expanded, device=device)
            if forced == "all_scaled":
                return torch.full((self.expanded,), self.keep / self.expanded, device=device)
            raise ValueError(f"forced channels {forced!r}: give indices, 'all' or 'all_scaled'")
        indices = torch.as_tensor(forced, device=device)
        if indices.dtype.is_floating_point or indices.dtype == torch.bool or indices.dim() not in (1, 2):
            raise ValueError(
                f"forced channels must be integer indices shaped (K,) or (B, K); got {indices.dtype} "
                f"{tuple(indices.shape)}"
            )
        if indices.numel() and (indices.min() < 0 or indices.max() >= self.expanded):
            raise ValueError(
                f"forced channel indices must lie in [0, {self.expanded}) (the κĈ expanded channels); "
                f"got [{int(indices.min())}, {int(indices.max())}]"
            )
        rows = indices if indices.dim() == 2 else indices[None]
        if rows.shape[1] and bool((rows.sort(dim=1).values.diff(dim=1) == 0).any()):
            raise ValueError("forced channel indices repeat a channel")
        mask = torch.zeros(rows.shape[0], self.expanded, device=device).scatter(1, rows.long(), 1.0)
        return mask if indices.dim() == 2 else mask[0]


def _straight_through(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """``hard`` in the forward pass (exactly: soft − soft is 0), the gradient of ``soft`` backwards."""
    return hard + (soft - soft.detach())


class HardSelect(ChannelSelectionBlock):
    """``hard_select``: CSNet's CSB. The Channel Selection Layer (CSL, Linear P → κĈ) scores the
    expanded channels from P_e; the Top-K switches keep the K best-scoring channels per sample
    (exactly K) and zero the rest.

    How gradients pass the hard Top-K is not stated in the paper. ``estimator`` (ours):
    - ``straight_through``: the forward pass uses the hard keep-mask; the backward pass uses the
      gradient of sigmoid(scores / τ), so every channel's score, kept or not, learns.
    - ``gumbel``: in training mode, Gumbel noise is added to the scores before the Top-K (stochastic
      exploration of channel subsets), with the same straight-through backward on the perturbed
      scores; in eval mode it equals ``straight_through``. The noise is on the scores' own scale:
      ``gumbel_scale`` × the per-example standard deviation of the scores (no gradient) × Gumbel(0, 1)
      (``noise_scale``), so how much of the Top-K it changes does not depend on the size of the CSL's
      weights (unit-scale noise made the masks at initialisation almost random). The noise comes from
      the block's own generator (``seed_noise``; the n-th draw after seeding from ``(noise_seed, n)``),
      never from torch's global one, so drawing it cannot shift the dropout or data stream other
      mechanisms see.
    """

    def __init__(self, channels: int, prompt_dim: int = 512, kappa: float = 2.0, omega: float = 0.5,
                 gamma: float = 4.0, bias: bool = False, estimator: str = "straight_through",
                 temperature: float = 1.0, noise_seed: int = 0, start: str = "projection",
                 gumbel_scale: float = 0.5):
        super().__init__(channels, prompt_dim, kappa, omega, gamma, bias, start)
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator {estimator!r} is not one of {ESTIMATORS}")
        if not gumbel_scale > 0:
            raise ValueError(f"gumbel_scale must be > 0, got {gumbel_scale}")
        self.estimator = estimator
        self.temperature = temperature
        self.gumbel_scale = gumbel_scale
        self.channel_selection_layer = nn.Linear(prompt_dim, self.expanded)  # CSL
        self.seed_noise(noise_seed)

    def seed_noise(self, seed: int) -> None:
        """Restart the Gumbel noise stream from ``seed`` (plain Python state: copies and pickles keep it)."""
        self.noise_seed, self._noise_draws = int(seed), 0

    def noise_scale(self, scores: torch.Tensor) -> torch.Tensor:
        """(B, 1) scale of each example's Gumbel noise: ``gumbel_scale`` × the std of its scores."""
        return self.gumbel_scale * scores.detach().std(dim=1, keepdim=True)

    def _gumbel(self, scores: torch.Tensor) -> torch.Tensor:
        """Standard Gumbel(0, 1) noise shaped like ``scores``, from the block's own generator."""
        generator = torch.Generator(device=scores.device)
        generator.manual_seed((self.noise_seed + 0x9E3779B97F4A7C15 * (self._noise_draws + 1)) % (1 << 63))
        self._noise_draws += 1
        uniform = torch.rand(scores.shape, generator=generator, device=scores.device, dtype=torch.float32)
        return -torch.log(-torch.log(uniform.clamp(1e-9, 1.0 - 1e-9))).to(scores.dtype)

    def selection_scores(self, prompt: torch.Tensor) -> torch.Tensor:
        """(B, κĈ) CSL scores P_ce of the expanded channels."""
        return self.channel_selection_layer(prompt)

    def channel_weights(self, prompt: torch.Tensor) -> torch.Tensor:
        scores = self.selection_scores(prompt)  # (B, κĈ)
        if self.estimator == "gumbel" and self.training:
            scores = scores + self.noise_scale(scores) * self._gumbel(scores)
        top = scores.topk(self.keep, dim=1).indices  # (B, K)
        hard = torch.zeros_like(scores).scatter(1, top, 1.0)  # (B, κĈ) keep-mask
        return _straight_through(hard, torch.sigmoid(scores / self.temperature))

    def selection_indices(self, prompt: torch.Tensor) -> torch.Tensor:
        return self.selection_scores(prompt).topk(self.keep, dim=1).indices.sort(dim=1).values

    @classmethod
    def from_config(cls, channels: int, cfg: ModelConfig, site: str) -> "HardSelect":
        return cls(channels, cfg.prompt_dim, cfg.kappa, cfg.omega, cfg.gamma, cfg.bias, cfg.estimator,
                   cfg.select_temperature, noise_seed=cfg.seed * len(SITE_LEVEL) + SITE_LEVEL[site],
                   start=cfg.selection_start, gumbel_scale=cfg.gumbel_scale)


class SoftGate(ChannelSelectionBlock):
    """``soft_gate``: the CSB with the hard Top-K replaced by a soft route: every expanded channel is
    kept, weighted by sigmoid(CSL(P_e)) (soft routing, the alternative CSNet argues against). Its
    "selected channels" are read as the K with the largest gate; forcing a channel set keeps the gate
    on the forced channels and zeroes the others."""

    def __init__(self, channels: int, prompt_dim: int = 512, kappa: float = 2.0, omega: float = 0.5,
                 gamma: float = 4.0, bias: bool = False, start: str = "projection"):
        super().__init__(channels, prompt_dim, kappa, omega, gamma, bias, start)
        self.channel_selection_layer = nn.Linear(prompt_dim, self.expanded)

    def channel_weights(self, prompt: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.channel_selection_layer(prompt))  # (B, κĈ)

    def forced_scale(self, prompt: torch.Tensor) -> torch.Tensor:
        return self.channel_weights(prompt)

    def selection_indices(self, prompt: torch.Tensor) -> torch.Tensor:
        return self.channel_selection_layer(prompt).topk(self.keep, dim=1).indices.sort(dim=1).values

    @classmethod
    def from_config(cls, channels: int, cfg: ModelConfig, site: str) -> "SoftGate":
        return cls(channels, cfg.prompt_dim, cfg.kappa, cfg.omega, cfg.gamma, cfg.bias, cfg.selection_start)


class RandomSelect(ChannelSelectionBlock):
    """``random_select``: the control. A fixed random K-subset of the expanded channels, drawn once
    from a seeded generator and stored as a buffer, is kept for every input; the prompt still enters
    through the PIFM's DGL, exactly as in ``hard_select``, so only the choice of channels differs."""

    def __init__(self, channels: int, prompt_dim: int = 512, kappa: float = 2.0, omega: float = 0.5,
                 gamma: float = 4.0, bias: bool = False, seed: int = 0, start: str = "projection"):
        super().__init__(channels, prompt_dim, kappa, omega, gamma, bias, start)
        generator = torch.Generator().manual_seed(seed)
        chosen = torch.randperm(self.expanded, generator=generator, device="cpu")[: self.keep]
        device = self.channel_contraction.weight.device  # not CPU under a default-device context
        self.register_buffer("kept_indices", chosen.sort().values.to(device))  # (K,)

    def channel_weights(self, prompt: torch.Tensor) -> torch.Tensor:
        mask = torch.zeros(self.expanded, dtype=prompt.dtype, device=prompt.device)
        mask = mask.index_fill(0, self.kept_indices, 1.0)  # (κĈ,)
        return mask.expand(prompt.shape[0], self.expanded)  # (B, κĈ)

    def selection_indices(self, prompt: torch.Tensor) -> torch.Tensor:
        return self.kept_indices.expand(prompt.shape[0], self.keep)

    @classmethod
    def from_config(cls, channels: int, cfg: ModelConfig, site: str) -> "RandomSelect":
        # one subset per site, all from the configured seed
        return cls(channels, cfg.prompt_dim, cfg.kappa, cfg.omega, cfg.gamma, cfg.bias,
                   seed=cfg.random_select_seed * len(SITE_LEVEL) + SITE_LEVEL[site], start=cfg.selection_start)


# --- the site ----------------------------------------------------------------------------------------


class FusionSite(nn.Module):
    """One fusion site of the U-Net: ``fusion`` (the mechanism) followed by ``probe`` (an
    ``nn.Identity`` on the site's output, called once per forward pass: hooks and captum attach here)."""

    def __init__(self, fusion: nn.Module):
        super().__init__()
        self.fusion = fusion
        self.probe = nn.Identity()

    def forward(self, features: torch.Tensor, prompt: torch.Tensor | None) -> torch.Tensor:
        return self.probe(self.fusion(features, prompt))


FUSIONS: dict[str, type[nn.Module]] = {
    "none": NoFusion,
    "implicit_prompt": ImplicitPrompt,
    "channel_attention": ChannelAttention,
    "soft_gate": SoftGate,
    "cross_attention": CrossAttention,
    "hard_select": HardSelect,
    "random_select": RandomSelect,
}
SELECTING = tuple(name for name, cls in FUSIONS.items() if issubclass(cls, ChannelSelectionBlock))
if tuple(FUSIONS) != FUSION_NAMES:  # one list of names for the config and the classes
    raise ImportError(f"FUSIONS {tuple(FUSIONS)} and csnet.models.config.FUSION_NAMES {FUSION_NAMES} differ")
