"""The estimator base (apps.estimator, apps.network, apps.model_file) through the time-series
estimators: scikit-learn's checks, pipelines and model selection, the read-out at each
sequence's own end (both directions), seeding, save/load and every bad model file."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from vanishing.apps.estimator import last_split, stratified_split
from vanishing.apps.model_file import ModelFileError, read_kind
from vanishing.apps.network import RecurrentNet
from vanishing.apps.timeseries.recurrent import (
    EXPECTED_FAILED_CHECKS,
    LSTMClassifier,
    LSTMRegressor,
)

FAST = dict(hidden_size=16, max_epochs=40, lr=1e-2, batch_size=32, random_state=0)
"""Small settings under which every estimator check but the expected failures passes."""


def expected_failures(estimator: object) -> dict[str, str]:
    return EXPECTED_FAILED_CHECKS


@parametrize_with_checks(
    [LSTMClassifier(**FAST), LSTMRegressor(**FAST), LSTMClassifier(cell="rnn", **FAST)],
    expected_failed_checks=expected_failures,
)
def test_sklearn_estimator_checks(estimator, check) -> None:  # noqa: ANN001
    check(estimator)


def labelled(n: int = 40, T: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two classes told apart by the sign of the first value: a long-ish lag to the end."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 1, T))
    y = np.where(X[:, 0, 0] > 0, "up", "down")
    return X, y


def test_pipeline_and_model_selection() -> None:
    X, y = labelled()
    flat = FunctionTransformer(lambda X: X[:, 0, :])  # (n, 1, T) -> (n, T), aeon's univariate
    pipe = make_pipeline(flat, LSTMClassifier(**FAST))
    assert cross_val_score(pipe, X, y, cv=2).shape == (2,)
    search = GridSearchCV(LSTMClassifier(**FAST), {"hidden_size": [4, 8]}, cv=2).fit(X, y)
    assert search.best_params_["hidden_size"] in (4, 8)
    assert set(search.predict(X)) <= {"up", "down"}


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_each_sequence_is_read_at_its_own_end_in_both_directions(
    cell: str, bidirectional: bool
) -> None:
    torch.manual_seed(0)
    net = RecurrentNet(None, 3, 2, cell, 5, num_layers=2, bidirectional=bidirectional).double()
    lengths = torch.tensor([7, 3, 5, 1])
    x = torch.randn(7, 4, 3, dtype=torch.float64)
    x[lengths.unsqueeze(0) <= torch.arange(7).unsqueeze(1)] = 0.0  # zero padding
    batched = net(x, lengths)  # (4, 2)
    alone = torch.cat([net(x[: int(n), b : b + 1]) for b, n in enumerate(lengths)])
    torch.testing.assert_close(batched, alone)


def test_random_state_reproduces_and_leaves_the_global_rng_alone() -> None:
    X, y = labelled()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = LSTMClassifier(**FAST).fit(X, y).predict_proba(X)
    assert torch.equal(torch.get_rng_state(), before)
    b = LSTMClassifier(**FAST).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    c = LSTMClassifier(**{**FAST, "random_state": 1}).fit(X, y).predict_proba(X)
    assert not np.array_equal(a, c)


def test_early_stopping_and_the_fixed_budget() -> None:
    X, y = labelled()
    stopped = LSTMClassifier(**{**FAST, "max_epochs": 300, "patience": 5}).fit(X, y)
    assert stopped.stopped_early_ and stopped.n_iter_ < 300
    assert stopped.n_iter_ - stopped.best_epoch_ == 5
    assert len(stopped.validation_loss_curve_) == stopped.n_iter_
    budget = LSTMClassifier(**{**FAST, "max_epochs": 7, "validation_fraction": 0.0}).fit(X, y)
    assert budget.n_iter_ == 7 and budget.best_epoch_ == 7 and not budget.stopped_early_
    assert budget.validation_loss_curve_ is None and len(budget.loss_curve_) == 7


def test_a_regressor_validates_on_its_last_cases() -> None:
    train, held = last_split(10, 0.2)
    assert train.tolist() == list(range(8)) and held.tolist() == [8, 9]
    X, _ = labelled(20)
    model = LSTMRegressor(**{**FAST, "max_epochs": 3, "validation_fraction": 0.25})
    y = np.r_[np.zeros(15), np.full(5, 100.0)]  # the last five cases alone are far off
    model.fit(X, y)
    assert min(model.validation_loss_curve_) > 1.0  # they were held out, never trained on


def test_stratified_split_keeps_every_class_in_training() -> None:
    labels = np.array([0] * 20 + [1] * 5 + [2])
    train, held = stratified_split(labels, 0.2, seed=0)
    assert np.bincount(labels[held], minlength=3).tolist() == [4, 1, 0]
    assert set(labels[train]) == {0, 1, 2} and len(train) + len(held) == len(labels)
    with pytest.raises(ValueError, match="every class has one case only"):
        stratified_split(np.array([0, 1]), 0.1, seed=0)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(cell="gru"), "LSTMClassifier: cell must be one of lstm, rnn, got 'gru'"),
        (dict(hidden_size=0), "hidden_size must be an int >= 1, got 0"),
        (dict(dropout=1.0), r"dropout must be in \[0, 1\), got 1.0"),
        (dict(lr=float("nan")), "lr must be a finite number > 0, got nan"),
        (dict(validation_fraction=1), r"validation_fraction must be in \[0, 1\), got 1"),
        (dict(nonlinearity="gelu"), "nonlinearity must be one of"),
        (dict(n_jobs=0), "n_jobs must be None, -1 or an int >= 1, got 0"),
        (dict(clip=-1.0), "clip must be a finite number > 0 or None, got -1.0"),
    ],
)
def test_bad_hyper_parameters_are_one_line_at_fit(params: dict, message: str) -> None:
    X, y = labelled(8)
    model = LSTMClassifier(**params)  # stored unchanged, checked in fit
    assert model.get_params()[next(iter(params))] is next(iter(params.values()))
    with pytest.raises(ValueError, match=message):
        model.fit(X, y)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_save_load_round_trip(tmp_path: Path, bidirectional: bool) -> None:
    X, y = labelled()
    X_var = [x[:, : 5 + i % 7] for i, x in enumerate(X)]  # unequal lengths
    model = LSTMClassifier(**{**FAST, "bidirectional": bidirectional}).fit(X_var, y)
    model.save(tmp_path / "m")
    assert read_kind(tmp_path / "m") == "timeseries-classifier"
    loaded = LSTMClassifier.load(tmp_path / "m")
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    np.testing.assert_array_equal(loaded.predict_proba(X_var), model.predict_proba(X_var))
    assert loaded.loss_curve_ == model.loss_curve_
    regressor = LSTMRegressor(**FAST).fit(X, np.c_[X[:, 0, 0], X[:, 0, -1]])
    regressor.save(tmp_path / "r")
    np.testing.assert_array_equal(
        LSTMRegressor.load(tmp_path / "r").predict(X), regressor.predict(X)
    )
    pickle.loads(pickle.dumps(loaded)).predict(X)  # scikit-learn's way works too


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    X, y = labelled(16)
    folder = tmp_path_factory.mktemp("saved") / "model"
    LSTMClassifier(hidden_size=4, max_epochs=2, random_state=0).fit(X, y).save(folder)
    return folder


def copy_of(saved: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "copy"
    folder.mkdir()
    for name in ("model.json", "model.safetensors"):
        (folder / name).write_bytes((saved / name).read_bytes())
    return folder


def rewrite_config(folder: Path, **changes: object) -> None:
    config = json.loads((folder / "model.json").read_text())
    config.update(changes)
    (folder / "model.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    "damage, message",
    [
        ("missing", r"missing: expected a saved model folder .* got nothing there"),
        ("no json", r"expected a saved model folder with model.json, got no such file"),
        ("truncated weights", r"model.safetensors: expected the weights model.json records, got"),
        ("garbage weights", r"model.safetensors: expected a safetensors file, got"),
        ("other weights", r"model.safetensors: expected the network's weights, got .*Missing key"),
        ("truncated json", r"model.json: expected a model config written by save\(\), got invalid"),
        ("foreign json", r"model.json: expected a model config with \"format\": \"vanishing-estim"),
        ("newer version", r"model.json: expected format version 1, got 99"),
        ("other kind", r"expected a saved timeseries-classifier model, got 'timeseries-regressor'"),
        ("bad params", r"model.json: expected the config of a LSTMClassifier, got TypeError"),
        ("bad statistics", r"expected the config of a LSTMClassifier, got ValueError: channel"),
    ],
)
def test_a_bad_model_file_is_one_clear_error(
    saved: Path, tmp_path: Path, damage: str, message: str
) -> None:
    folder = copy_of(saved, tmp_path)
    weights, config = folder / "model.safetensors", folder / "model.json"
    if damage == "missing":
        folder = tmp_path / "missing"
    elif damage == "no json":
        config.unlink()
    elif damage == "truncated weights":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage in ("garbage weights", "other weights"):
        if damage == "garbage weights":
            weights.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{not json")
        else:
            save_file({"w": torch.zeros(2)}, weights)
        import hashlib

        rewrite_config(folder, weights_sha256=hashlib.sha256(weights.read_bytes()).hexdigest())
    elif damage == "truncated json":
        config.write_text(config.read_text()[:50])
    elif damage == "foreign json":
        config.write_text(json.dumps({"model_type": "bert"}))
    elif damage == "newer version":
        rewrite_config(folder, version=99)
    elif damage == "other kind":
        rewrite_config(folder, kind="timeseries-regressor")
    elif damage == "bad params":
        rewrite_config(folder, params={"units": 3})
    elif damage == "bad statistics":
        inputs = json.loads(config.read_text())["inputs"]
        rewrite_config(folder, inputs={**inputs, "channel_mean": [0.0, 1.0]})
    with pytest.raises(ModelFileError, match=message) as error:
        LSTMClassifier.load(folder)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_gradient_profile_of_a_fitted_model(cell: str) -> None:
    X, y = labelled(T=12)
    model = LSTMClassifier(**{**FAST, "cell": cell, "bidirectional": True}).fit(X, y)
    layers = model.gradient_profile(X, y)
    assert [p.kind for p in layers] == [cell.upper()] * 2  # forward and reverse direction
    for p in layers:
        assert p.lags.norm.shape == (12,) and 0 <= p.lags.horizon <= 11
    X_var = [x[:, : 4 + i % 8] for i, x in enumerate(X)]  # lengths 4 .. 11
    counts = model.gradient_profile(X_var, y)[0].lags.count  # cases longer than each lag
    assert counts.tolist() == [40, 40, 40, 40, 35, 30, 25, 20, 15, 10, 5]
    regressor = LSTMRegressor(**FAST).fit(X, X[:, 0, 0])
    assert regressor.gradient_profile(X, X[:, 0, 0])[0].lags.horizon >= 0
    with pytest.raises(ValueError, match=r"y: expected labels among \['down', 'up'\], got 'x'"):
        model.gradient_profile(X, np.where(y == "up", "x", y))
    with pytest.raises(ValueError, match="detail must be one of norms, terms, exact"):
        model.gradient_profile(X, y, detail="all")
