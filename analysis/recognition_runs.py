"""What notebook 04 (degradation recognition) trains: its two restoration models per seed, kept in the run
store, and its recognition-only image encoders, kept in the recogniser cache (``analysis.recognition``).

The notebook and the compute plan (``analysis.compute_plan``) both build them here, so the plan counts
exactly what the notebook trains.
"""
from __future__ import annotations

from typing import Sequence

from analysis.fusion_comparison import configure
from analysis.recognition import recogniser_config

FUSIONS = ("implicit_prompt", "hard_select")  # PromptIR's implicit prompts, CSNet's hard selection


def run_configs(prof, seeds: Sequence[int], kappa: float, keep_ratio: float) -> dict:
    """(fusion, seed) → ``RunConfig`` of the restoration models: ``implicit_prompt`` at every seed, then
    ``hard_select`` at every seed, on the profile's tasks and text encoder with κ and ω as notebook 01's,
    so the store shares them with notebooks 01–03."""
    return {(fusion, seed): configure(prof, fusion, seed, tasks=tuple(prof.tasks), text_encoder=prof.text_encoder,
                                      kappa=kappa, omega=keep_ratio)
            for fusion in FUSIONS for seed in seeds}


def encoder_specs(text_encoders: Sequence[str], clip_weights: str | None = None,
                  growth_text_encoders: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """The text encoder specs recognisers are anchored to on the largest task set (``text_encoders``, plus
    the pretrained CLIP when ``clip_weights`` names a local file) and on the smaller sets
    (``growth_text_encoders``; None: the first spec only)."""
    specs = list(text_encoders) + ([f"open_clip:ViT-B-32:{clip_weights}"] if clip_weights else [])
    growth = list(growth_text_encoders if growth_text_encoders is not None else specs[:1])
    return specs, growth


def recogniser_configs(prof, seeds: Sequence[int], sets: dict[str, Sequence[str]], specs: Sequence[str],
                       growth_specs: Sequence[str], *, steps: int, patch_size: int, temperature: float,
                       data_source: str) -> dict[tuple[int, str], dict[str, dict]]:
    """(seed, task set name) → {text encoder spec → recogniser config}: every spec on the largest set (the
    last of ``sets``), the growth specs on the smaller ones; batch size and learning rate are the profile's."""
    largest = list(sets)[-1]
    return {(seed, set_name): {spec: recogniser_config(spec, tasks, steps=steps, batch_size=prof.batch_size,
                                                       patch_size=patch_size, lr=prof.lr, temperature=temperature,
                                                       seed=seed, data_source=data_source)
                               for spec in (specs if set_name == largest else growth_specs)}
            for seed in seeds for set_name, tasks in sets.items()}
