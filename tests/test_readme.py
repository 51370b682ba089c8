"""The README's usage example runs as printed; its differences from torch.nn are true."""

import re
from pathlib import Path
from unittest import mock

import pytest
import torch

import vanishing
from vanishing.nn import InputDtypeError, InputError, kernel

README = Path(__file__).resolve().parents[1] / "README.md"


def test_usage_example_runs(capsys):
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README.md has no python example"
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102
    assert namespace["trace"].dc.shape == (100, 4, 32)
    assert "tensor(" in capsys.readouterr().out


def differences() -> dict[str, str]:
    """README's "Differences from torch.nn" list: {bold key: the bullet's text}."""
    section = README.read_text().split("## Differences from `torch.nn`")[1].split("\n## ")[0]
    bullets = re.findall(r"^- \*\*(.+?)\*\*: (.*?)(?=^- |\Z)", section, flags=re.S | re.M)
    return {key: " ".join(text.split()) for key, text in bullets}


def check_jit_script(text: str) -> None:
    layer = vanishing.LSTM(2, 3)
    with pytest.raises(RuntimeError, match="vanishing.LSTM cannot be compiled by torch.jit.script"):
        torch.jit.script(layer)
    assert "RuntimeError: vanishing.LSTM cannot be compiled by torch.jit.script" in text


def check_recording(text: str) -> None:
    x = torch.randn(4, 2, 2)
    layer = vanishing.RNN(2, 3, record=True)
    for run in (
        lambda: torch.compile(layer, backend="eager", fullgraph=True)(x),
        lambda: torch.export.export(layer, (x,)),
    ):
        with pytest.raises(Exception, match="needs eager mode"):
            run()
    assert "`needs eager mode`" in text


def check_error_types(text: str) -> None:
    assert issubclass(InputError, ValueError) and issubclass(InputError, RuntimeError)
    assert issubclass(InputDtypeError, TypeError) and issubclass(InputDtypeError, ValueError)
    with pytest.raises(RuntimeError):
        vanishing.LSTM(2, 3)(torch.randn(4, 2, 5))
    with pytest.raises(ValueError):
        vanishing.LSTM(2, 3)(torch.randn(4, 2, 2, dtype=torch.float64))
    assert "vanishing.nn.InputError" in text and "vanishing.nn.InputDtypeError" in text


def check_reference_path(text: str) -> None:
    x = torch.randn(4, 2, 2)
    if kernel.available():
        assert kernel.supports(x) and kernel.supports(x.double())
    assert not kernel.supports(x, projection=True)
    assert not kernel.supports(x.bfloat16()) and not kernel.supports(x.to("meta"))
    layer = vanishing.LSTM(2, 3)
    out = layer(x.requires_grad_())[0]
    with mock.patch.object(kernel, "lstm_backward") as compiled_backward:
        (dx,) = torch.autograd.grad(out.sum(), x, create_graph=True)  # reference, with a graph
    compiled_backward.assert_not_called()
    assert dx.requires_grad


def check_extras(text: str) -> None:
    vanishing.RNN(2, 3, nonlinearity="sigmoid")
    lstm = vanishing.LSTM(2, 3, forget_bias=1.0, record=True)
    lstm(torch.randn(4, 1, 2))
    assert len(lstm.traces) == 1
    for name in ('`nonlinearity="sigmoid"`', "`forget_bias`", "`record=True`"):
        assert name in text


CHECKS = {
    "jit.script": check_jit_script,
    "recording needs eager mode": check_recording,
    "error types": check_error_types,
    "reference path": check_reference_path,
    "extras": check_extras,
}


def test_differences_from_torch_nn_are_true_and_complete():
    """Every difference the README lists is checked here, and every check is listed."""
    listed = differences()
    assert list(listed) == list(CHECKS), "README's list and the checks differ"
    for key, text in listed.items():
        CHECKS[key](text)
