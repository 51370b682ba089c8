"""Variable-length batches: a PackedSequence as padded (T, B, *) buffers, and back.

A PackedSequence (torch.nn.utils.rnn) stores its B sequences sorted by decreasing length,
step after step: `data` (N, I) holds step 0's rows, then step 1's, ..., and `batch_sizes[t]`
sequences still run at step t. Inside, the layers keep that sorted order on padded buffers:

    x (T, B, I), x[t, :batch_sizes[t]] = step t's rows of data, zero beyond each length

so the sequences still running at step t are the first batch_sizes[t] rows, and every time
loop runs step t on those rows only (`active_rows`). A sequence's final state is read at its
own last step (`final_state`). `sorted_indices` / `unsorted_indices` map between the sorted
rows and the caller's batch order: initial states come in, final states and traces go out,
in the caller's order (`Packing.to_sorted`, `Packing.to_caller`), as in torch.nn.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence


@dataclass(frozen=True)
class Packing:
    """The batch layout of one PackedSequence input, in the sorted order of its rows.

    batch_sizes (T,) int64 on the CPU: sequences running at step t (non-increasing);
    lengths (B,) int64 on the CPU: each sorted row's number of steps (decreasing);
    index (N,) int64 on the data's device: the position t * B + b of each row of data;
    sorted_indices, unsorted_indices (B,) or None: the PackedSequence's permutations
    (caller's index of each sorted row, and sorted row of each caller's index).
    """

    batch_sizes: Tensor
    lengths: Tensor
    index: Tensor
    sorted_indices: Tensor | None
    unsorted_indices: Tensor | None

    def to_padded(self, data: Tensor) -> Tensor:
        """data (N, *) in the packed order -> (T, B, *), zero beyond each length."""
        T, B = self.batch_sizes.shape[0], self.lengths.shape[0]
        padded = data.new_zeros((T * B, *data.shape[1:]))  # (T*B, *)
        return padded.index_copy(0, self.index, data).view(T, B, *data.shape[1:])

    def to_data(self, padded: Tensor) -> Tensor:
        """padded (T, B, *) -> (N, *), the real steps in the packed order."""
        return padded.flatten(0, 1).index_select(0, self.index)

    def to_sorted(self, s: Tensor, dim: int) -> Tensor:
        """s with its batch axis `dim` in the caller's order -> in the sorted order."""
        if self.sorted_indices is None:
            return s
        return s.index_select(dim, self.sorted_indices.to(s.device))

    def to_caller(self, s: Tensor, dim: int) -> Tensor:
        """s with its batch axis `dim` in the sorted order -> in the caller's order."""
        if self.unsorted_indices is None:
            return s
        return s.index_select(dim, self.unsorted_indices.to(s.device))


def unpack(packed: PackedSequence) -> tuple[Tensor, Packing]:
    """A (checked) PackedSequence -> (x (T, B, I) padded in sorted order, its Packing)."""
    data, batch_sizes = packed.data, packed.batch_sizes
    B = int(batch_sizes[0])  # sequences
    mask = torch.arange(B) < batch_sizes.unsqueeze(1)  # (T, B) on the CPU: a real step
    packing = Packing(
        batch_sizes=batch_sizes,
        lengths=mask.sum(0),  # (B,)
        index=mask.flatten().nonzero().squeeze(1).to(data.device),  # (N,), row-major = packed
        sorted_indices=packed.sorted_indices,
        unsorted_indices=packed.unsorted_indices,
    )
    return packing.to_padded(data), packing


def pack(out: Tensor, packing: Packing) -> PackedSequence:
    """A layer's padded output (T, B, H) -> the PackedSequence torch.nn returns."""
    return PackedSequence(
        packing.to_data(out), packing.batch_sizes, packing.sorted_indices, packing.unsorted_indices
    )


def active_rows(batch_sizes: Tensor | None, T: int, B: int) -> list[int]:
    """Rows that run at each step t = 0 .. T-1: batch_sizes[t], or B for every step."""
    return [B] * T if batch_sizes is None else batch_sizes.tolist()


def zero_padded(rows: Tensor, B: int) -> Tensor:
    """rows (n, *) of the running sequences -> (B, *), zero in rows n .. B-1 (ended ones)."""
    n = rows.shape[0]
    if n == B:
        return rows
    return torch.cat((rows, rows.new_zeros((B - n, *rows.shape[1:]))))


def final_state(states: Tensor, lengths: Tensor | None) -> Tensor:
    """states (T+1, B, H), index 0 the initial state -> (B, H) at each row's own last step."""
    if lengths is None:
        return states[-1].clone()
    rows = torch.arange(states.shape[1], device=states.device)  # (B,)
    return states[lengths.to(states.device), rows]  # (B, H)
