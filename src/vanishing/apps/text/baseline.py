"""The baseline a user would otherwise run: TF-IDF features and logistic regression.

scikit-learn's ``TfidfVectorizer`` (its default word pattern, unigrams, ``sublinear_tf``) and
``LogisticRegression`` (L2, multinomial, the newton-cg solver), fitted on the training part;
the inverse regularisation C is chosen from BASELINE_C by accuracy on the validation part
(C = 1 when it is empty), then scored on the test part. The problem is convex, so the solver
only sets the time: newton-cg reaches the validation accuracy of the default lbfgs in a few
Newton steps and stays fast on a loaded machine, where lbfgs's many BLAS-threaded iterations
were measured 10-50x slower (fortunes, 2 shared cores).
scikit-learn is the optional extra ``vanishing[text]``: it is
imported when a baseline is fitted, never by ``import vanishing``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from vanishing.apps.text.metrics import accuracy, macro_f1
from vanishing.apps.text.split import Split

BASELINE_C = (0.1, 1.0, 10.0, 100.0)
"""The values of C tried on the validation part."""


@dataclass(frozen=True)
class BaselineResult:
    """Test scores of the fitted baseline, the C chosen, and the wall time of the whole fit.

    fit_seconds covers fitting the vectorizer, fitting one classifier per C tried, and the choice.
    """

    name: str
    accuracy: float
    macro_f1: float
    fit_seconds: float
    C: float
    val_accuracy: float | None


def require_sklearn() -> Any:
    """The ``sklearn`` module; an ImportError naming the extra to install if it is missing."""
    try:
        import sklearn
    except ImportError as e:
        raise ImportError(
            "the TF-IDF baseline needs scikit-learn: pip install 'vanishing[text]'"
        ) from e
    return sklearn


def _vectorizer() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(sublinear_tf=True)


def _classifier(C: float, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, solver="newton-cg", max_iter=1000, random_state=seed)


def tfidf_logreg(texts: list[str], labels: list[str], C: float = 1.0, seed: int = 0) -> Any:
    """A fitted scikit-learn Pipeline (TF-IDF, then logistic regression): predict(texts)."""
    require_sklearn()
    from sklearn.pipeline import make_pipeline

    return make_pipeline(_vectorizer(), _classifier(C, seed)).fit(texts, labels)


def tfidf_baseline(split: Split, seed: int = 0) -> BaselineResult:
    """Fit TF-IDF + logistic regression on ``split.train`` (C chosen on ``split.val``); score it.

    The vectorizer is fitted once on the training texts; one classifier per C is fitted on its
    features.
    """
    require_sklearn()
    from sklearn.pipeline import make_pipeline

    train_y = split.train.require_labels()
    start = time.perf_counter()
    vectorizer = _vectorizer().fit(split.train.texts)
    features = vectorizer.transform(split.train.texts)  # (N, V) sparse
    if len(split.val) == 0:
        C, val_accuracy = 1.0, None
        classifier = _classifier(C, seed).fit(features, train_y)
    else:
        val_y = split.val.require_labels()
        val_features = vectorizer.transform(split.val.texts)  # (N_val, V) sparse
        best = None
        for C in BASELINE_C:
            fitted = _classifier(C, seed).fit(features, train_y)
            score = accuracy(val_y, list(fitted.predict(val_features)))
            if best is None or score > best[0]:  # ties keep the smaller (stronger prior) C
                best = (score, C, fitted)
        val_accuracy, C, classifier = best
    fit_seconds = time.perf_counter() - start
    model = make_pipeline(vectorizer, classifier)
    predicted = list(model.predict(split.test.texts))
    test_y = split.test.require_labels()
    return BaselineResult(
        name="tfidf+logreg",
        accuracy=accuracy(test_y, predicted),
        macro_f1=macro_f1(test_y, predicted),
        fit_seconds=fit_seconds,
        C=C,
        val_accuracy=val_accuracy,
    )
