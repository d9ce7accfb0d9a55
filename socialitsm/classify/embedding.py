"""Static sentence vectors: the mean of MiniLM word-piece vectors distilled once (no transformer).

`scripts/distil_minilm.py` ran every word piece of all-MiniLM-L6-v2's vocabulary through the
model alone and kept 128 PCA dimensions as int8 (data/minilm_static.npz). Here a post's words
are split into those pieces the way BERT's uncased WordPiece does (accents stripped, longest
known prefix first, "##" for the rest) and their vectors averaged. They carry some meaning
beyond the exact n-grams seen in training ("laggy" lands near "slow"), for a table look-up per
word. The vocabulary is English; other languages mostly fall back to sub-word pieces.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

PATH = Path(__file__).with_name("data") / "minilm_static.npz"
DIMENSIONS = 128
_MAX_WORD = 100
_WORD_CACHE = 200_000
# BERT's pre-tokenisation: runs of letters and digits, and every other visible character alone.
_WORDS = re.compile(r"[^\W_]+|[^\w\s]|_")

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class _Table:
    ids: dict[str, int]
    vectors: FloatArray


@cache
def _table() -> _Table:
    with np.load(PATH, allow_pickle=False) as data:
        vocab = data["vocab"].tolist()
        vectors = data["vectors"].astype(np.float32) * data["scale"]
    return _Table({piece: i for i, piece in enumerate(vocab)}, vectors.astype(np.float32))


def embed(texts: list[str]) -> FloatArray:
    """(posts, DIMENSIONS) unit-length mean piece vectors of lowercased texts; zeros for posts
    without known pieces."""
    table = _table()
    out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
    ids: list[int] = []
    docs: list[int] = []
    for doc, text in enumerate(texts):
        for word in _WORDS.findall(text):
            pieces = _pieces(word)
            ids.extend(pieces)
            docs.extend([doc] * len(pieces))
    if not ids:
        return out
    doc_of = np.array(docs, dtype=np.int64)
    vectors = table.vectors[np.array(ids, dtype=np.int64)]
    # Tokens come in post order, so each post's pieces are one run.
    starts = np.flatnonzero(np.concatenate(([True], doc_of[1:] != doc_of[:-1])))
    sums = np.add.reduceat(vectors, starts, axis=0)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    out[doc_of[starts]] = sums / np.where(norms > 0, norms, 1.0)
    return out


@lru_cache(maxsize=_WORD_CACHE)
def _pieces(word: str) -> tuple[int, ...]:
    """Word-piece ids of one lowercased word; unknown words give none."""
    ids = _table().ids
    plain = "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")
    return tuple(_word_pieces(plain, ids))


def _word_pieces(word: str, ids: dict[str, int]) -> list[int]:
    if len(word) > _MAX_WORD:
        return []
    pieces: list[int] = []
    start = 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in ids:
                pieces.append(ids[piece])
                break
            end -= 1
        else:
            return []  # BERT reads the whole word as [UNK]: nothing to add
        start = end
    return pieces
