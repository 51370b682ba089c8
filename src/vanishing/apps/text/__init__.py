"""Text classification: reading labelled files, splits, tokens and vocabularies, the
generated keyword texts, the fortunes corpus, the TF-IDF + logistic-regression baseline, and
the recurrent classifier with its per-token gradients.

scikit-learn (the extra ``vanishing[text]``) is imported only when a baseline is fitted or
one of LAZY (``TextClassifier``, ``explain``, ``TokenGradients``, ``text_predictions``, which
stand on the scikit-learn estimator base) is first used.
"""

from vanishing.apps.text.baseline import (
    BaselineResult,
    require_sklearn,
    tfidf_baseline,
    tfidf_logreg,
)
from vanishing.apps.text.errors import TextDataError
from vanishing.apps.text.fortunes import FORTUNE_CATEGORIES, FORTUNES_DIR, load_fortunes
from vanishing.apps.text.generated import CHANCE, KEYWORDS, KeywordTexts, keyword_texts
from vanishing.apps.text.labelled import LabelledTexts
from vanishing.apps.text.metrics import accuracy, macro_f1
from vanishing.apps.text.reading import FORMATS, read_texts
from vanishing.apps.text.split import Split, read_split, stratified_split
from vanishing.apps.text.tokenize import LEVELS, normalise, tokenize
from vanishing.apps.text.vocabulary import (
    PAD_ID,
    TRUNCATE,
    UNK_ID,
    TokenizerConfig,
    Vocabulary,
    pad_batch,
)

LAZY = {
    "TextClassifier": "classifier",
    "TokenGradients": "explain",
    "explain": "explain",
    "text_predictions": "predict",
}
"""{name: its module}, imported on first use (they import scikit-learn)."""


def __getattr__(name: str) -> object:
    if name in LAZY:
        import importlib

        return getattr(importlib.import_module(f"vanishing.apps.text.{LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CHANCE",
    "FORMATS",
    "FORTUNES_DIR",
    "FORTUNE_CATEGORIES",
    "KEYWORDS",
    "LEVELS",
    "PAD_ID",
    "TRUNCATE",
    "UNK_ID",
    "BaselineResult",
    "KeywordTexts",
    "LabelledTexts",
    "Split",
    "TextClassifier",
    "TextDataError",
    "TokenGradients",
    "TokenizerConfig",
    "Vocabulary",
    "accuracy",
    "explain",
    "keyword_texts",
    "load_fortunes",
    "macro_f1",
    "normalise",
    "pad_batch",
    "read_split",
    "read_texts",
    "require_sklearn",
    "stratified_split",
    "text_predictions",
    "tokenize",
    "tfidf_baseline",
    "tfidf_logreg",
]
