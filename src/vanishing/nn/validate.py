"""Input checks for the layers: one clear error per bad input, before the time loop starts.

The errors keep torch.nn's contract: torch.nn.RNN / LSTM raise RuntimeError for a wrong
size and ValueError for a wrong dtype, where ours name what was expected and what came as a
ValueError or TypeError. Each error class is both, so code written against either catches it.
Values are not checked: NaN and Inf propagate, as in torch.nn (no host synchronisation).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

HOW_TO_PACK = "make it with torch.nn.utils.rnn.pack_padded_sequence or pack_sequence"


class InputError(ValueError, RuntimeError):
    """A bad input or initial state (shape, size, device): ValueError and, as torch.nn
    raises for these, RuntimeError."""


class InputDtypeError(TypeError, ValueError):
    """An input or initial state whose dtype is not the parameters': TypeError and, as
    torch.nn raises for it, ValueError."""


def check_input(
    x: object, input_size: int, batch_first: bool, dtype: torch.dtype, device: torch.device
) -> tuple[Tensor, bool]:
    """Return x as (T, B, I) and whether it was batched; raise on anything else."""
    if not isinstance(x, Tensor):
        raise TypeError(f"input must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in (2, 3):
        raise InputError(
            f"input must have 3 dimensions (T, B, input_size) (or (B, T, input_size) with "
            f"batch_first) or 2 unbatched (T, input_size), got {x.dim()} with shape "
            f"{tuple(x.shape)}"
        )
    check_features(x, "input", input_size, dtype, device)
    batched = x.dim() == 3
    if not batched:
        x = x.unsqueeze(1)
    elif batch_first:
        x = x.transpose(0, 1)
    if x.shape[0] == 0:
        raise InputError(
            f"Expected sequence length to be larger than 0 in RNN: input has a sequence of "
            f"length 0 (shape {tuple(x.shape)}); T >= 1"
        )
    return x.contiguous(), batched


def check_features(
    x: Tensor, name: str, input_size: int, dtype: torch.dtype, device: torch.device
) -> None:
    """Raise unless x's last axis is input_size and x has the parameters' dtype and device."""
    if x.shape[-1] != input_size:
        raise InputError(
            f"{name}.size(-1) must be equal to input_size={input_size}, got {x.shape[-1]}"
        )
    if x.dtype != dtype:
        raise InputDtypeError(
            f"{name} dtype {x.dtype} does not match the parameters' dtype {dtype}; "
            f"convert one of them (e.g. input.to({dtype}))"
        )
    if x.device != device:
        raise InputError(f"{name} is on {x.device} but the parameters are on {device}")


def check_packed(
    x: PackedSequence, input_size: int, dtype: torch.dtype, device: torch.device
) -> None:
    """Raise unless x is a PackedSequence as torch.nn.utils.rnn makes them, for these
    parameters: data (N, input_size), batch_sizes (T,) non-increasing and summing to N."""
    data, batch_sizes = x.data, x.batch_sizes
    if not isinstance(data, Tensor) or data.dim() != 2:
        shape = tuple(data.shape) if isinstance(data, Tensor) else type(data).__name__
        raise InputError(
            f"PackedSequence data must have 2 dimensions (sum of lengths, input_size), got {shape}"
        )
    check_features(data, "PackedSequence data", input_size, dtype, device)
    if (
        not isinstance(batch_sizes, Tensor)
        or batch_sizes.dim() != 1
        or batch_sizes.dtype != torch.int64
        or batch_sizes.device.type != "cpu"
        or batch_sizes.numel() == 0
    ):
        raise InputError(
            f"PackedSequence batch_sizes must be a non-empty 1-D int64 CPU tensor; {HOW_TO_PACK}"
        )
    sizes = batch_sizes.tolist()
    if min(sizes) < 1 or sizes != sorted(sizes, reverse=True) or sum(sizes) != data.shape[0]:
        raise InputError(
            f"PackedSequence batch_sizes must be positive, non-increasing and sum to "
            f"data.size(0)={data.shape[0]}, got {sizes}; {HOW_TO_PACK}"
        )
    for name in ("sorted_indices", "unsorted_indices"):
        index = getattr(x, name)
        if index is not None and tuple(index.shape) != (sizes[0],):
            raise InputError(
                f"PackedSequence {name} must have shape ({sizes[0]},) (one per sequence), "
                f"got {tuple(index.shape)}; {HOW_TO_PACK}"
            )


def check_state(
    h: object,
    name: str,
    expected: tuple[int, int, int],
    batched: bool,
    like: Tensor,
    packed: bool = False,
    size: str = "hidden_size",
) -> Tensor:
    """Return an initial state as (L*D, B, H); raise if its shape, dtype or device is off.
    size names the last axis ('hidden_size', or 'proj_size' for a projected LSTM's h_0)."""
    if not isinstance(h, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(h).__name__}")
    want = expected if batched else (expected[0], expected[2])
    if tuple(h.shape) != want:
        batch = "batch (the PackedSequence's number of sequences), " if packed else "batch, "
        raise InputError(
            f"{name} must have shape {want} (num_layers * num_directions, "
            f"{batch if batched else ''}{size}), got {tuple(h.shape)}"
        )
    if h.dtype != like.dtype:
        raise InputDtypeError(
            f"{name} dtype {h.dtype} does not match the input's dtype {like.dtype}"
        )
    if h.device != like.device:
        raise InputError(f"{name} is on {h.device} but the input is on {like.device}")
    return h if batched else h.unsqueeze(1)
