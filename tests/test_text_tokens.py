"""apps/text tokens: normalisation, words and characters, the vocabulary and its JSON file."""

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vanishing.apps.text import (
    PAD_ID,
    UNK_ID,
    TextDataError,
    TokenizerConfig,
    Vocabulary,
    normalise,
    pad_batch,
    tokenize,
)


def test_words_unicode_and_case():
    assert tokenize("Don\u2019t STOP, ok?!") == ["don't", "stop", ",", "ok", "?", "!"]
    assert tokenize("caf\u00e9") == tokenize("cafe\u0301") == ["caf\u00e9"]  # NFC
    assert tokenize("Stra\u00dfe") == tokenize("STRASSE") == ["strasse"]  # casefold, not lower
    assert tokenize("zero\u200bwidth\u00adsoft") == ["zerowidthsoft"]  # format chars removed
    assert tokenize("\u041f\u0440\u0438\u0432\u0435\u0442 \u4e16\u754c 42") == [
        "\u043f\u0440\u0438\u0432\u0435\u0442",
        "\u4e16\u754c",
        "42",
    ]
    assert tokenize("Keep Case", lowercase=False) == ["Keep", "Case"]
    assert tokenize("\x00bell\x07 \U0001f600") == ["bell", "\U0001f600"]
    assert normalise("A\u030a\tB") == "\u00e5\tb"


def test_characters():
    assert tokenize("  Ab\n\n c ", level="char") == ["a", "b", " ", "c"]
    assert tokenize("e\u0301", level="char") == ["\u00e9"]
    with pytest.raises(ValueError, match="level must be one of"):
        tokenize("x", level="byte")


def test_empty_after_cleaning_is_one_unknown_token():
    vocab = Vocabulary.build(["some words"])
    for text in ("", "   ", "\u200b\u200d", "\x00"):
        assert tokenize(text) == []
        assert vocab.tokenize(text) == ["<unk>"]
        assert vocab.encode(text) == [UNK_ID]


def test_vocabulary_order_min_count_max_size_and_unknowns():
    texts = ["b a c", "a b d", "a e", "b f"]  # a:3 b:3 then c, d, e, f once each
    vocab = Vocabulary.build(texts)
    assert vocab.tokens == ["<pad>", "<unk>", "a", "b", "c", "d", "e", "f"]
    assert vocab.counts[:4] == [0, 0, 3, 3]
    assert Vocabulary.build(texts[::-1]).tokens == vocab.tokens  # order of texts does not matter
    assert Vocabulary.build(texts, TokenizerConfig(min_count=2)).tokens[2:] == ["a", "b"]
    small = Vocabulary.build(texts, TokenizerConfig(max_size=5))
    assert small.tokens == ["<pad>", "<unk>", "a", "b", "c"]  # ties: code-point order
    assert small.encode("A z c B") == [2, UNK_ID, 4, 3]
    assert small.decode([2, UNK_ID]) == ["a", "<unk>"]
    with pytest.raises(ValueError, match="no token occurs min_count=9 times"):
        Vocabulary.build(texts, TokenizerConfig(min_count=9))
    with pytest.raises(ValueError, match="no texts"):
        Vocabulary.build([])
    # tokens spelled like the special tokens are ordinary text, split by the word pattern
    assert Vocabulary.build(["<pad> <unk>"]).tokens[2:] == ["<", ">", "pad", "unk"]


def test_truncation_from_either_side():
    text = "one two three four five"
    keep_start = Vocabulary.build([text], TokenizerConfig(max_len=2))
    keep_end = Vocabulary.build([text], TokenizerConfig(max_len=2, truncate="start"))
    assert keep_start.tokenize(text) == ["one", "two"]
    assert keep_end.tokenize(text) == ["four", "five"]
    assert keep_end.tokens[2:] == ["five", "four"]  # counted on the truncated texts
    chars = Vocabulary.build([text], TokenizerConfig(level="char", max_len=3))
    assert chars.tokenize(text) == ["o", "n", "e"]


