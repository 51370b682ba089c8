"""`vanishing classify-text`: a recurrent text classifier on the user's file (or a named data
set), beside TF-IDF + logistic regression and the other recurrent cell on the same split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vanishing.apps.network import CELLS
from vanishing.apps.text.datasets import DATASETS
from vanishing.apps.text.reading import FORMATS
from vanishing.apps.text.tokenize import LEVELS
from vanishing.apps.text.vocabulary import TRUNCATE
from vanishing.cli.common import (
    RUNS,
    SEED_MAX,
    Nonlinearity,
    as_option,
    choices,
    console,
    fail,
    new_run_dir,
    one_line_errors,
    print_table,
    run_meta,
)

Opt = typer.Option


Level = choices("Level", LEVELS)
Cell = choices("Cell", CELLS)
Truncate = choices("Truncate", TRUNCATE)
Dataset = choices("Dataset", DATASETS)
Format = choices("Format", FORMATS)

OPTIONS = {
    "max_vocab": "--max-vocab",
    "max_length": "--max-length",
    "min_count": "--min-count",
    "embedding_dim": "--embedding-dim",
    "hidden_size": "--hidden",
    "num_layers": "--layers",
    "dropout": "--dropout",
    "forget_bias": "--forget-bias",
    "max_epochs": "--epochs",
    "patience": "--patience",
    "batch_size": "--batch",
    "lr": "--lr",
    "n_jobs": "--threads",
}
"""{TextClassifier parameter: its option}, to name the option in an error."""


def classify_text(
    file: Annotated[
        Path | None,
        Opt("--file", help="Labelled texts (CSV, TSV or JSON Lines); split train/val/test."),
    ] = None,
    dataset: Annotated[
        Dataset | None,
        Opt(
            "--dataset",
            help="Instead of --file: generated keyword or order texts, or the fortunes corpus "
            "(apt-get install fortunes).",
        ),
    ] = None,
    text_col: Annotated[str, Opt("--text-col", help="Column (or JSON key) of the text.")] = "text",
    label_col: Annotated[
        str, Opt("--label-col", help="Column (or JSON key) of the label.")
    ] = "label",
    fmt: Annotated[
        Format | None, Opt("--format", help="File format, if the extension does not say it.")
    ] = None,
    encoding: Annotated[str, Opt("--encoding", help="Text encoding of the files.")] = "utf-8",
    test_file: Annotated[
        Path | None,
        Opt("--test-file", help="A given test file: then --file is the training part."),
    ] = None,
    val_file: Annotated[
        Path | None, Opt("--val-file", help="A given validation file (with --test-file).")
    ] = None,
    val: Annotated[float, Opt("--val", help="Validation fraction of each class.")] = 0.1,
    test: Annotated[float, Opt("--test", help="Test fraction of each class.")] = 0.2,
    n: Annotated[int, Opt("--n", help="Generated data sets: number of texts.")] = 2000,
    length: Annotated[int, Opt("--length", help="Generated data sets: words per text.")] = 60,
    head: Annotated[
        int, Opt("--head", help="Generated data sets: keywords among the first HEAD words.")
    ] = 10,
    level: Annotated[Level, Opt("--level", help="Tokens: words or characters.")] = Level.word,
    min_count: Annotated[
        int, Opt("--min-count", help="A token enters the vocabulary seen this often.")
    ] = 1,
    max_vocab: Annotated[
        int, Opt("--max-vocab", help="Vocabulary size, <pad> and <unk> included.")
    ] = 20000,
    max_length: Annotated[int, Opt("--max-length", help="Tokens read per text.")] = 400,
    truncate: Annotated[
        Truncate, Opt("--truncate", help="Which side of a longer text is cut.")
    ] = Truncate.end,
    model: Annotated[
        Cell, Opt("--model", help="The model saved in the run folder: lstm or rnn.")
    ] = Cell.lstm,
    compare: Annotated[
        bool,
        Opt(
            "--compare/--no-compare",
            help="Also fit TF-IDF + logistic regression and the other cell on the same split.",
        ),
    ] = True,
    nonlinearity: Annotated[
        Nonlinearity, Opt("--nonlinearity", help="The simple RNN's activation.")
    ] = Nonlinearity.tanh,
    bidirectional: Annotated[
        bool, Opt("--bidirectional", help="Read each text in both directions.")
    ] = False,
    embedding_dim: Annotated[int, Opt("--embedding-dim", help="Embedding size.")] = 32,
    hidden: Annotated[int, Opt("--hidden", help="Hidden units per direction.")] = 64,
    layers: Annotated[int, Opt("--layers", help="Stacked recurrent layers.")] = 1,
    dropout: Annotated[
        float, Opt("--dropout", help="Dropout between layers and before the classifier.")
    ] = 0.0,
    forget_bias: Annotated[
        float, Opt("--forget-bias", help="LSTM: added to the forget-gate bias at initialisation.")
    ] = 3.0,
    epochs: Annotated[int, Opt("--epochs", help="At most this many epochs.")] = 40,
    patience: Annotated[
        int, Opt("--patience", help="Stop after this many epochs without a lower val loss.")
    ] = 10,
    batch: Annotated[int, Opt("--batch", help="Texts per training step.")] = 32,
    lr: Annotated[float, Opt("--lr", help="Adam's learning rate.")] = 3e-3,
    seed: Annotated[int, Opt("--seed", help="Seed of the split, the data and the weights.")] = 0,
    threads: Annotated[int, Opt("--threads", help="torch threads (-1: every core).")] = 1,
    out: Annotated[Path, Opt("--out", help="Parent folder of the run folder.")] = RUNS,
    progress: Annotated[bool, Opt("--progress/--no-progress", help="Show progress bars.")] = True,
) -> None:
    """Train a text classifier and compare it, on one split, with TF-IDF + logistic regression.

    Writes metrics.json, model/ (the --model, for `vanishing predict` and `vanishing explain`),
    vocabulary.json and report.html (the scores, and the per-token gradients of the first
    test text) into runs/classify-text-<time>/.
    """
    from vanishing.apps.text import TextDataError
    from vanishing.apps.text.classifier import TextClassifier
    from vanishing.apps.text.classify_run import COLUMNS, load_split, score_rows, write_run
    from vanishing.apps.text.compare import compare as run_compare

    if (file is None) == (dataset is None):
        fail("give exactly one of --file F or --dataset keyword|order|fortunes")
    if test_file is not None and file is None:
        fail("--test-file needs --file (the training part)")
    if val_file is not None and test_file is None:
        fail("--val-file needs --test-file")
    if not 0 <= seed <= SEED_MAX:
        fail(f"--seed must be in 0..{SEED_MAX}, got {seed}")
    params = dict(
        level=level.value,
        min_count=min_count,
        max_vocab=max_vocab,
        max_length=max_length,
        truncate=truncate.value,
        embedding_dim=embedding_dim,
        hidden_size=hidden,
        num_layers=layers,
        bidirectional=bidirectional,
        dropout=dropout,
        nonlinearity=nonlinearity.value,
        forget_bias=forget_bias,
        max_epochs=epochs,
        patience=patience,
        batch_size=batch,
        lr=lr,
        random_state=seed,
        n_jobs=threads,
        verbose=int(progress),
    )
    try:
        TextClassifier(**params)._check_params()
    except (ValueError, TypeError) as error:
        fail(as_option(str(error), OPTIONS))
    try:
        split, source = load_split(
            file,
            test_file,
            val_file,
            dataset and dataset.value,
            text_col,
            label_col,
            val=val,
            test=test,
            seed=seed,
            fmt=fmt and fmt.value,
            encoding=encoding,
            n=n,
            length=length,
            head=head,
        )
    except (TextDataError, ValueError, TypeError) as error:
        fail(str(error))
    run_dir = new_run_dir(out, "classify-text")
    cells = [model.value] + ([c for c in ("lstm", "rnn") if c != model.value] if compare else [])

    def announce(name: str) -> None:
        if progress:
            console.print(f"fitting {name} ...", highlight=False)

    with one_line_errors():
        try:
            scores, models = run_compare(split, cells, params, seed, compare, announce)
        except FloatingPointError as error:
            fail(str(error))
    write_run(run_dir, split, source, params, scores, models, model.value, run_meta())
    print_table(f"{source}: test scores ({len(split.test)} texts)", COLUMNS, score_rows(scores))
    console.print(f"run folder: {run_dir}", highlight=False)
