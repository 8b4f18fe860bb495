"""What defines a network: ``ModelConfig``, and the names and widths the model modules share.

This module sits below the modules that build the network (``restormer`` ← ``config`` ← ``fusion`` ←
``network``), so the fusion mechanisms read their constants from a config without importing the network
that assembles them. ``fusion.FUSIONS`` is checked against ``FUSION_NAMES`` where that table is made.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from csnet.models.restormer import LAYER_NORMS, SITE_LEVEL, SITES

FUSION_NAMES = ("none", "implicit_prompt", "channel_attention", "soft_gate", "cross_attention", "hard_select",
                "random_select")
"""The mechanisms the study compares, in its order (``csnet.models.fusion.FUSIONS`` has one class each)."""
ESTIMATORS = ("straight_through", "gumbel")
"""How gradients pass ``hard_select``'s Top-K (see ``csnet.models.fusion.HardSelect``)."""
SELECTION_STARTS = ("projection", "identity")
"""How the channel selection block starts (``ModelConfig.selection_start``)."""


def site_channels(cfg: "ModelConfig", site: str) -> int:
    """Ĉ, the channel count of the features at a site: C, 2C, 4C, 8C."""
    return cfg.dim * 2 ** SITE_LEVEL[site]


@dataclass
class ModelConfig:
    """Everything that defines the network. Defaults are the paper's backbone (PromptIR's scale) with
    CSNet's hard selection; fusion constants marked *ours* are this suite's choices, the paper gives
    none of them."""

    # --- backbone: Restormer (paper values, as PromptIR) ---
    in_channels: int = 3  # image channels in
    out_channels: int = 3  # image channels out
    dim: int = 48  # C: channels of level 1; levels are C, 2C, 4C, 8C
    num_blocks: tuple[int, int, int, int] = (4, 6, 6, 8)  # transformer blocks per level
    heads: tuple[int, int, int, int] = (1, 2, 4, 8)  # MDTA heads per level
    ffn_expansion_factor: float = 2.66  # GDFN hidden width / channels
    num_refinement_blocks: int = 4  # transformer blocks after decoder level 1 (at 2C)
    bias: bool = False  # biases in the backbone's and the fusions' convolutions (Restormer: False)
    layer_norm: str = "with_bias"  # "with_bias" or "bias_free" (Restormer's default: with_bias)
    # --- prompt ---
    prompt_dim: int = 512  # width of the degradation prompt P_e (CLIP's text width)
    # --- fusion ---
    fusion: str = "hard_select"  # one of FUSION_NAMES (csnet.models.fusion.FUSIONS)
    fusion_sites: tuple[str, ...] = SITES  # sites that get the mechanism; the others pass through
    kappa: float = 2.0  # κ: FASM expands Ĉ → κĈ channels (ours; paper: unknown)
    omega: float = 0.5  # ω: K = round(κ·ω·Ĉ) expanded channels are kept (ours; paper: unknown)
    gamma: float = 4.0  # γ: PIFM reduces 3Ĉ → 3Ĉ/γ (ours; paper: unknown)
    estimator: str = "straight_through"  # gradient through hard Top-K: "straight_through" | "gumbel" (ours)
    select_temperature: float = 1.0  # τ of the sigmoid(scores/τ) whose gradient the backward uses (ours)
    # gumbel_scale: the temperature of the Gumbel estimator's noise, relative to the scores (ours):
    # noise = gumbel_scale · (per-example std of the κĈ selection scores, no gradient) · Gumbel(0, 1).
    # Unit-scale noise (std ≈ 1.28) drowns scores whose spread at initialisation is ≈ 0.035, making
    # the training masks close to random; on the scores' own scale the exploration is the same at any
    # weight scale. At 0.5 the noisy Top-K keeps ≈ 83% of the noiseless Top-K at initialisation
    # (tests/test_fusion.py checks ≥ 70%); the paper has no Gumbel estimator.
    gumbel_scale: float = 0.5
    implicit_prompt_len: int = 5  # implicit_prompt: prompt components (PromptIR: 5)
    implicit_prompt_size: int = 16  # implicit_prompt: components' side in pixels (ours)
    cross_attention_tokens: int = 4  # cross_attention: tokens made from the prompt (ours)
    random_select_seed: int = 0  # random_select: seed of the fixed random channel subsets
    # selection_start: how the channel selection block (hard_select, soft_gate, random_select) starts.
    # "projection": the block as the paper's figure draws it, F̃_n = PIFM(CC(mask · CE(F))); at
    # initialisation its output is a random projection of its input (measured ≈ 0.35× the input's std,
    # cosine ≈ 0), where the other mechanisms' skip paths start as the identity. "identity": the same
    # block on a residual path with a zero-initialised output, F + PIFM(CC(mask · CE(F))) with CC's
    # weights (and bias) zero, so it is the identity on its input at initialisation (ours; the paper
    # does not say how the block is initialised). Default "identity", chosen on validation by the recipe
    # sweep (issue 12, item 5; results/bench/recipe_cpu_summary.csv): at the cpu profile (lr 2e-3, wsd,
    # 32²×18, 300 steps, seeds 0 and 1) the mean validation PSNR of hard_select, soft_gate and
    # random_select is 23.79 dB with "identity" against 23.41 dB with "projection" (hard_select 23.81 vs
    # 23.50, soft_gate 24.01 vs 23.48, random_select 23.55 vs 23.26: higher for all three).
    selection_start: str = "identity"
    # --- initialisation ---
    seed: int = 0  # weights are initialised from this seed (the global generator is left untouched)

    def __post_init__(self) -> None:
        for name in ("num_blocks", "heads", "fusion_sites"):
            setattr(self, name, tuple(getattr(self, name)))
        if self.fusion not in FUSION_NAMES:
            raise ValueError(f"fusion {self.fusion!r} is not one of {FUSION_NAMES}")
        unknown = [site for site in self.fusion_sites if site not in SITES]
        if unknown:
            raise ValueError(f"fusion_sites {unknown} are not sites; the sites are {SITES}")
        if len(self.num_blocks) != 4 or len(self.heads) != 4:
            raise ValueError(f"num_blocks and heads need 4 values (one per level); got {self.num_blocks}, {self.heads}")
        for level, heads in enumerate(self.heads):
            if (self.dim * 2**level) % heads:
                raise ValueError(f"level {level + 1} has {self.dim * 2**level} channels, not divisible by {heads} heads")
        if self.layer_norm not in LAYER_NORMS:
            raise ValueError(f"layer_norm {self.layer_norm!r} is not one of {LAYER_NORMS}")
        if self.selection_start not in SELECTION_STARTS:
            raise ValueError(f"selection_start {self.selection_start!r} is not one of {SELECTION_STARTS}")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator {self.estimator!r} is not one of {ESTIMATORS}")
        if not self.gumbel_scale > 0:
            raise ValueError(f"gumbel_scale must be > 0 (got {self.gumbel_scale}); for no noise use "
                             "estimator='straight_through'")
        if self.kappa <= 0 or not 0 < self.omega <= 1 or self.gamma <= 0:
            raise ValueError(f"need κ > 0, 0 < ω ≤ 1, γ > 0; got κ={self.kappa}, ω={self.omega}, γ={self.gamma}")

    @classmethod
    def paper(cls, **overrides: Any) -> "ModelConfig":
        """The paper's scale: C = 48, blocks [4, 6, 6, 8], heads [1, 2, 4, 8], expansion 2.66, 4 refinement."""
        return cls(**overrides)

    @classmethod
    def small(cls, **overrides: Any) -> "ModelConfig":
        """A CPU-trainable network: C = 16, blocks [1, 2, 2, 2], heads [1, 2, 4, 8], 1 refinement block."""
        return cls(**{**dict(dim=16, num_blocks=(1, 2, 2, 2), heads=(1, 2, 4, 8), num_refinement_blocks=1), **overrides})

    @classmethod
    def tiny(cls, **overrides: Any) -> "ModelConfig":
        """For tests: C = 8, one block per level, heads [1, 1, 2, 2], 1 refinement block."""
        return cls(**{**dict(dim=8, num_blocks=(1, 1, 1, 1), heads=(1, 1, 2, 2), num_refinement_blocks=1), **overrides})

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "ModelConfig":
        """``tiny``, ``small`` or ``paper``."""
        presets = {"tiny": cls.tiny, "small": cls.small, "paper": cls.paper}
        if name not in presets:
            raise ValueError(f"model preset {name!r} is not one of {tuple(presets)}")
        return presets[name](**overrides)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (tuples as lists)."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ModelConfig":
        """The inverse of ``to_dict``; unknown keys are an error that names the known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig fields {unknown}; known fields: {sorted(known)}")
        return cls(**values)
