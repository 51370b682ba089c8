"""Remedies at the gradient: norm clipping (Pascanu et al. 2013) and W_rec scaling."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import torch
from torch import Tensor, nn

F64 = torch.float64


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, threshold: float) -> float:
    """Pascanu et al. 2013, Algorithm 1: g = all gradients; if ||g|| >= threshold,
    g <- threshold * g / ||g||. Returns ||g|| (2-norm over all parameters) before clipping.

    threshold must be a finite number > 0 (a negative one would flip the gradient, cf.
    PyTorch issue 31367). A non-finite ||g|| is returned as is; inf zeroes finite entries.
    """
    if (
        not isinstance(threshold, numbers.Real)
        or isinstance(threshold, bool)
        or not math.isfinite(threshold)
        or not threshold > 0
    ):
        raise ValueError(f"threshold must be a finite number > 0, got {threshold!r}")
    if isinstance(parameters, Tensor):
        params = [parameters]
    elif isinstance(parameters, Iterable) and not isinstance(parameters, (str, bytes)):
        params = list(parameters)
    else:
        params = [parameters]  # reported below
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(
                "parameters must be a tensor or an iterable of tensors (e.g. "
                f"model.parameters()), got {type(parameters).__name__}"
                + (f" holding a {type(p).__name__}" if p is not parameters else "")
            )
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    norm = torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(g.detach().to(F64)) for g in grads])
    ).item()
    if norm >= threshold:
        scale = threshold / norm
        with torch.no_grad():
            for g in grads:
                g.mul_(scale)
    return norm


def scale_recurrent_(layer: nn.Module, rec_scale: float) -> None:
    """Multiply every weight_hh* parameter of layer by rec_scale in place (lambda_1 scales too).

    With lambda_1 > 1/gamma the RNN's bound (gamma lambda_1)^lag grows and gradients can explode.
    """
    if not isinstance(layer, nn.Module):
        raise TypeError(f"layer must be a torch.nn.Module, got {type(layer).__name__}")
    if not isinstance(rec_scale, numbers.Real) or not math.isfinite(rec_scale):
        raise ValueError(f"rec_scale must be a finite number, got {rec_scale!r}")
    weights = [
        p for name, p in layer.named_parameters() if name.split(".")[-1].startswith("weight_hh")
    ]
    if not weights:
        raise ValueError(f"{type(layer).__name__} has no weight_hh parameter to scale")
    with torch.no_grad():
        for W in weights:
            W.mul_(rec_scale)
