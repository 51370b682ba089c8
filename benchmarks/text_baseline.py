"""TF-IDF + logistic regression on the text data sets: the baseline the recurrent models face.

    .venv/bin/python benchmarks/text_baseline.py              # about a minute on 2 cores
    .venv/bin/python benchmarks/text_baseline.py --seeds 0 1 2

Data: the generated keyword texts (apps/text/generated.py; n texts of `length` words, the
keywords among the first `head`), both variants, and the fortunes corpus's default
categories (needs `apt-get install fortunes`; skipped with a note if it is missing). Each data
set is split 70/10/20, stratified, per seed; the baseline picks C on the validation part and
is scored on the test part. Reported per data set: test accuracy and macro-F1 (mean and range
over the seeds) and the fit's wall time (median over the seeds; vectorising and fitting every
C tried). Prints the CPU model and torch's ISA beside the table.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from vanishing.apps.text import (
    CHANCE,
    LabelledTexts,
    TextDataError,
    keyword_texts,
    load_fortunes,
    stratified_split,
    tfidf_baseline,
)
from vanishing.report.machine import cpu_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="generated texts per variant")
    parser.add_argument("--length", type=int, default=60, help="words per generated text")
    parser.add_argument("--head", type=int, default=10, help="keywords among the first HEAD")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="split seeds")
    args = parser.parse_args()

    sets: dict[str, tuple[LabelledTexts | None, float]] = {}
    for variant in ("keyword", "order"):
        data = keyword_texts(args.n, args.length, args.head, variant, seed=0).data
        sets[f"generated {variant} (n={args.n}, T={args.length}, head={args.head})"] = (
            data,
            CHANCE,
        )
    try:
        fortunes = load_fortunes()
        majority = max(fortunes.class_counts().values()) / len(fortunes)
        sets[f"fortunes, {len(fortunes.classes)} categories (n={len(fortunes)})"] = (
            fortunes,
            majority,
        )
    except TextDataError as e:
        print(f"skipping fortunes: {e}")

    print(f"CPU: {cpu_model()}; torch ISA: {torch.backends.cpu.get_cpu_capability()}")
    print(f"seeds {args.seeds}; split train/val/test 0.7/0.1/0.2, stratified")
    print(f"{'data set':<48} {'majority':>8} {'accuracy':>17} {'macro-F1':>17} {'fit s':>6}")
    for name, (data, majority) in sets.items():
        results = [tfidf_baseline(stratified_split(data, seed=s), seed=s) for s in args.seeds]
        acc = [r.accuracy for r in results]
        f1 = [r.macro_f1 for r in results]
        fit = statistics.median(r.fit_seconds for r in results)
        print(
            f"{name:<48} {majority:>8.3f} {statistics.mean(acc):>6.3f} "
            f"[{min(acc):.3f},{max(acc):.3f}] {statistics.mean(f1):>6.3f} "
            f"[{min(f1):.3f},{max(f1):.3f}] {fit:>6.2f}"
        )


if __name__ == "__main__":
    main()
