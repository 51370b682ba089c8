"""Per-token gradients of a fitted TextClassifier: how far back in a text its prediction reaches.

For one text the model reads the tokens x_1 .. x_T (after truncation), predicts the class
k = argmax p(class | text), and the loss explained is that prediction's cross-entropy

    L = -log p(k | text)                (or of a class given as ``target``)

Its gradient is taken once, in float64, with the recurrent layer recording (`vanishing.nn.
record`): the first recurrent layer (the one that reads the token embeddings) gives, at every
token t, dL/dh_t and, for the LSTM, dL/dc_t, over every path from the state to the loss. Per
token we report ||dL/dh_t||_2 and ||dL/dc_t||_2 of the layer's output at t (both directions
concatenated when bidirectional; then each direction is also kept apart). By lag, as
`gradflow.lag_profile` measures it (lag 0 = the last token read, where the head reads the
state), each direction gives a LagProfile and its gradient horizon: the largest lag whose
norm is at least ``fraction`` (1e-3) of the norm at lag 0 (dc for the LSTM, dh for the RNN).
Nothing here runs a second backward pass or changes the model (autograd.grad leaves its
parameters' .grad as they were).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vanishing.apps.text.classifier import TextClassifier
from vanishing.apps.text.vocabulary import UNK_ID
from vanishing.gradflow import LagProfile, lag_profile
from vanishing.nn import record

FRACTION = 1e-3
"""The gradient horizon's threshold, relative to the norm at lag 0 (`gradflow`'s default)."""


@dataclass(frozen=True)
class TokenGradients:
    """The per-token gradients of one text (module docstring).

    tokens: what the model read; unknown[t]: token t is not in the vocabulary (read as UNK);
    predicted, probabilities: the model's prediction; target: the class whose loss L is;
    dh_norm (T,): ||dL/dh_t||; dc_norm (T,): ||dL/dc_t|| (None for the RNN); by_direction:
    {"l0": (dh (T,), dc (T,) or None), "l0_reverse": ...}; profiles: {direction: LagProfile}.
    """

    text: str
    tokens: list[str]
    unknown: list[bool]
    predicted: str
    target: str
    probabilities: dict[str, float]
    loss: float
    cell: str
    dh_norm: np.ndarray
    dc_norm: np.ndarray | None
    by_direction: dict[str, tuple[np.ndarray, np.ndarray | None]]
    profiles: dict[str, LagProfile]

    @property
    def norm(self) -> np.ndarray:
        """The per-token norm the horizon reads: ||dL/dc_t|| (LSTM) or ||dL/dh_t|| (RNN)."""
        return self.dh_norm if self.dc_norm is None else self.dc_norm

    @property
    def horizon(self) -> int:
        """The gradient horizon of the forward direction, in tokens back from the last one."""
        return self.profiles["l0"].horizon

    def to_dict(self) -> dict[str, object]:
        """Plain JSON: the text, the prediction and the numbers per token."""
        return {
            "text": self.text,
            "predicted": self.predicted,
            "target": self.target,
            "loss": self.loss,
            "probabilities": self.probabilities,
            "cell": self.cell,
            "horizon": {name: p.horizon for name, p in self.profiles.items()},
            "horizon_fraction": FRACTION,
            "tokens": [
                {
                    "t": t,
                    "token": token,
                    "unknown": self.unknown[t],
                    "dh_norm": float(self.dh_norm[t]),
                    "dc_norm": None if self.dc_norm is None else float(self.dc_norm[t]),
                }
                for t, token in enumerate(self.tokens)
            ],
        }


def explain(
    model: TextClassifier, text: str, target: str | None = None, fraction: float = FRACTION
) -> TokenGradients:
    """The per-token gradients of ``model``'s loss on ``text`` (module docstring).

    target: the class whose loss is explained (None: the predicted class). A text that is not
    a str, or a target that is not one of model.classes_, is one error saying what was expected.
    """
    if not isinstance(text, str):
        raise TypeError(f"text: expected a str, got {type(text).__name__}")
    if not hasattr(model, "network_"):
        raise ValueError("model: expected a fitted TextClassifier (call fit or load first)")
    classes = [str(c) for c in model.classes_]
    tokens, ids = model.token_ids(text)  # (T,)
    x = ids.unsqueeze(1)  # (T, 1)
    network = model.network_
    with torch.enable_grad(), record(network) as recording:
        logits = network(x)  # (1, C)
        log_p = torch.log_softmax(logits, dim=1)[0]  # (C,)
        k = int(log_p.argmax()) if target is None else _class_index(classes, target)
        loss = -log_p[k]
        # autograd.grad, not backward: the recording fills in, the parameters' .grad stay
        torch.autograd.grad(loss, [p for p in network.parameters() if p.requires_grad])
    layer = network.recurrent
    traces = [t for t in recording["recurrent"] if t.layer == 0]
    by_direction: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    profiles: dict[str, LagProfile] = {}
    for trace in traces:
        dh = trace.dh[:, 0].norm(dim=1).numpy()  # (T,)
        dc = None if trace.dc is None else trace.dc[:, 0].norm(dim=1).numpy()  # (T,)
        by_direction[trace.name] = (dh, dc)
        profiles[trace.name] = lag_profile(layer, trace, fraction, jacobian=False)
    dh_norm = np.sqrt(sum(dh**2 for dh, _ in by_direction.values()))  # (T,)
    dc_parts = [dc for _, dc in by_direction.values() if dc is not None]
    dc_norm = np.sqrt(sum(dc**2 for dc in dc_parts)) if dc_parts else None  # (T,)
    probabilities = torch.exp(log_p).detach().numpy()  # (C,)
    return TokenGradients(
        text=text,
        tokens=tokens,
        unknown=[int(i) == UNK_ID for i in ids],
        predicted=classes[int(probabilities.argmax())],
        target=classes[k],
        probabilities={c: float(p) for c, p in zip(classes, probabilities, strict=True)},
        loss=loss.item(),
        cell=model.cell,
        dh_norm=dh_norm,
        dc_norm=dc_norm,
        by_direction=by_direction,
        profiles=profiles,
    )


def _class_index(classes: list[str], target: str) -> int:
    if target not in classes:
        raise ValueError(f"target: expected one of the model's classes {classes}, got {target!r}")
    return classes.index(target)
