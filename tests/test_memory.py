"""What a layer keeps: after backward nothing torch.nn.LSTM would not keep; a recording lives
in its Recording, never on the layer after the block, nor in a copy, a pickle or a state dict.
"""

import copy
import os
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch

import vanishing
from vanishing.nn import StaleTraceError

# Resident memory of a fresh process while it holds N outputs (each with its loss, so the
# autograd graph stays alive) after their backward passes. MALLOC_MMAP_THRESHOLD_ makes every
# large buffer its own mapping, returned to the system when freed, so RSS counts live tensors.
RETAINED = textwrap.dedent(
    """
    import resource, sys, torch, vanishing
    torch.manual_seed(0)
    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20
    cls = vanishing.LSTM if sys.argv[1] == "vanishing" else torch.nn.LSTM
    layer = cls(8, 64)
    x = torch.randn(1000, 16, 8)
    layer(x)[0].sum().backward()  # warm up: kernel, allocator
    layer.zero_grad()
    before = rss_mb()
    held = []
    for _ in range(5):
        out, (h, c) = layer(x)
        loss = out.sum() + h.sum() + c.sum()
        loss.backward()
        held.append((out, h, c, loss))
    print(rss_mb() - before)
    """
)


def retained_mb(which: str) -> float:
    env = {"MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", RETAINED, which],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


def test_memory_held_with_outputs_is_no_more_than_torch_lstm():
    """5 outputs of (T, B, H) = (1000, 16, 64) float32 are 19.5 MiB; the forward's cache
    (h, c, 4 gates) would add 5 x 24 MiB if backward kept it."""
    ours, theirs = retained_mb("vanishing"), retained_mb("torch")
    outputs = 5 * 1000 * 16 * 64 * 4 / 2**20
    assert theirs == pytest.approx(outputs, rel=0.25)  # the measurement sees the outputs
    assert ours <= theirs + 4.0, f"vanishing keeps {ours:.1f} MiB, torch.nn.LSTM {theirs:.1f} MiB"


def record_one(layer, x):
    with vanishing.record(layer) as rec:
        layer(x)[0].sum().backward()
    return rec


def test_recording_owns_the_traces():
    layer = vanishing.LSTM(3, 4, num_layers=2)
    rec = record_one(layer, torch.randn(5, 2, 3))
    assert [t.name for t in rec[""]] == ["l0", "l1"] and rec[""][0].dh is not None
    assert layer.traces == [] and layer._traces == [] and layer._recordings == []
    with pytest.raises(KeyError, match="no recorded layer named 'lstm'.*''"):
        rec["lstm"]


@pytest.mark.parametrize(
    "clone",
    [copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))],
    ids=["deepcopy", "pickle"],
)
def test_copies_never_carry_a_recording(clone):
    layer = vanishing.RNN(3, 4, record=True)
    layer(torch.randn(5, 2, 3))[0].sum().backward()
    assert len(layer.traces) == 1  # record=True: the layer keeps its last call's traces
    twin = clone(layer)
    assert twin.record is True and twin.traces == []
    assert all(not k.startswith("trace") for k in layer.state_dict())
    with vanishing.record(layer):  # a copy made inside a block is not part of the block
        inner = clone(layer)
    assert inner._recordings == [] and inner.traces == []


def test_a_trace_refuses_weights_that_changed_since():
    layer = vanishing.LSTM(3, 4)
    rec = record_one(layer, torch.randn(5, 2, 3))
    trace = rec[""][0]
    trace.check_weights(layer)  # unchanged: no error
    copy.deepcopy(trace).check_weights(layer)  # a copy knows the weights too
    loaded = pickle.loads(pickle.dumps(trace))  # a saved trace loads (torch.save pickles)
    assert loaded.weights is None and torch.equal(loaded.dh, trace.dh)
    with pytest.raises(StaleTraceError, match="another layer|other weights"):
        trace.check_weights(vanishing.LSTM(3, 4))
    torch.optim.SGD(layer.parameters(), lr=0.1).step()
    with pytest.raises(StaleTraceError, match="record again.*vanishing.record"):
        trace.check_weights(layer)
    assert issubclass(StaleTraceError, ValueError)
