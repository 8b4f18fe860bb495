"""What ``csnet bench`` runs: each profile's network and batch shape, and closures doing one training
step or one inference pass of a network on a fixed random batch."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class BenchConfig:
    """One profile's network and training shape as the benchmark uses it."""

    name: str
    model: Mapping[str, Any]  # ModelConfig keyword arguments, fusion excluded
    batch: int
    patch: int
    infer_side: int


def bench_config(name: str, device: str | torch.device = "cpu", paper_cpu_batch: int = 2,
                 infer_side: int | None = None, batch: int | None = None) -> BenchConfig:
    """The profile ``name``'s model, patch and batch. The paper config on a CPU trains on
    ``paper_cpu_batch`` patches (its batch of 32 takes minutes per step there) and is timed on 128²
    inference images instead of 256²."""
    from csnet.profiles import get_profile

    profile = get_profile(name)
    on_cpu = torch.device(device).type == "cpu"
    big = name == "paper" and on_cpu
    return BenchConfig(
        name=name,
        model=dict(profile.model),
        batch=batch or (min(profile.batch_size, paper_cpu_batch) if big else profile.batch_size),
        patch=profile.patch_size,
        infer_side=infer_side or (128 if big else 256),
    )


def _inputs(batch: int, side: int, prompt_dim: int, seed: int, device: torch.device):
    generator = torch.Generator().manual_seed(seed)
    degraded = torch.rand(batch, 3, side, side, generator=generator)
    clean = torch.rand(batch, 3, side, side, generator=generator)
    prompt = F.normalize(torch.randn(batch, prompt_dim, generator=generator), dim=1)
    return degraded.to(device), clean.to(device), prompt.to(device)


def _amp_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    if not amp:
        return None
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def build(config: BenchConfig, fusion: str, device: str | torch.device = "cpu", seed: int = 0) -> nn.Module:
    from csnet.models import ModelConfig, build_model

    model = build_model(ModelConfig(**{**dict(config.model), "fusion": fusion, "seed": seed}))
    return model.to(torch.device(device))


def train_step_action(model: nn.Module, batch: int, patch: int, *, amp_dtype: torch.dtype | None = None,
                      channels_last: bool = False, optimizer: str = "fused", grad_clip: float | None = 1.0,
                      forward: Callable | None = None, seed: int = 0) -> Callable[[], torch.Tensor]:
    """A closure doing one training step of ``model`` as ``Trainer.train_step`` does for the network:
    forward (autocast when ``amp_dtype``), L1 loss in fp32, backward, gradient clipping, AdamW (lr 2e-4,
    weight decay 0.01; ``optimizer`` "fused" as ``csnet.train`` since ``TRAINING_VERSION`` 2, "foreach",
    or "default" = torch's default implementation, as before it).
    Returns the loss. The step changes the model's weights."""
    device = next(model.parameters()).device
    degraded, clean, prompt = _inputs(batch, patch, model.config.prompt_dim, seed, device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
        degraded = degraded.contiguous(memory_format=torch.channels_last)
        clean = clean.contiguous(memory_format=torch.channels_last)
    options = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}
    if optimizer not in options:
        raise ValueError(f"optimizer {optimizer!r} is not one of {tuple(options)}")
    params = list(model.parameters())
    adamw = torch.optim.AdamW(params, lr=2e-4, weight_decay=0.01, **options[optimizer])
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    run = forward if forward is not None else model
    model.train()

    def step() -> float:
        autocast = (torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None
                    else contextlib.nullcontext())
        with autocast:
            restored = run(degraded, prompt)
        loss = F.l1_loss(restored.float(), clean)
        scaler.scale(loss).backward()
        if grad_clip is not None:
            scaler.unscale_(adamw)
            # foreach=None: torch's default (a per-tensor loop on CPU)
            torch.nn.utils.clip_grad_norm_(params, grad_clip, foreach=True if optimizer != "default" else None)
        scaler.step(adamw)
        scaler.update()
        adamw.zero_grad(set_to_none=True)  # here, not before backward: idle models hold no gradients
        return loss.detach()

    return step


def inference_action(model: nn.Module, side: int, *, amp_dtype: torch.dtype | None = None,
                     seed: int = 0) -> Callable[[], Any]:
    """A closure running one batch-1 forward pass of ``model`` in inference mode on a ``side``² image."""
    device = next(model.parameters()).device
    image, _, prompt = _inputs(1, side, model.config.prompt_dim, seed, device)
    model.eval()

    def forward() -> Any:
        autocast = (torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None
                    else contextlib.nullcontext())
        with torch.inference_mode(), autocast:
            return model(image, prompt)

    return forward
