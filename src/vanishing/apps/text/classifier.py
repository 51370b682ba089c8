"""`TextClassifier`: texts in, labels out, through an embedding and vanishing.LSTM / RNN.

    ids = vocabulary_.encode(text)      (T,)       tokens -> ids, truncated to max_length
    e_t = Embedding(ids)_t              (T, B, E)  E = embedding_dim, PAD_ID's row stays 0
    h_T = LSTM / RNN(e) at each text's own last token (packed: `apps.network`)
    logits = Linear(h_T)                (B, n_classes)

X is a list (or 1-D array, or pandas Series) of strings; y one label per text. The vocabulary
is built from the training texts in fit (`vocabulary.py`: level "word" or "char", case folding,
`min_count`, `max_vocab` ids with PAD and UNK included, `max_length` tokens per text cut at the
"end" or the "start"); a token it lacks is UNK, and a text with no token after normalising is
[UNK]. The vocabulary is part of the fitted state: `save` writes it into model.json, `load`
reads it back. Network, training, random_state, save/load: `apps.estimator` (what it says of
`RecurrentClassifier`); `kind` "text-classifier" is what `vanishing predict` dispatches on.
A bad X is one ValueError or TypeError naming the text and what was expected.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from vanishing.apps.estimator import RecurrentClassifier, Sequences
from vanishing.apps.text.vocabulary import (
    PAD_ID,
    TokenizerConfig,
    Vocabulary,
    pad_batch,
)

TOKENIZER_PARAMS = {
    "level": "level",
    "lowercase": "lowercase",
    "min_count": "min_count",
    "max_vocab": "max_size",
    "max_length": "max_len",
    "truncate": "truncate",
}
"""{TextClassifier parameter: TokenizerConfig field} (the vocabulary's settings)."""


def as_texts(X: Any, where: str = "X") -> list[str]:
    """X as a list of str: a list, tuple, 1-D array or pandas Series of strings, at least one."""
    if isinstance(X, (str, bytes)):
        raise ValueError(
            f"{where}: expected a list of texts, got a single {type(X).__name__} "
            "(wrap one text in a list: [text])"
        )
    if hasattr(X, "to_numpy"):  # pandas Series / Index
        X = X.to_numpy()
    if isinstance(X, np.ndarray):
        if X.ndim != 1:
            raise ValueError(f"{where}: expected a 1-D sequence of texts, got shape {X.shape}")
        X = X.tolist()
    try:
        texts = list(X)
    except TypeError:
        raise TypeError(f"{where}: expected a list of texts, got {type(X).__name__}") from None
    if not texts:
        raise ValueError(f"{where}: expected at least one text, got none")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{where}[{i}]: expected a text (str), got {type(text).__name__}")
    return texts


class TextClassifier(RecurrentClassifier):
    """Text classification with vanishing.LSTM (cell="lstm") or the simple RNN (cell="rnn").

    fit(texts, labels), predict(texts) -> labels, predict_proba(texts) -> (n_texts,
    n_classes) with columns as classes_, score(texts, labels) -> accuracy; save(path) /
    TextClassifier.load(path). Text parameters: level ("word" or "char"), lowercase,
    min_count, max_vocab (None: every token), max_length (tokens per text; None: no limit),
    truncate ("end": keep the beginning, "start": keep the end), embedding_dim. The other
    parameters are `apps.estimator.RecurrentEstimator`'s; the defaults here suit texts: fewer
    epochs, a shorter patience, larger batches, and forget_bias=3.0, since a label often
    depends on a word far from the end (measured in docs/text.md: on the generated keyword
    texts, lag 50 to 60 words, forget_bias=1.0 stayed at chance for 40 epochs, 3.0 learned
    in 5). Fitted: vocabulary_, classes_,
    network_ and the training history (n_iter_, loss_curve_, ...).
    """

    kind = "text-classifier"

    def __init__(
        self,
        level: str = "word",
        lowercase: bool = True,
        min_count: int = 1,
        max_vocab: int | None = 20000,
        max_length: int | None = 400,
        truncate: str = "end",
        embedding_dim: int = 32,
        cell: str = "lstm",
        hidden_size: int = 64,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        nonlinearity: str = "tanh",
        forget_bias: float = 3.0,
        max_epochs: int = 40,
        batch_size: int = 32,
        lr: float = 3e-3,
        clip: float | None = 1.0,
        validation_fraction: float = 0.1,
        patience: int = 10,
        random_state: int | np.random.RandomState | None = None,
        n_jobs: int | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(
            cell=cell,
            hidden_size=hidden_size,
            num_layers=num_layers,
            bidirectional=bidirectional,
            dropout=dropout,
            nonlinearity=nonlinearity,
            forget_bias=forget_bias,
            max_epochs=max_epochs,
            batch_size=batch_size,
            lr=lr,
            clip=clip,
            validation_fraction=validation_fraction,
            patience=patience,
            random_state=random_state,
            n_jobs=n_jobs,
            verbose=verbose,
        )
        self.level = level
        self.lowercase = lowercase
        self.min_count = min_count
        self.max_vocab = max_vocab
        self.max_length = max_length
        self.truncate = truncate
        self.embedding_dim = embedding_dim

    def tokenizer_config(self) -> TokenizerConfig:
        """The vocabulary's settings from the parameters; a bad one is one error naming it."""
        values = {field: getattr(self, param) for param, field in TOKENIZER_PARAMS.items()}
        try:
            return TokenizerConfig(**values)
        except (TypeError, ValueError) as error:
            message = str(error)
            for param, field in TOKENIZER_PARAMS.items():
                if message.startswith(field + " "):
                    message = param + message[len(field) :]
            raise type(error)(f"{type(self).__name__}: {message}") from None

    def _check_params(self) -> None:
        super()._check_params()
        self.tokenizer_config()
        dim = self.embedding_dim
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(
                f"{type(self).__name__}: embedding_dim must be an int >= 1, got {dim!r}"
            )

    # ---- the input side (apps.estimator's hooks) ----

    def _fit_inputs(self, X: Any) -> Sequences:
        texts = as_texts(X)
        self.vocabulary_ = Vocabulary.build(texts, self.tokenizer_config())
        return self._encode(texts)

    def _inputs(self, X: Any) -> Sequences:
        return self._encode(as_texts(X))

    def _encode(self, texts: list[str]) -> Sequences:
        ids, lengths = pad_batch(self.vocabulary_.encode_all(texts))  # (T, N), (N,)
        return Sequences(ids, lengths)

    def _encoder(self) -> tuple[nn.Module | None, int]:
        dim = int(self.embedding_dim)
        return nn.Embedding(len(self.vocabulary_), dim, padding_idx=PAD_ID), dim

    def _inputs_state(self) -> dict[str, Any]:
        return {"vocabulary": self.vocabulary_.to_dict()}

    def _restore_inputs(self, state: dict[str, Any]) -> None:
        vocabulary = Vocabulary.from_dict(state["vocabulary"], "the saved vocabulary")
        if vocabulary.config != self.tokenizer_config():
            raise ValueError(
                f"the saved vocabulary's settings {vocabulary.config} differ from the model's "
                f"parameters {self.tokenizer_config()}"
            )
        self.vocabulary_ = vocabulary

    # ---- what the explanation and the reports read ----

    def token_ids(self, text: str) -> tuple[list[str], torch.Tensor]:
        """The tokens the model reads of ``text`` (after truncation) and their ids (T,)."""
        ids = torch.tensor(self.vocabulary_.encode(text), dtype=torch.int64)  # (T,)
        return self.vocabulary_.tokenize(text), ids

    def __sklearn_tags__(self):  # noqa: ANN204
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = False
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags
