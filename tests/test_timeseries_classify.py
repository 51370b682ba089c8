"""Classification: the protocol over seeds, the aeon baselines on small slices of shipped sets,
the published figures; the forecast figure."""

import numpy as np
import pytest

from vanishing.apps.timeseries.classifiers import baselines
from vanishing.apps.timeseries.classify_protocol import evaluate_classifier
from vanishing.apps.timeseries.collection import SHIPPED, Collection, load_collection
from vanishing.apps.timeseries.figures import plot_forecasts
from vanishing.apps.timeseries.forecast_protocol import evaluate
from vanishing.apps.timeseries.naive import Persistence, SeasonalNaive
from vanishing.apps.timeseries.published import PUBLISHED
from vanishing.apps.timeseries.series import Series
from vanishing.report import save_figure


class Guess:
    """Predicts the class of the first training case, or (seed 1) of the last."""

    def __init__(self, seed):
        self.seed = seed

    def fit(self, X, y):
        self.label = y[-1] if self.seed == 1 else y[0]
        return self

    def predict(self, X):
        return np.full(len(X), self.label)


def toy():
    X = np.zeros((4, 1, 3))
    return Collection("toy", X, np.array(list("abab")), X, np.array(list("aaab")))


def test_protocol_scores_each_seed():
    result = evaluate_classifier(Guess, toy(), "guess", seeds=(0, 1, 2))
    assert result.accuracies == (0.75, 0.25, 0.75) and result.seeds == (0, 1, 2)
    assert result.mean == pytest.approx(7 / 12) and result.std == pytest.approx(
        np.std([3, 1, 3], ddof=1) / 4
    )
    assert len(result.fit_seconds) == len(result.predict_seconds) == 3


def test_a_deterministic_classifier_runs_once():
    result = evaluate_classifier(Guess, toy(), "guess", deterministic=True)
    assert result.accuracies == (0.75,) and result.std == 0 and result.deterministic


def small(name, n_train, n_test):
    data = load_collection(name)
    pick = np.random.default_rng(0).permutation
    train, test = pick(len(data.y_train))[:n_train], pick(len(data.y_test))[:n_test]
    part = (lambda X, ix: X[ix]) if data.equal_length else (lambda X, ix: [X[i] for i in ix])
    return Collection(
        name,
        part(data.X_train, train),
        data.y_train[train],
        part(data.X_test, test),
        data.y_test[test],
    )


@pytest.mark.parametrize(("name", "chance"), [("ItalyPowerDemand", 0.5), ("JapaneseVowels", 1 / 9)])
def test_baselines_beat_chance_on_small_slices(name, chance):
    data = small(name, 40, 40)
    assert data.equal_length == (name == "ItalyPowerDemand")
    for label, (make, deterministic) in baselines(data).items():
        result = evaluate_classifier(make, data, label, seeds=(0,), deterministic=deterministic)
        assert result.accuracies[0] > chance + 0.2, (label, result.accuracies)


def test_published_figures_are_for_shipped_sets():
    assert set(PUBLISHED) <= set(SHIPPED)
    assert all(0 < acc <= 1 for figures in PUBLISHED.values() for acc in figures.values())


def test_forecast_figure(tmp_path):
    t = np.arange(60.0)
    series = Series("wave", np.sin(2 * np.pi * t / 12), t, 12, 40, "", 6)
    results = [
        evaluate(Persistence(), series, "persistence"),
        evaluate(SeasonalNaive(12), series, "seasonal naive"),
    ]
    fig = plot_forecasts(series, results, strategy="recursive", origins=3)
    top, bottom = fig.axes
    assert len(top.lines) == 1 + 1 + 2  # actual, the split, one line per model
    assert len(bottom.lines) == 1 + 1 + 2 * 3  # actual, the split, 3 origins per model
    assert save_figure(fig, tmp_path / "f.png").stat().st_size > 0
    other = Series("other", np.zeros(60), t, None, 40, "", 6)
    with pytest.raises(ValueError, match=r"persistence was scored on 'wave', not 'other'"):
        plot_forecasts(other, results)
