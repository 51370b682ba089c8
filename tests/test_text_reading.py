"""apps/text reading and splitting: the formats, every bad file as one error naming the line."""

import json
from collections import Counter

import pytest

from vanishing.apps.text import (
    LabelledTexts,
    TextDataError,
    read_split,
    read_texts,
    stratified_split,
)


def write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_csv_tsv_jsonl_read_the_same_texts(tmp_path):
    rows = [('A film, "great"', "pos"), ("dull\nand long", "neg"), ("fine", "pos")]
    csv_text = "text,label\n" + "".join(
        '"{}",{}\n'.format(t.replace('"', '""'), y) for t, y in rows
    )
    tsv_text = "label\ttext\n" + "".join(
        '{}\t"{}"\n'.format(y, t.replace('"', '""')) for t, y in rows
    )
    jsonl_text = "".join(
        json.dumps({"text": t, "label": y, "id": i}) + "\n" for i, (t, y) in enumerate(rows)
    )
    for name, content in (("a.csv", csv_text), ("a.TSV", tsv_text), ("a.jsonl", jsonl_text)):
        data = read_texts(write(tmp_path, name, content), "text", "label")
        assert data.texts == [t for t, _ in rows]
        assert data.labels == [y for _, y in rows]
        assert data.classes == ["neg", "pos"]
    # the multi-line field: the third record starts on line 5 of the CSV
    data = read_texts(tmp_path / "a.csv", "text", "label")
    assert [o.rsplit(":", 1)[1] for o in data.origins] == ["2", "3", "5"]


def test_format_option_bom_blank_lines_labels_as_strings(tmp_path):
    path = write(tmp_path, "data.txt", "\ufefftext,label\n\nhello,1\n  \nbye,2\n")
    with pytest.raises(TextDataError, match=r"data\.txt: cannot tell the format .*'\.txt'"):
        read_texts(path, "text", "label")
    data = read_texts(path, "text", "label", format="csv")
    assert data.texts == ["hello", "bye"] and data.labels == ["1", "2"]
    jsonl = write(tmp_path, "d.jsonl", '{"t": "a", "y": 1}\n{"t": "b", "y": true}\n')
    assert read_texts(jsonl, "t", "y").labels == ["1", "true"]
    unlabelled = read_texts(jsonl, "t")
    assert unlabelled.labels is None
    with pytest.raises(TextDataError, match="no labels"):
        unlabelled.classes  # noqa: B018
    with pytest.raises(TextDataError, match="unknown format 'xml'"):
        read_texts(path, "text", "label", format="xml")


BAD_FILES = [
    ("empty.csv", "", r"empty\.csv: the file is empty"),
    ("blank.csv", "\n \n", r"blank\.csv: the file is empty"),
    ("header.csv", "text,label\n", r"header\.csv: no rows after the header"),
    ("col.csv", "body,label\nhi,a\n", r"col\.csv, line 1: no column 'text'.*'body', 'label'"),
    ("ragged.csv", "text,label\nok,a\nnot, quoted,b\n", r"ragged\.csv, line 3: 3 fields.*has 2"),
    ("ragged.tsv", "text\tlabel\nok\n", r"ragged\.tsv, line 2: 1 fields"),
    ("empty_text.csv", "text,label\nok,a\n  ,b\n", r"empty_text\.csv, line 3: empty text"),
    ("empty_label.csv", "text,label\nok,\n", r"empty_label\.csv, line 2: empty label"),
    ("dup.csv", "text,text,label\na,b,c\n", r"dup\.csv, line 1: the header names \['text'\]"),
    (
        "latin.csv",
        "text,label\ncaf\u00e9,a\n".encode("latin-1"),
        r"latin\.csv, line 2: bytes b'\\xe9' are not valid utf-8 \(expected utf-8",
    ),
    ("bad.jsonl", '{"text": "a", "label": "x"}\n{"text": "b",\n', r"bad\.jsonl, line 2: not valid"),
    ("list.jsonl", '["a", "x"]\n', r"list\.jsonl, line 1: expected a JSON object"),
    (
        "key.jsonl",
        '{"text": "a", "label": "x"}\n{"txt": "b", "label": "y"}\n',
        r"key\.jsonl, line 2: no column 'text'",
    ),
    ("num.jsonl", '{"text": 3, "label": "x"}\n', r"num\.jsonl, line 1: column 'text' must hold"),
    ("null.jsonl", '{"text": "a", "label": null}\n', r"null\.jsonl, line 1: column 'label'"),
]


