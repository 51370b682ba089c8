"""`vanishing.RNN` and `vanishing.LSTM`: drop-in replacements for torch.nn.RNN / torch.nn.LSTM.

Same constructor arguments, parameter names, shapes, gate order [i, f, g, o], initialisation
and outputs as PyTorch (proj_size too), so state dicts load either way; a PackedSequence
input gives a PackedSequence output, as torch.nn (`packing.py`). Differences: the backward
pass is the hand-derived BPTT of `functions.py`; the RNN also takes nonlinearity='sigmoid'
(the article's); the LSTM takes `forget_bias`; `record=True` keeps per-step states and
gradients in `layer.traces`; torch.jit.script is refused with a clear error.
"""

from __future__ import annotations

import math
import numbers
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from vanishing.nn.activations import nonlinearity as lookup_nonlinearity
from vanishing.nn.functions import lstm_layer, rnn_layer
from vanishing.nn.naming import PARAMETERS, flip_time, suffix
from vanishing.nn.packing import Packing, pack, unpack
from vanishing.nn.trace import Recorder, Trace
from vanishing.nn.validate import check_input, check_packed, check_state

SCRIPT_ERROR = (
    "vanishing.{name} cannot be compiled by torch.jit.script: its time loops are Python "
    "autograd Functions and custom operators, which TorchScript does not support. Use "
    "torch.compile or torch.export (both supported), or script a torch.nn.{name} with the "
    "same state_dict."
)


