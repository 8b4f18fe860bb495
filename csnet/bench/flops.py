"""FLOPs of a training step of the network, with the depthwise correction (``csnet bench``).

Convention: 2 FLOPs per multiply-add; convolutions and matrix products only (normalisation, activations
and element-wise work are not counted), as ``torch.utils.flop_counter``. A forward convolution costs
``2·B·C_out·(C_in/groups)·k²·H_out·W_out``; its backward costs the same again for the input gradient and
the same again for the weight gradient. ``torch.utils.flop_counter`` ignores ``groups`` in the weight
gradient and so overcounts every depthwise convolution's backward by its channel count (at the paper
config its backward count is 12× this one: 3.74 TFLOP against 0.31 TFLOP for two 128² patches, whose
forward is 0.15 TFLOP); ``training_flops`` passes ``conv_backward_flops``, which does not, through
``custom_mapping``. The paper gives no FLOP count for training.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch


def conv_backward_flops(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation,
                        transposed, _output_padding, _groups, output_mask, out_shape=None, **kwargs) -> int:
    """FLOPs of ``aten.convolution_backward``, ``groups`` respected.

    The input gradient is the transposed convolution of the output gradient with the weights; the
    weight gradient takes exactly as many multiply-adds as the forward convolution (each product of
    the forward meets one output gradient), i.e. ``2·B·C_out·(C_in/groups)·k²·H_out·W_out``.
    ``w_shape`` is ``(C_out, C_in/groups, k…)``, so ``conv_flop_count`` on it is per-group correct;
    torch's own formula recasts the weight gradient as a convolution over the batch and loses the
    ``1/groups``."""
    from torch.utils.flop_counter import conv_flop_count

    flops = 0
    if output_mask[0]:
        flops += conv_flop_count(grad_out_shape, w_shape, x_shape, transposed=not transposed)
    if output_mask[1]:
        flops += conv_flop_count(x_shape, w_shape, grad_out_shape, transposed=transposed)
    return flops


def flop_counter(display: bool = False):
    """A ``FlopCounterMode`` whose convolution backward respects ``groups`` (``conv_backward_flops``)."""
    from torch.utils.flop_counter import FlopCounterMode

    return FlopCounterMode(display=display,
                           custom_mapping={torch.ops.aten.convolution_backward: conv_backward_flops})


def training_flops(model_kwargs: Mapping[str, Any], fusion: str, batch: int, patch: int) -> dict[str, int]:
    """Forward and backward FLOPs of one training step of the network (loss and optimiser excluded),
    counted on the ``meta`` device (nothing is computed, so the paper config takes seconds).

    Forward-only counts are ``csnet.models.summary.forward_flops``; this adds the backward."""
    from csnet.models import ModelConfig
    from csnet.models.network import CSNet

    cfg = ModelConfig(**{**dict(model_kwargs), "fusion": fusion})
    with torch.device("meta"):
        model = CSNet(cfg).train()
    image = torch.empty(batch, cfg.in_channels, patch, patch, device="meta")
    prompt = torch.empty(batch, cfg.prompt_dim, device="meta")
    with flop_counter() as counter:
        restored = model(image, prompt)
    forward = int(counter.get_total_flops())
    with flop_counter() as counter:
        restored.sum().backward()
    return {"forward": forward, "backward": int(counter.get_total_flops())}
