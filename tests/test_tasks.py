"""The adding problem: shapes, markers, targets, the 1/6 baseline."""

import pytest
import torch

from vanishing.tasks import ADDING_BASELINE_MSE, adding_problem


def test_shapes_and_dtype() -> None:
    x, y = adding_problem(5, 12, dtype=torch.float64)
    assert x.shape == (12, 5, 2) and y.shape == (5, 1)
    assert x.dtype == y.dtype == torch.float64


def test_one_marker_in_each_half_and_target_is_their_sum() -> None:
    T = 11
    x, y = adding_problem(200, T, generator=torch.Generator().manual_seed(0))
    values, markers = x[..., 0], x[..., 1]  # (T, B)
    assert ((values >= 0) & (values < 1)).all()
    assert set(markers.unique().tolist()) == {0.0, 1.0}
    assert (markers[: T // 2].sum(0) == 1).all() and (markers[T // 2 :].sum(0) == 1).all()
    torch.testing.assert_close(y[:, 0], (values * markers).sum(0))


def test_generator_makes_it_reproducible() -> None:
    a = adding_problem(4, 6, generator=torch.Generator().manual_seed(3))
    b = adding_problem(4, 6, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))


def test_baseline_always_one_has_mse_one_sixth() -> None:
    _, y = adding_problem(100_000, 20, generator=torch.Generator().manual_seed(1))
    mse = torch.mean((y - 1.0) ** 2).item()
    assert mse == pytest.approx(ADDING_BASELINE_MSE, abs=0.005)


def test_shortest_sequence_has_a_marker_at_each_step() -> None:
    x, _ = adding_problem(3, 2)
    assert (x[..., 1] == 1).all()


@pytest.mark.parametrize(("batch", "T"), [(0, 10), (-1, 10), (4, 1), (4, 0), (2.0, 10)])
def test_bad_sizes_raise(batch: object, T: object) -> None:
    with pytest.raises(ValueError, match="must be an int"):
        adding_problem(batch, T)  # type: ignore[arg-type]
