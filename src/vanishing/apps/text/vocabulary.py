"""The vocabulary: tokens to integer ids, with its tokenising settings, saved as JSON.

Ids 0 and 1 are the padding token PAD ("<pad>", what a padded batch holds past each text's
end) and the unknown token UNK ("<unk>", any token not in the vocabulary). The other tokens
are those of the training texts seen at least ``min_count`` times, the most frequent first,
ties broken by the token's code points (Python's string order), so the same texts always give
the same ids; ``max_size`` (counting PAD and UNK) keeps the first of that order. Texts longer
than ``max_len`` tokens lose their end (``truncate="end"``, keep the beginning) or their start
(``truncate="start"``, keep the end). A text with no token after normalising becomes [UNK], so
every encoded text has at least one step.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import Tensor

from vanishing.apps.text.errors import TextDataError
from vanishing.apps.text.tokenize import LEVELS, tokenize

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
TRUNCATE = ("end", "start")
"""Which side of a long text is cut (the choices of a --truncate option)."""

FILE_FORMAT, FILE_VERSION = "vanishing.text.vocabulary", 1


@dataclass(frozen=True)
class TokenizerConfig:
    """How texts become token ids.

    level: "word" or "char" (tokenize.py); lowercase: case-fold before splitting;
    min_count: a token enters the vocabulary if the training texts hold it this often;
    max_size: at most this many ids, PAD and UNK included (None: no limit); max_len: at most
    this many tokens per text (None: no limit); truncate: the side cut from a longer text.
    """

    level: str = "word"
    lowercase: bool = True
    min_count: int = 1
    max_size: int | None = None
    max_len: int | None = 400
    truncate: str = "end"

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {self.level!r}")
        if self.truncate not in TRUNCATE:
            raise ValueError(f"truncate must be one of {TRUNCATE}, got {self.truncate!r}")
        if not isinstance(self.lowercase, bool):
            raise TypeError(f"lowercase must be a bool, got {self.lowercase!r}")
        for name, low, optional in (
            ("min_count", 1, False),
            ("max_size", 3, True),
            ("max_len", 1, True),
        ):
            value = getattr(self, name)
            if value is None and optional:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int{' or None' * optional}, got {value!r}")
            if value < low:
                raise ValueError(f"{name} must be >= {low}, got {value}")

    @classmethod
    def from_dict(cls, values: Mapping[str, object]) -> TokenizerConfig:
        """A config from a mapping; unknown keys raise a ValueError naming the known ones."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown TokenizerConfig keys {unknown}; expected some of {known}")
        return cls(**values)  # type: ignore[arg-type]


