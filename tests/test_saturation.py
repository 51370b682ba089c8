"""Float32 numerics at saturation: kernel, reference and torch.nn agree at every input scale.

The kernel's float32 tanh is a rational approximation; it must round to exactly +-1 where
torch.tanh does (|z| >= 9.0108), and its sigmoid to exactly 0 and 1 where torch.sigmoid
does, so that a saturated unit passes exactly zero gradient, as in torch. With inputs scaled
by 1e30, every unit saturates: a gradient of 4.8e-7 instead of 0 times x ~ 1e30 would be a
weight gradient of ~1e24 instead of 0.
"""

import pytest
import torch
from conftest import forward_backward, make_inputs, make_layer, make_torch_twin

from vanishing.nn import kernel

SCALES = [1.0, 1e2, 1e4, 1e30]
F32 = {"atol": 1e-5, "rtol": 1e-4}
KINDS = [("rnn", "tanh"), ("rnn", "sigmoid"), ("lstm", None)]


def single_step(nonlinearity: str, z: torch.Tensor, use_kernel: bool) -> torch.Tensor:
    """act(z) through a one-step vanishing.RNN (W_ih = 1, no recurrence, no bias)."""
    rnn = make_layer("rnn", nonlinearity, 1, 1, bias=False, dtype=torch.float32)
    with torch.no_grad():
        rnn.weight_ih_l0.fill_(1.0)
        rnn.weight_hh_l0.zero_()
    kernel.set_enabled(use_kernel)
    try:
        return rnn(z.view(1, -1, 1))[0].view(-1).detach()
    finally:
        kernel.set_enabled(None)


@pytest.mark.parametrize("name,act", [("tanh", torch.tanh), ("sigmoid", torch.sigmoid)])
def test_activations_saturate_exactly_where_torch_does(name, act):
    if not kernel.available():
        pytest.skip("the compiled kernel is unavailable")
    z = torch.linspace(-40, 40, 400_001)  # steps of 2e-4: through both saturation points
    z = torch.cat([z, torch.tensor([1e4, -1e4, 1e30, -1e30, float("inf"), -float("inf")])])
    ours, theirs = single_step(name, z, True), act(z)
    for edge in (-1.0, 0.0, 1.0):
        torch.testing.assert_close(ours == edge, theirs == edge, msg=f"saturation at {edge}")
    torch.testing.assert_close(ours, theirs, atol=3e-7, rtol=0)
    assert single_step(name, torch.tensor([float("nan")]), True).isnan().all()


@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"x{s:g}")
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k[0] if k[1] is None else f"rnn-{k[1]}")
def test_kernel_reference_and_torch_agree_at_every_scale(kind, scale):
    layer = make_layer(*kind, 4, 8, num_layers=2, dtype=torch.float32)
    x, hx = make_inputs(layer, T=12, B=5, scale=scale)
    results = {}
    for path in ("kernel", "reference"):
        kernel.set_enabled(path == "kernel")
        try:
            results[path] = forward_backward(layer, x, hx)
        finally:
            kernel.set_enabled(None)
    if kind[1] != "sigmoid":  # torch.nn has no sigmoid RNN: kernel against reference only
        results["torch"] = forward_backward(make_torch_twin(layer), x, hx)
    oracle = results.get("torch", results["reference"])
    for path, result in results.items():
        for key, value in result.items():
            expected = oracle[key]
            torch.testing.assert_close(value, expected, **F32, msg=f"{path}: {key}")
            zero = expected == 0  # exactly zero where the oracle's is: saturated units
            assert torch.equal(value[zero], expected[zero]), f"{path}: {key} not exactly 0"
