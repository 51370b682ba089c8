"""The 1997 task suite: encodings, targets, lengths, class balance, baselines, determinism."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vanishing.tasks import TASKS, Batch, Objective, make_task
from vanishing.tasks.reber import SYMBOLS as REBER
from vanishing.tasks.temporal_order import SYMBOLS as ORDER

SHORT = {"reber": None, "long-lag": 12, "copying": 7}


def sample(name: str, batch: int, T: int | None = 40, seed: int = 0) -> Batch:
    task = make_task(name, SHORT.get(name, T) if T == 40 else T)
    return task.sample(batch, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", list(TASKS))
def test_every_task_is_seeded_padded_and_typed(name: str) -> None:
    a, b = sample(name, 64), sample(name, 64)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and torch.equal(a.lengths, b.lengths)
    assert not torch.equal(a.x, sample(name, 64, seed=1).x)
    task = make_task(name, SHORT.get(name, 40))
    assert a.x.shape[1:] == (64, task.input_size) and a.lengths.shape == (64,)
    assert a.x.shape[0] == int(a.lengths.max()) <= task.max_length
    assert (a.x * ~a.mask().unsqueeze(2) == 0).all(), "steps after a sequence's end are zero"
    assert a.per_step == task.objective.per_step
    if task.objective.kind == "classification" and not a.y.is_floating_point():
        assert a.y.dtype == torch.long and int(a.y.max()) < task.objective.outputs
    assert sample(name, 3).x.dtype == torch.float32
    assert task.sample(2, dtype=torch.float64).x.dtype == torch.float64


def test_adding_1997_markers_values_target_and_lengths() -> None:
    T = 40
    batch = sample("adding", 4000, T)
    values, markers = batch.x[..., 0], batch.x[..., 1]  # (L, B)
    assert set(batch.lengths.unique().tolist()) == set(range(T, T + T // 10 + 1))
    assert ((values >= -1) & (values <= 1)).all()
    marked = markers == 1
    assert (marked.sum(0) == 2).all()
    assert marked[:10].any(0).all(), "one mark in the first ten pairs"
    assert not marked[T // 2 :].any(), "the second mark lies in the first T/2 - 1 pairs"
    ends = markers[batch.lengths - 1, torch.arange(4000)]
    assert ((ends == -1) | marked[batch.lengths - 1, torch.arange(4000)]).all()
    assert ((markers[0] == -1) | marked[0]).all()
    last_mark = marked.shape[0] - 1 - marked.flip(0).float().argmax(0)  # (B,) later mark
    x1_first = marked[0] & (last_mark >= 10)  # the first pair is X1's (X2 beyond the first ten)
    assert x1_first.sum() > 50 and (values[0][x1_first] == 0).all(), "X1 = 0 on the first pair"
    x1x2 = (values * marked).sum(0)
    torch.testing.assert_close(batch.y[:, 0], 0.5 + x1x2 / 4)


def test_adding_1997_hand_computed_baseline() -> None:
    batch = sample("adding", 200_000, 20)
    mse = torch.mean((batch.y - 0.5) ** 2).item()
    assert mse == pytest.approx(make_task("adding", 20).objective.baseline, rel=0.02)
    assert make_task("adding", 20).objective.baseline == pytest.approx((0.3 + 1 / 3) / 16)


def test_multiplication_target_and_baseline() -> None:
    batch = sample("multiplication", 200_000, 20)
    values, marked = batch.x[..., 0], batch.x[..., 1] == 1
    assert ((values >= 0) & (values <= 1)).all()
    product = torch.where(marked, values, torch.ones_like(values)).prod(0)
    torch.testing.assert_close(batch.y[:, 0], product)
    baseline = make_task("multiplication", 20).objective.baseline
    assert torch.mean((batch.y - batch.y.mean()) ** 2).item() == pytest.approx(baseline, rel=0.02)
    assert make_task("multiplication", 20).objective.required == pytest.approx(0.93)


@pytest.mark.parametrize(("name", "relevant"), [("temporal-order", 2), ("temporal-order-3", 3)])
def test_temporal_order_encoding_and_class_balance(name: str, relevant: int) -> None:
    T, n = 100, 8000
    batch = sample(name, n, T)
    symbols = batch.x.argmax(-1)  # (L, B)
    columns = torch.arange(n)
    assert (symbols[0] == ORDER.index("E")).all()
    assert (symbols[batch.lengths - 1, columns] == ORDER.index("B")).all()
    relevant_steps = (symbols == ORDER.index("X")) | (symbols == ORDER.index("Y"))
    assert (relevant_steps.sum(0) == relevant).all()
    first = relevant_steps.float().argmax(0)
    assert ((first >= 10) & (first <= 20)).all()
    order = [symbols[:, b][relevant_steps[:, b]] == ORDER.index("Y") for b in range(50)]
    codes = [int("".join(str(int(v)) for v in o), 2) for o in order]
    assert codes == batch.y[:50].tolist()
    counts = torch.bincount(batch.y, minlength=2**relevant).float() / n
    assert (counts - 1 / 2**relevant).abs().max() < 0.02, "classes are balanced"


def test_temporal_order_6a_positions_at_the_papers_length() -> None:
    batch = sample("temporal-order", 2000, 100)
    symbols = batch.x.argmax(-1)
    relevant = (symbols == ORDER.index("X")) | (symbols == ORDER.index("Y"))
    where = [relevant[:, b].nonzero().flatten().tolist() for b in range(2000)]
    assert all(10 <= t1 <= 20 and 50 <= t2 <= 60 for t1, t2 in where)
    assert {t1 for t1, _ in where} == set(range(10, 21))


def test_long_lag_two_sequences_and_targets() -> None:
    p = 6
    batch = sample("long-lag", 200, p)
    inputs = batch.x.argmax(-1)  # (p, B)
    assert batch.x.shape == (p, 200, p + 1)
    firsts = set(inputs[0].tolist())
    assert firsts == {p - 1, p}, "x or y first"
    assert (inputs[1:] == torch.arange(p - 1).unsqueeze(1)).all()
    assert (batch.y[:-1] == torch.arange(p - 1).unsqueeze(1)).all()
    assert torch.equal(batch.y[-1], inputs[0]), "the last target is the first symbol"


def test_long_lag_success_test_and_baseline() -> None:
    task = make_task("long-lag", 5)
    batch = task.sample(64, torch.Generator().manual_seed(0))
    perfect = 30.0 * F.one_hot(batch.y, 6).float()  # softmax ~ 1 on the target
    assert task.objective.correct_sequences(perfect, batch).all()
    memoryless = perfect.clone()
    memoryless[-1] = 0.0
    memoryless[-1, :, 4] = memoryless[-1, :, 5] = 30.0  # 50/50 between x and y
    assert not task.objective.correct_sequences(memoryless, batch).any()
    loss = task.objective.loss(memoryless, batch).item()
    assert loss == pytest.approx(task.objective.baseline, rel=1e-3)


def test_reber_strings_follow_the_grammar_and_the_wrapper_repeats() -> None:
    batch = sample("reber", 500)
    symbols = batch.x.argmax(-1)  # (L, B)
    for b in range(500):
        n = int(batch.lengths[b])
        text = "".join(REBER[int(s)] for s in symbols[:n, b])
        last = REBER[int(batch.y[n - 1, b].argmax())]
        full = text + last
        assert full[0] == "B" and full[2] == "B" and full[-1] == "E"
        assert full[1] in "TP" and full[-2] == full[1], full
        inner = full[2:-2]
        assert inner.endswith("E") and is_reber(inner), full


def is_reber(string: str) -> bool:
    """The Reber grammar as a hand-written automaton (independent of the generator's tables)."""
    edges = {
        1: {"T": 2, "P": 3},
        2: {"S": 2, "X": 4},
        3: {"T": 3, "V": 5},
        4: {"X": 3, "S": 6},
        5: {"P": 4, "V": 6},
    }
    if not (string.startswith("B") and string.endswith("E")):
        return False
    node = 1
    for symbol in string[1:-1]:
        if node not in edges or symbol not in edges[node]:
            return False
        node = edges[node][symbol]
    return node == 6


def test_reber_allowed_sets_by_hand() -> None:
    batch = sample("reber", 200)
    symbols = batch.x.argmax(-1)
    for b in range(200):
        n = int(batch.lengths[b])
        allowed = [
            {REBER[i] for i in (batch.y[t, b] > 0).nonzero().flatten().tolist()} for t in range(n)
        ]
        text = "".join(REBER[int(s)] for s in symbols[:n, b])
        assert allowed[0] == {"T", "P"} and allowed[1] == {"B"} and allowed[2] == {"T", "P"}
        assert allowed[-1] == {"E"} and allowed[-2] == {text[1]}
        for t in range(n):
            assert sum(float(v) for v in batch.y[t, b]) == pytest.approx(1.0)
            assert len(allowed[t]) in (1, 2)


def test_reber_success_needs_the_long_lag_and_baseline_matches() -> None:
    task = make_task("reber")
    batch = task.sample(4000, torch.Generator().manual_seed(3))
    perfect = torch.log(batch.y.clamp(min=1e-9))  # log-probabilities of the grammar
    assert task.objective.correct_sequences(perfect, batch).all()
    assert task.objective.loss(perfect, batch).item() == pytest.approx(0.0, abs=1e-5)
    forgetful = perfect.clone()
    columns = torch.arange(4000)
    wrapper_step = batch.lengths - 2  # predicting the repeated T/P
    forgetful[wrapper_step, columns] = math.log(1e-9)
    forgetful[wrapper_step, columns, 1] = forgetful[wrapper_step, columns, 2] = math.log(0.5)
    assert not task.objective.correct_sequences(forgetful, batch).any()
    loss = task.objective.loss(forgetful, batch).item()
    assert loss == pytest.approx(task.objective.baseline, rel=0.03)
    assert batch.lengths.float().mean().item() == pytest.approx(11.0, rel=0.02)


def test_copying_encoding_and_baseline() -> None:
    T = 7
    batch = sample("copying", 3000, T)
    inputs = batch.x.argmax(-1)  # (T + 20, B)
    assert batch.x.shape[0] == T + 20
    data = inputs[:10]
    assert ((data >= 1) & (data <= 8)).all()
    assert (inputs[10 : T + 9] == 0).all() and (inputs[T + 9] == 9).all()
    assert (inputs[T + 10 :] == 0).all()
    assert (batch.y[: T + 10] == 0).all() and torch.equal(batch.y[T + 10 :], data)
    guess = torch.zeros(T + 20, 3000, 9)
    guess[: T + 10, :, 0] = 20.0  # certain blanks
    guess[T + 10 :, :, 0] = -1e4  # then uniform over 1..8
    loss = make_task("copying", T).objective.loss(guess, batch).item()
    assert loss == pytest.approx(10 * math.log(8) / (T + 20), rel=1e-4)


def test_latching_encoding_and_baseline() -> None:
    T = 50
    batch = sample("latching", 20_000, T)
    x = batch.x[..., 0]
    label = batch.y[:, 0]
    assert set(label.unique().tolist()) == {0.0, 1.0}
    assert abs(label.mean().item() - 0.5) < 0.02
    torch.testing.assert_close(x[:3], (2 * label - 1).expand(3, -1))
    noise = x[3:T][batch.mask()[3:T]]
    assert noise.var().item() == pytest.approx(0.2, rel=0.03)
    assert torch.mean((label - 0.5) ** 2).item() == make_task("latching", T).objective.baseline


@pytest.mark.parametrize(
    ("name", "T", "message"),
    [
        ("addition", 100, "unknown task 'addition'; expected one of adding"),
        ("adding", 10, "adding: T must be an int >= 20"),
        ("temporal-order", 5, "T must be an int >= 20"),
        ("long-lag", 1, "T must be an int >= 2"),
        ("reber", 30, "reber has no length parameter"),
        ("copying", 0, "T must be an int >= 1"),
    ],
)
def test_make_task_bad_names_and_lengths(name: str, T: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_task(name, T)


def test_objective_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="kind must be one of regression, classification"):
        Objective("ranking", 1)
    with pytest.raises(ValueError, match="required must be in"):
        Objective("regression", 1, required=0.0)


def test_per_step_losses_skip_padded_steps() -> None:
    objective = Objective("regression", 1, per_step=True)
    y = torch.zeros(4, 2, 1)
    batch = Batch(torch.zeros(4, 2, 1), y, torch.tensor([4, 2]), per_step=True)
    output = torch.zeros(4, 2, 1)
    output[2:, 1] = 100.0  # after the second sequence's end: ignored
    output[0, 0] = 3.0
    assert objective.loss(output, batch).item() == pytest.approx(9.0 / 6)


def test_take_trims_to_the_longest_selected_sequence() -> None:
    batch = sample("adding", 16, 40)
    index = torch.tensor([3, 5])
    part = batch.take(index)
    assert part.x.shape[0] == int(batch.lengths[index].max())
    torch.testing.assert_close(part.y, batch.y[index])