@pytest.mark.parametrize(
    "values, message",
    [
        ({"level": "byte"}, "level must be one of"),
        ({"truncate": "middle"}, "truncate must be one of"),
        ({"min_count": 0}, "min_count must be >= 1"),
        ({"max_size": 2}, "max_size must be >= 3"),
        ({"max_len": 1.5}, "max_len must be an int or None"),
        ({"lowercase": "yes"}, "lowercase must be a bool"),
        ({"maxlen": 3}, r"unknown TokenizerConfig keys \['maxlen'\]"),
    ],
)
def test_config_rejects_bad_values(values, message):
    with pytest.raises((TypeError, ValueError), match=message):
        TokenizerConfig.from_dict(values)


def test_vocabulary_json_round_trip(tmp_path):
    config = TokenizerConfig(
        level="word", lowercase=False, min_count=1, max_len=5, truncate="start"
    )
    vocab = Vocabulary.build(["Grüße aus Köln", "naïve café \U0001f600"], config)
    path = tmp_path / "vocab.json"
    vocab.save(path)
    loaded = Vocabulary.load(path)
    assert loaded.tokens == vocab.tokens and loaded.counts == vocab.counts
    assert loaded.config == config
    assert loaded.encode("Köln café x") == vocab.encode("Köln café x")
    assert "Grüße" in path.read_text(encoding="utf-8")  # readable, not escaped
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.json"]  # no temporary left


def corrupt(document):
    return json.dumps(document)


GOOD = {
    "format": "vanishing.text.vocabulary",
    "version": 1,
    "config": {"level": "word"},
    "tokens": ["<pad>", "<unk>", "a"],
    "counts": [0, 0, 1],
}


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"format": "vanishing.text.vocabu', "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        ('{"model": "bert"}', 'expected a JSON object with "format"'),
        ("[1, 2]", 'expected a JSON object with "format"'),
        (corrupt({**GOOD, "version": 7}), "version 7; this vanishing reads version 1"),
        (corrupt({k: v for k, v in GOOD.items() if k != "tokens"}), "corrupt.*'tokens'"),
        (corrupt({**GOOD, "tokens": ["a", "<pad>", "<unk>"]}), "corrupt.*must start with"),
        (corrupt({**GOOD, "tokens": ["<pad>", "<unk>", 3]}), "corrupt.*list of strs"),
        (corrupt({**GOOD, "counts": [0, 0]}), "corrupt.*one count per token"),
        (corrupt({**GOOD, "config": {"level": "byte"}}), "corrupt.*level must be one of"),
        (corrupt({**GOOD, "config": {"size": 1}}), "corrupt.*unknown TokenizerConfig keys"),
        (
            corrupt({**GOOD, "tokens": ["<pad>", "<unk>", "a", "a"], "counts": [0] * 4}),
            "corrupt.*distinct",
        ),
    ],
)
def test_loading_a_corrupt_or_foreign_file_is_one_error(tmp_path, content, message):
    path = tmp_path / "v.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(TextDataError, match=rf"v\.json: .*{message}"):
        Vocabulary.load(path)


def test_loading_a_missing_file(tmp_path):
    with pytest.raises(TextDataError, match=r"nope\.json: no such vocabulary file"):
        Vocabulary.load(tmp_path / "nope.json")


def test_pad_batch_feeds_pack_padded_sequence():
    vocab = Vocabulary.build(["a b c", "a"])
    ids, lengths = pad_batch(vocab.encode_all(["a b c", "", "c a"]))
    assert ids.shape == (3, 3) and ids.dtype == torch.int64
    assert lengths.tolist() == [3, 1, 2]
    assert ids[:, 1].tolist() == [UNK_ID, PAD_ID, PAD_ID]
    packed = torch.nn.utils.rnn.pack_padded_sequence(ids, lengths, enforce_sorted=False)
    assert packed.data.numel() == 6
    with pytest.raises(ValueError, match="at least one id"):
        pad_batch([[2], []])


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(max_size=60), level=st.sampled_from(["word", "char"]), max_len=st.integers(1, 8)
)
def test_any_text_encodes_to_1_to_max_len_known_ids(text, level, max_len):
    vocab = Vocabulary.build(["the quick brown fox"], TokenizerConfig(level=level, max_len=max_len))
    ids = vocab.encode(text)
    assert 1 <= len(ids) <= max_len
    assert all(0 < i < len(vocab) for i in ids)  # never PAD inside a text
    assert len(vocab.tokenize(text)) == len(ids)