class RecurrentBase(nn.Module):
    """Parameters, checks and the layer/direction loop shared by RNN and LSTM."""

    gate_count: int  # gates stacked along weight_ih's first axis: 1 (RNN) or 4 (LSTM)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        record: bool = False,
        proj_size: int = 0,
    ) -> None:
        super().__init__()
        for name, value in (
            ("input_size", input_size),
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
        ):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
            if value <= 0:
                raise ValueError(f"{name} must be greater than zero, got {value}")
        if not isinstance(proj_size, int) or isinstance(proj_size, bool):
            raise TypeError(f"proj_size should be of type int, got: {type(proj_size).__name__}")
        if proj_size < 0:
            raise ValueError(
                "proj_size should be a positive integer or zero to disable projections, "
                f"got {proj_size}"
            )
        if proj_size and proj_size >= hidden_size:
            raise ValueError(
                f"proj_size has to be smaller than hidden_size, got proj_size={proj_size} "
                f"and hidden_size={hidden_size}"
            )
        for name, value in (
            ("bias", bias),
            ("batch_first", batch_first),
            ("bidirectional", bidirectional),
        ):
            if not isinstance(value, bool):
                raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")
        if (
            not isinstance(dropout, numbers.Number)
            or isinstance(dropout, bool)
            or not (0 <= dropout <= 1)
        ):
            raise ValueError(f"dropout should be a number in [0, 1], got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero "
                f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                f"num_layers={num_layers}",
                stacklevel=3,
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        self.record = record
        self._traces: list[Trace] = []  # the last forward's, kept on the layer if record=True
        self._recordings: list = []  # the active vanishing.record blocks (recording.py)
        self._flat_weights_names: list[str] = []
        self._all_weights: list[list[str]] = []
        factory = {"device": device, "dtype": dtype}
        gate_size = self.gate_count * hidden_size
        out_size = proj_size or hidden_size  # h_t's size: P with a projection, else H
        for layer in range(num_layers):
            for direction in range(self.num_directions):
                layer_input_size = input_size if layer == 0 else out_size * self.num_directions
                shapes = [(gate_size, layer_input_size), (gate_size, out_size)]
                kinds = list(PARAMETERS[:2])
                if bias:
                    shapes += [(gate_size,), (gate_size,)]
                    kinds += PARAMETERS[2:]
                if proj_size:
                    shapes.append((proj_size, hidden_size))
                    kinds.append("weight_hr")
                names = [name + suffix(layer, direction) for name in kinds]
                for name, shape in zip(names, shapes, strict=True):
                    setattr(self, name, nn.Parameter(torch.empty(shape, **factory)))
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    @property
    def _flat_weights(self) -> list[Tensor | None]:
        """The weights in torch.nn's order, as the module holds them now (a plain tensor where
        a reparametrisation such as torch.nn.utils.weight_norm replaced the Parameter)."""
        return [getattr(self, name, None) for name in self._flat_weights_names]

    @property
    def traces(self) -> list[Trace]:
        """The traces of the last forward call: inside a `vanishing.record` block, that
        recording's; else, with record=True, the layer's own; else none."""
        if self._recordings:
            return self._recordings[-1]._traces_of(self)
        return self._traces if self.record else []

    def __getstate__(self) -> dict:
        """deepcopy and pickle never carry a recording (nor the active record() blocks)."""
        state = dict(super().__getstate__() if hasattr(super(), "__getstate__") else vars(self))
        state["_traces"], state["_recordings"] = [], []
        return state

    def __prepare_scriptable__(self) -> nn.Module:
        raise RuntimeError(SCRIPT_ERROR.format(name=type(self).__name__))

    def reset_parameters(self) -> None:
        """PyTorch's initialisation: every parameter ~ U(-1/sqrt(H), 1/sqrt(H))."""
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -stdv, stdv)

    def flatten_parameters(self) -> None:
        """No-op, for code written for torch.nn layers (there is no cuDNN weight buffer)."""

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        return s

    def _weights(self, layer: int, direction: int) -> tuple[Tensor | None, ...]:
        """(W_ih, W_hh, b_ih, b_hh, W_hr) of one layer and direction; None where absent
        (biases without bias, W_hr without a projection)."""
        names = (*PARAMETERS, "weight_hr")
        return tuple(getattr(self, name + suffix(layer, direction), None) for name in names)

    def _prepare(
        self, input: Tensor | PackedSequence, hx: tuple[Tensor | None, ...]
    ) -> tuple[Tensor, bool, list, Packing | None]:
        """Check input and initial states; return x (T, B, I), batched, states (L*D, B, H)
        and, for a PackedSequence, its Packing (x and states are then in its sorted order)."""
        w = self.weight_ih_l0
        packing = None
        if isinstance(input, PackedSequence):  # batch_first does not apply, as in torch.nn
            check_packed(input, self.input_size, w.dtype, w.device)
            (x, packing), batched = unpack(input), True
        else:
            x, batched = check_input(input, self.input_size, self.batch_first, w.dtype, w.device)
        LD, B = self.num_layers * self.num_directions, x.shape[1]
        sizes = (
            ("h_0", self.proj_size or self.hidden_size, "proj_size" if self.proj_size else None),
            ("c_0", self.hidden_size, None),
        )
        states = []
        for (name, size, size_name), h in zip(sizes, hx, strict=False):
            if h is None:
                states.append(x.new_zeros((LD, B, size)))
                continue
            h = check_state(
                h,
                name,
                (LD, B, size),
                batched,
                x,
                packed=packing is not None,
                size=size_name or "hidden_size",
            )
            states.append(h if packing is None else packing.to_sorted(h, dim=1))
        return x, batched, states, packing

    def _run(
        self, x: Tensor, states: list[Tensor], packing: Packing | None
    ) -> tuple[Tensor, list[Tensor]]:
        """All layers and directions over x (T, B, I); returns (output, final states)."""
        traces = self._trace_list()
        finals: list[list[Tensor]] = [[] for _ in states]
        lengths = None if packing is None else packing.lengths
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                k = layer * self.num_directions + direction
                weights = self._weights(layer, direction)
                recorder = None
                if traces is not None:
                    recorder = Recorder(traces, layer, direction, self.mode, weights, packing)
                out, *final = self._run_direction(
                    flip_time(x, direction, lengths),
                    [s[k] for s in states],
                    weights,
                    packing,
                    recorder,
                )
                outputs.append(flip_time(out, direction, lengths))
                for store, f in zip(finals, final, strict=True):
                    store.append(f)
            x = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = self._dropout(x, packing)
        if traces is not None:
            self._keep_traces(traces)
        if self.num_directions == 1 and packing is None and torch.is_grad_enabled():
            # A Function's output that is a view of its buffers cannot be modified in place
            # (autograd refuses); the user may (`out += x`), as with torch.nn. One copy
            # (not needed without autograd: no_grad outputs are plain tensors).
            x = x.clone()
        return x, [torch.stack(f) for f in finals]

    def _trace_list(self) -> list[Trace] | None:
        """A new list for this call's traces if anyone records it, else None."""
        if not (self.record or self._recordings):
            return None
        if torch.compiler.is_compiling():
            raise RuntimeError(
                f"recording a vanishing.{type(self).__name__} (record=True or "
                "vanishing.record) needs eager mode: run the recorded forward and backward "
                "without torch.compile / torch.export"
            )
        return []

    def _keep_traces(self, traces: list[Trace]) -> None:
        """This call's traces to every active recording, and to the layer if record=True."""
        if self.record:
            self._traces = traces
        for recording in self._recordings:
            recording._keep(self, traces)

    def _dropout(self, x: Tensor, packing: Packing | None) -> Tensor:
        """Dropout between layers; on a packed batch's real steps only, as torch.nn draws it."""
        if packing is None:
            return F.dropout(x, self.dropout, training=True)
        return packing.to_padded(F.dropout(packing.to_data(x), self.dropout, training=True))

    def _output(self, out: Tensor, batched: bool, packing: Packing | None) -> Tensor:
        if packing is not None:
            return pack(out, packing)
        if not batched:
            return out.squeeze(1)
        return out.transpose(0, 1) if self.batch_first else out

    @staticmethod
    def _final(h: Tensor, batched: bool, packing: Packing | None) -> Tensor:
        if packing is not None:
            return packing.to_caller(h, dim=1)
        return h if batched else h.squeeze(1)