@pytest.mark.parametrize("name, content, message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_file_is_one_error_naming_file_and_line(tmp_path, name, content, message):
    with pytest.raises(TextDataError, match=message):
        read_texts(write(tmp_path, name, content), "text", "label")


def test_other_encoding_and_missing_file(tmp_path):
    path = write(tmp_path, "latin.csv", "text,label\ncaf\u00e9,a\n".encode("latin-1"))
    assert read_texts(path, "text", "label", encoding="latin-1").texts == ["caf\u00e9"]
    with pytest.raises(TextDataError, match="unknown text encoding 'nope'"):
        read_texts(path, "text", "label", encoding="nope")
    with pytest.raises(TextDataError, match=r"missing\.csv: no such file"):
        read_texts(tmp_path / "missing.csv", "text", "label")


def labelled(counts, source="mem"):
    labels = [y for y, n in counts.items() for _ in range(n)]
    texts = [f"{y} text {i}" for i, y in enumerate(labels)]
    return LabelledTexts(texts, labels, [f"{source}:{i}" for i in range(len(texts))], source)


def test_stratified_split_keeps_class_proportions_and_is_seeded():
    data = labelled({"a": 100, "b": 50, "c": 10})
    split = stratified_split(data, val=0.1, test=0.2, seed=3)
    assert Counter(split.test.labels) == {"a": 20, "b": 10, "c": 2}
    assert Counter(split.val.labels) == {"a": 10, "b": 5, "c": 1}
    assert Counter(split.train.labels) == {"a": 70, "b": 35, "c": 7}
    parts = [split.train.texts, split.val.texts, split.test.texts]
    assert sorted(t for part in parts for t in part) == sorted(data.texts)  # disjoint, complete
    again = stratified_split(data, val=0.1, test=0.2, seed=3)
    assert again == split
    other = stratified_split(data, val=0.1, test=0.2, seed=4)
    assert other.test.texts != split.test.texts
    assert stratified_split(data, val=0.0, test=0.2).val.texts == []
    for part in parts:  # shuffled across classes, not grouped
        assert part != sorted(part, key=lambda t: t.split()[0])


def test_split_errors():
    with pytest.raises(TextDataError, match=r"mem: class 'c' has 2 example\(s\), too few.*3"):
        stratified_split(labelled({"a": 50, "c": 2}))
    with pytest.raises(TextDataError, match=r"at least 2 classes, found 1: 'a' \(9\)"):
        stratified_split(labelled({"a": 9}))
    with pytest.raises(ValueError, match="val \\+ test must be < 1"):
        stratified_split(labelled({"a": 9, "b": 9}), val=0.5, test=0.5)
    with pytest.raises(ValueError, match="test must be > 0"):
        stratified_split(labelled({"a": 9, "b": 9}), test=0.0)


def test_read_split_from_files(tmp_path):
    train = write(
        tmp_path, "train.csv", "t,y\n" + "".join(f"x{i},{'ab'[i % 2]}\n" for i in range(20))
    )
    test = write(tmp_path, "test.csv", "t,y\nq,a\nr,b\n")
    split = read_split(train, test, "t", "y", val_fraction=0.2, seed=1)
    assert len(split.train) == 16 and len(split.val) == 4 and len(split.test) == 2
    assert split.classes == ["a", "b"]
    assert read_split(train, test, "t", "y", val=test).val.texts == ["q", "r"]
    assert len(read_split(train, test, "t", "y", val_fraction=0).val) == 0
    bad = write(tmp_path, "bad.csv", "t,y\nq,a\nr,zzz\n")
    with pytest.raises(TextDataError, match=r"bad\.csv, line 3: label 'zzz' is not in the train"):
        read_split(train, bad, "t", "y")
    one = write(tmp_path, "one.csv", "t,y\nq,a\nr,a\n")
    with pytest.raises(TextDataError, match=r"one\.csv: a classifier needs at least 2 classes"):
        read_split(one, test, "t", "y")
