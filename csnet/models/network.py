"""CSNet: the Restormer U-Net with a fusion mechanism at each of its four fusion sites, its
configuration, and how to build, save and load it.

``build_model(ModelConfig(...))`` is the one way a model is made; a run's JSON mirrors ``ModelConfig``
(``to_dict`` / ``from_dict``). ``fusion`` switches the mechanism (``FUSIONS``) at the sites listed in
``fusion_sites``; the other sites pass their features unchanged. Every site, fused or not, has its
``probe``, so hooks and captum find the same four handles in every model.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
from torch import nn

from csnet.io import atomic_write
from csnet.models.fusion import (
    ESTIMATORS,
    FUSIONS,
    SELECTING,
    ChannelSelectionBlock,
    ForcedChannels,
    FusionSite,
    site_channels,
)
from csnet.models.restormer import LAYER_NORMS, SITES, RestormerUNet


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
    fusion: str = "hard_select"  # a key of FUSIONS
    fusion_sites: tuple[str, ...] = SITES  # sites that get the mechanism; the others pass through
    kappa: float = 2.0  # κ: FASM expands Ĉ → κĈ channels (ours; paper: unknown)
    omega: float = 0.5  # ω: K = round(κ·ω·Ĉ) expanded channels are kept (ours; paper: unknown)
    gamma: float = 4.0  # γ: PIFM reduces 3Ĉ → 3Ĉ/γ (ours; paper: unknown)
    estimator: str = "straight_through"  # gradient through hard Top-K: "straight_through" | "gumbel" (ours)
    select_temperature: float = 1.0  # τ of the sigmoid(scores/τ) whose gradient the backward uses (ours)
    implicit_prompt_len: int = 5  # implicit_prompt: prompt components (PromptIR: 5)
    implicit_prompt_size: int = 16  # implicit_prompt: components' side in pixels (ours)
    cross_attention_tokens: int = 4  # cross_attention: tokens made from the prompt (ours)
    random_select_seed: int = 0  # random_select: seed of the fixed random channel subsets
    # --- initialisation ---
    seed: int = 0  # weights are initialised from this seed (the global generator is left untouched)

    def __post_init__(self) -> None:
        for name in ("num_blocks", "heads", "fusion_sites"):
            setattr(self, name, tuple(getattr(self, name)))
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion {self.fusion!r} is not one of {tuple(FUSIONS)}")
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
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator {self.estimator!r} is not one of {ESTIMATORS}")
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


class CSNet(RestormerUNet):
    """The all-in-one restoration network: ``model(image (B, 3, H, W), prompt (B, P)) -> (B, 3, H, W)``.

    Any H×W works (reflect-padded to a multiple of 8 inside, cropped back). ``prompt`` may be omitted
    only when no site's mechanism reads it (``none``, ``implicit_prompt``).
    """

    def __init__(self, cfg: ModelConfig):
        sites = {
            site: FusionSite(
                FUSIONS[cfg.fusion if site in cfg.fusion_sites else "none"].from_config(site_channels(cfg, site), cfg, site)
            )
            for site in SITES
        }
        super().__init__(
            in_channels=cfg.in_channels,
            out_channels=cfg.out_channels,
            dim=cfg.dim,
            num_blocks=cfg.num_blocks,
            heads=cfg.heads,
            ffn_expansion_factor=cfg.ffn_expansion_factor,
            num_refinement_blocks=cfg.num_refinement_blocks,
            bias=cfg.bias,
            layer_norm=cfg.layer_norm,
            sites=sites,
        )
        self.config = cfg

    @property
    def fusion_sites(self) -> dict[str, FusionSite]:
        """Site name → ``FusionSite`` (``.fusion``, ``.probe``), in data-flow order of ``SITES``."""
        return {site: getattr(self, site) for site in SITES}

    @property
    def uses_prompt(self) -> bool:
        return any(site.fusion.uses_prompt for site in self.fusion_sites.values())

    def forward(self, image: torch.Tensor, prompt: torch.Tensor | None = None) -> torch.Tensor:
        if image.dim() != 4 or image.shape[1] != self.config.in_channels:
            raise ValueError(f"image must be (B, {self.config.in_channels}, H, W); got {tuple(image.shape)}")
        if prompt is None and self.uses_prompt:
            raise ValueError(f"fusion {self.config.fusion!r} needs a prompt (B, {self.config.prompt_dim})")
        if prompt is not None and (prompt.dim() != 2 or prompt.shape != (image.shape[0], self.config.prompt_dim)):
            raise ValueError(
                f"prompt must be (B, {self.config.prompt_dim}) with B = {image.shape[0]}; got {tuple(prompt.shape)}"
            )
        return super().forward(image, prompt)

    def _selecting_sites(self) -> dict[str, ChannelSelectionBlock]:
        return {
            name: site.fusion
            for name, site in self.fusion_sites.items()
            if isinstance(site.fusion, ChannelSelectionBlock)
        }

    @torch.no_grad()
    def selected_channels(self, prompt: torch.Tensor) -> dict[str, torch.Tensor]:
        """Site → (B, K) sorted indices into the κĈ expanded channels that each prompt keeps there.

        Exact for ``hard_select`` and ``random_select``; for ``soft_gate``, the K largest gates. Reads the
        mechanism's own choice (deterministic: no Gumbel noise), whatever ``force_channels`` is active."""
        sites = self._selecting_sites()
        if not sites:
            raise ValueError(
                f"fusion {self.config.fusion!r} selects no channels; the mechanisms that do are {SELECTING}"
            )
        return {name: fusion.selection_indices(prompt) for name, fusion in sites.items()}

    @contextlib.contextmanager
    def force_channels(self, forced: Mapping[str, ForcedChannels]) -> Iterator["CSNet"]:
        """Within the block, keep the given channel sets at the named sites instead of the selected ones.

        ``forced`` maps a site to indices into its κĈ expanded channels, shaped (K,) (every sample) or
        (B, K) (one set per sample), or to ``"all"`` (every expanded channel kept) or ``"all_scaled"``
        (every channel kept, scaled by K/κĈ so the contraction sees the usual total weight). The number
        of forced channels need not be K. Earlier forcing is restored on exit, exception or not.
        """
        sites = self._selecting_sites()
        masks = {}
        for name, spec in forced.items():
            if name not in SITES:
                raise ValueError(f"unknown site {name!r}; the sites are {SITES}")
            if name not in sites:
                raise ValueError(
                    f"site {name!r} uses {type(self.fusion_sites[name].fusion).__name__}, which selects no "
                    f"channels; the mechanisms that do are {SELECTING}"
                )
            masks[name] = sites[name].mask_for(spec)
        previous = {name: sites[name].forced_mask for name in masks}
        try:
            for name, mask in masks.items():
                sites[name].forced_mask = mask
            yield self
        finally:
            for name, mask in previous.items():
                sites[name].forced_mask = mask