def _packing_args(packing: Packing | None) -> tuple[Tensor | None, Tensor | None]:
    """(batch_sizes, lengths) of a packed batch, (None, None) for a padded one."""
    return (None, None) if packing is None else (packing.batch_sizes, packing.lengths)


class RNN(RecurrentBase):
    """Elman RNN, h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), as torch.nn.RNN.

    nonlinearity: 'tanh' (PyTorch's default), 'relu', or 'sigmoid' (the article's).
    Call: rnn(input, h_0=None) -> (output, h_n), shapes as torch.nn.RNN; input may be a
    PackedSequence (output is then one too, h_n at each sequence's own last step).
    """

    gate_count = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        record: bool = False,
        proj_size: int | None = None,
    ) -> None:
        if proj_size is not None:  # torch.nn.RNN's error, for any value
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        lookup_nonlinearity(nonlinearity)  # ValueError naming the choices
        self.nonlinearity = nonlinearity
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            device,
            dtype,
            record,
        )

    @property
    def mode(self) -> str:
        return lookup_nonlinearity(self.nonlinearity).mode

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s if self.nonlinearity == "tanh" else s + f", nonlinearity={self.nonlinearity!r}"

    def _run_direction(self, x, states, weights, packing, recorder):  # noqa: ANN001, ANN202
        """One layer and direction: (output (T, B, H), h_n (B, H))."""
        batch_sizes, lengths = _packing_args(packing)
        return rnn_layer(
            x, states[0], *weights[:4], self.nonlinearity, batch_sizes, lengths, recorder
        )

    def forward(
        self, input: Tensor | PackedSequence, hx: Tensor | None = None
    ) -> tuple[Tensor | PackedSequence, Tensor]:
        x, batched, states, packing = self._prepare(input, (hx,))
        out, (h_n,) = self._run(x, states, packing)
        return self._output(out, batched, packing), self._final(h_n, batched, packing)


class LSTM(RecurrentBase):
    """Long short-term memory with forget gate, as torch.nn.LSTM (gate order i, f, g, o).

    proj_size P > 0: an LSTM with projections (LSTMP), h_t = W_hr (o_t * tanh(c_t)) with
    weight_hr_l{k} (P, H), as torch.nn.LSTM; h_0, h_n and the output have size P.
    forget_bias: added to the forget-gate block of every bias_ih at initialisation
    (Jozefowicz et al. 2015 recommend 1.0); 0.0, the default, keeps PyTorch's init exactly.
    Call: lstm(input, (h_0, c_0)=None) -> (output, (h_n, c_n)), shapes as torch.nn.LSTM;
    input may be a PackedSequence (output is then one too, h_n, c_n at each sequence's own
    last step).
    """

    gate_count = 4
    mode = "LSTM"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        forget_bias: float = 0.0,
        record: bool = False,
    ) -> None:
        if not isinstance(forget_bias, numbers.Real) or not math.isfinite(forget_bias):
            raise ValueError(f"forget_bias must be a finite number, got {forget_bias!r}")
        if forget_bias != 0.0 and not bias:
            raise ValueError("forget_bias needs bias=True (it is stored in bias_ih)")
        self.forget_bias = float(forget_bias)
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            device,
            dtype,
            record,
            proj_size,
        )

    def reset_parameters(self) -> None:
        """PyTorch's initialisation, then forget_bias added to each forget-gate bias block."""
        super().reset_parameters()
        H = self.hidden_size
        if self.forget_bias and self.bias:
            with torch.no_grad():
                for name in self._flat_weights_names:
                    if name.startswith("bias_ih"):
                        getattr(self, name)[H : 2 * H] += self.forget_bias

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s if not self.forget_bias else s + f", forget_bias={self.forget_bias}"

    def _run_direction(self, x, states, weights, packing, recorder):  # noqa: ANN001, ANN202
        """One layer and direction: (output (T, B, P), h_n (B, P), c_n (B, H))."""
        batch_sizes, lengths = _packing_args(packing)
        return lstm_layer(x, states[0], states[1], *weights, batch_sizes, lengths, recorder)

    def forward(
        self, input: Tensor | PackedSequence, hx: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor | PackedSequence, tuple[Tensor, Tensor]]:
        if hx is not None and (
            not isinstance(hx, (tuple, list))
            or len(hx) != 2
            or not all(isinstance(h, Tensor) for h in hx)
        ):
            raise TypeError("hx must be a tuple (h_0, c_0) of two tensors, or None")
        x, batched, states, packing = self._prepare(
            input, (None, None) if hx is None else tuple(hx)
        )
        out, (h_n, c_n) = self._run(x, states, packing)
        finals = (self._final(h_n, batched, packing), self._final(c_n, batched, packing))
        return self._output(out, batched, packing), finals