class Vocabulary:
    """Token <-> id maps and the settings that produced them (build one with ``build``)."""

    def __init__(self, tokens: list[str], config: TokenizerConfig, counts: list[int]) -> None:
        if tokens[:2] != [PAD, UNK]:
            raise ValueError(f"tokens must start with {[PAD, UNK]}, got {tokens[:2]}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("tokens must be distinct")
        if len(counts) != len(tokens):
            raise ValueError(
                f"need one count per token: {len(counts)} counts, {len(tokens)} tokens"
            )
        self.tokens = list(tokens)  # id -> token
        self.counts = list(counts)  # id -> occurrences in the training texts (0 for PAD, UNK)
        self.config = config
        self.ids = {token: i for i, token in enumerate(self.tokens)}  # token -> id

    @classmethod
    def build(cls, texts: Iterable[str], config: TokenizerConfig | None = None) -> Vocabulary:
        """The vocabulary of ``texts`` (the training part) under ``config``."""
        config = config or TokenizerConfig()
        counts: Counter[str] = Counter()
        n = 0
        for text in texts:
            counts.update(_truncate(tokenize(text, config.level, config.lowercase), config))
            n += 1
        if n == 0:
            raise ValueError("cannot build a vocabulary from no texts")
        kept = sorted(
            (t for t, c in counts.items() if c >= config.min_count and t not in (PAD, UNK)),
            key=lambda t: (-counts[t], t),
        )
        if not kept:
            raise ValueError(f"no token occurs min_count={config.min_count} times in the {n} texts")
        if config.max_size is not None:
            kept = kept[: config.max_size - 2]
        return cls([PAD, UNK, *kept], config, [0, 0, *(counts[t] for t in kept)])

    def __len__(self) -> int:
        return len(self.tokens)

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text`` the model sees, truncated; [UNK] if there are none."""
        tokens = _truncate(tokenize(text, self.config.level, self.config.lowercase), self.config)
        return tokens or [UNK]

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``'s tokens (UNK_ID for unknown ones): 1 to max_len of them."""
        return [self.ids.get(token, UNK_ID) for token in self.tokenize(text)]

    def encode_all(self, texts: Iterable[str]) -> list[list[int]]:
        """``encode`` of each text."""
        return [self.encode(text) for text in texts]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The tokens of ``ids``; an IndexError for an id outside the vocabulary."""
        return [self.tokens[i] for i in ids]

    def to_dict(self) -> dict[str, object]:
        """The JSON-ready form that ``save`` writes."""
        return {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "config": asdict(self.config),
            "tokens": self.tokens,
            "counts": self.counts,
        }

    def save(self, path: str | Path) -> None:
        """Write the vocabulary and its settings as JSON, atomically (no half-written file)."""
        path = Path(path)
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=1)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o644)  # mkstemp's 0600 would leave the file unreadable to others
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        """A vocabulary written by ``save``; anything else is one TextDataError naming the file."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TextDataError(f"{path}: no such vocabulary file") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise TextDataError(f"{path}: not a vocabulary file (not valid JSON: {e})") from None
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: object, source: str = "vocabulary") -> Vocabulary:
        """The vocabulary of ``to_dict``'s form (a saved model keeps it so); anything else is
        one TextDataError naming ``source``."""
        if not isinstance(data, dict) or data.get("format") != FILE_FORMAT:
            raise TextDataError(
                f"{source}: not a vocabulary file (expected a JSON object with "
                f'"format": "{FILE_FORMAT}")'
            )
        if data.get("version") != FILE_VERSION:
            raise TextDataError(
                f"{source}: vocabulary file version {data.get('version')!r}; this vanishing "
                f"reads version {FILE_VERSION}"
            )
        try:
            tokens, counts, config = data["tokens"], data["counts"], data["config"]
            if not isinstance(config, dict):
                raise TypeError(f"config must be an object, got {json.dumps(config)}")
            for name, items, kind in (("tokens", tokens, str), ("counts", counts, int)):
                if not isinstance(items, list) or not all(type(v) is kind for v in items):
                    raise TypeError(f"{name} must be a list of {kind.__name__}s")
            return cls(tokens, TokenizerConfig.from_dict(config), counts)
        except (KeyError, TypeError, ValueError) as e:
            raise TextDataError(f"{source}: corrupt vocabulary file: {e}") from None


def pad_batch(sequences: list[list[int]]) -> tuple[Tensor, Tensor]:
    """Encoded texts as one padded batch: ids (T, B) int64, PAD_ID past each end; lengths (B,).

    T is the longest length; ``lengths`` (int64, on the CPU) is what
    ``torch.nn.utils.rnn.pack_padded_sequence`` takes.
    """
    if not sequences or any(len(s) == 0 for s in sequences):
        raise ValueError("pad_batch needs at least one sequence, each of at least one id")
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)  # (B,)
    ids = torch.full((int(lengths.max()), len(sequences)), PAD_ID, dtype=torch.int64)  # (T, B)
    for b, sequence in enumerate(sequences):
        ids[: len(sequence), b] = torch.tensor(sequence, dtype=torch.int64)  # (T_b,)
    return ids, lengths


def _truncate(tokens: list[str], config: TokenizerConfig) -> list[str]:
    """At most max_len tokens: the first ones (truncate="end") or the last ones ("start")."""
    if config.max_len is None or len(tokens) <= config.max_len:
        return tokens
    return tokens[: config.max_len] if config.truncate == "end" else tokens[-config.max_len :]