def build_model(cfg: ModelConfig | Mapping[str, Any]) -> CSNet:
    """The network a config describes, its weights drawn from ``cfg.seed`` (global RNG untouched)."""
    if not isinstance(cfg, ModelConfig):
        cfg = ModelConfig.from_dict(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return CSNet(cfg)


# --- saving and loading -------------------------------------------------------------------------


def config_path(weights: str | os.PathLike) -> Path:
    """The JSON file that holds the config beside a weights file: ``model.safetensors`` → ``model.json``."""
    return Path(weights).with_suffix(".json")


def save_model(model: CSNet, path: str | os.PathLike) -> Path:
    """Write the weights (safetensors; ``.pt``/``.pth`` for ``torch.save``) and the config as JSON beside
    them, both atomically. Returns the weights' path."""
    path = Path(path)
    state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    config_json = json.dumps(model.config.to_dict(), indent=2, sort_keys=True)
    with atomic_write(config_path(path)) as tmp:
        tmp.write_text(config_json + "\n")
    with atomic_write(path) as tmp:
        if path.suffix in (".pt", ".pth"):
            torch.save(state, tmp)
        else:
            from safetensors.torch import save_file

            save_file(state, str(tmp), metadata={"config": config_json})
    return path


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> CSNet:
    """Rebuild a model written by ``save_model`` (config from the JSON beside it; tensors only:
    safetensors, or ``torch.load(weights_only=True)``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model weights at {path}")
    cfg_file = config_path(path)
    if not cfg_file.is_file():
        raise FileNotFoundError(f"no model config beside the weights: expected {cfg_file}")
    model = build_model(ModelConfig.from_dict(json.loads(cfg_file.read_text())))
    if path.suffix in (".pt", ".pth"):
        state = torch.load(path, map_location=device, weights_only=True)
    else:
        from safetensors.torch import load_file

        state = load_file(str(path), device=str(device))
    model.load_state_dict(state)
    return model.to(device)
