"""CSNet: the Restormer U-Net with a fusion mechanism at each of its four fusion sites, its
configuration, and how to build, save and load it.

``build_model(ModelConfig(...))`` is the one way a model is made; a run's JSON mirrors ``ModelConfig``
(``to_dict`` / ``from_dict``). ``fusion`` switches the mechanism (``FUSIONS``) at the sites listed in
``fusion_sites``; the other sites pass their features unchanged. Every site, fused or not, has its
``probe``, so hooks and captum find the same four handles in every model. ``ModelConfig`` lives in
``csnet.models.config`` (imported here for callers).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch

from csnet.io import atomic_write
from csnet.models.config import ModelConfig, site_channels
from csnet.models.fusion import (
    FUSIONS,
    SELECTING,
    ChannelSelectionBlock,
    ForcedChannels,
    FusionSite,
    HardSelect,
    NoFusion,
)
from csnet.models.restormer import SITES, RestormerUNet


class CSNet(RestormerUNet):
    """The all-in-one restoration network: ``model(image (B, 3, H, W), prompt (B, P)) -> (B, 3, H, W)``.

    Any H×W works (reflect-padded to a multiple of 8 inside, cropped back). ``prompt`` may be omitted
    only when no site's mechanism reads it (``none``, ``implicit_prompt``).
    """

    def __init__(self, cfg: ModelConfig):
        # Paired seeds: the backbone is built first, with parameter-free placeholders at the sites, so it
        # draws the same numbers from the caller's generator whatever the mechanism; each site's
        # mechanism is then drawn from its own generator, seeded from (cfg.seed, site) alone. At one seed
        # every mechanism therefore starts from the same backbone weights.
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
            sites={site: FusionSite(NoFusion()) for site in SITES},
        )
        for site in SITES:
            mechanism = FUSIONS[cfg.fusion if site in cfg.fusion_sites else "none"]
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(site_seed(cfg.seed, site))
                getattr(self, site).fusion = mechanism.from_config(site_channels(cfg, site), cfg, site)
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

    def seed_noise(self, seed: int) -> None:
        """Seed the training-time noise of every site that draws any (``hard_select``'s Gumbel noise)
        from ``seed`` and the site's name. The noise has its own generators, so it never shifts the
        global stream (dropout, data) that the other mechanisms see; the trainer calls this every step."""
        for name, site in self.fusion_sites.items():
            if isinstance(site.fusion, HardSelect):
                site.fusion.seed_noise(site_seed(seed, name))

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


def site_seed(seed: int, site: str) -> int:
    """A 63-bit seed for what belongs to one fusion site (its mechanism's weights, its noise), from
    ``seed`` and the site's name: stable across processes and platforms, independent across sites."""
    digest = hashlib.sha256(f"{int(seed)}:{site}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def build_model(cfg: ModelConfig | Mapping[str, Any]) -> CSNet:
    """The network a config describes, its weights drawn from ``cfg.seed`` (global RNG untouched): the
    backbone from ``cfg.seed`` itself, each site's mechanism from ``site_seed(cfg.seed, site)``."""
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
