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
import threading
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import sparse  # type: ignore[import-untyped]

PATH = Path(__file__).with_name("data") / "minilm_static.npz"
DIMENSIONS = 128
_MAX_WORD = 100
# Words whose vector is kept ready; past this many the cache starts afresh (at most 34 MB).
_WORD_CACHE = 50_000
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


class _WordVectors:
    """Per word, the sum of its pieces' vectors, as a row of one growing matrix.

    Row 0 is zeros (a word without known pieces). Rows are only appended, and a word's row
    is written before the word is listed, so a reader that takes the matrix after looking
    its words up finds every row it needs, even while another thread adds words.
    """

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.matrix = np.zeros((1024, DIMENSIONS), dtype=np.float32)
        self.used = 1

    def add(self, words: list[str]) -> None:
        table = _table()
        for word in words:
            if word in self.rows:
                continue
            if self.used == len(self.matrix):
                grown = np.zeros((2 * len(self.matrix), DIMENSIONS), dtype=np.float32)
                grown[: self.used] = self.matrix[: self.used]
                self.matrix = grown
            pieces = _pieces(word)
            self.matrix[self.used] = table.vectors[list(pieces)].sum(axis=0) if pieces else 0.0
            self.rows[word] = self.used
            self.used += 1


_words = _WordVectors()
_lock = threading.Lock()


def embed(texts: list[str]) -> FloatArray:
    """(posts, DIMENSIONS) unit-length mean piece vectors of lowercased texts; zeros for posts
    without known pieces."""
    global _words
    found = [_WORDS.findall(text) for text in texts]
    flat = [word for words in found for word in words]
    cached = _words
    rows = [cached.rows.get(word, -1) for word in flat]
    if -1 in rows:
        with _lock:
            if len(_words.rows) > _WORD_CACHE:
                _words = _WordVectors()
            cached = _words
            cached.add([word for word in flat if word not in cached.rows])
        rows = [cached.rows[word] for word in flat]
    if not flat:
        return np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
    counts = np.fromiter(map(len, found), dtype=np.int64, count=len(found))
    # Posts x cached words, times the word vectors: sums without a (words, DIMENSIONS) copy.
    pointers = np.concatenate(([0], np.cumsum(counts)))
    columns = np.array(rows, dtype=np.int64)
    # Read after the rows were looked up, so it holds all of them (see _WordVectors).
    matrix = cached.matrix
    width = int(columns.max()) + 1
    ones = np.ones(len(columns), dtype=np.float32)
    words = sparse.csr_matrix((ones, columns, pointers), shape=(len(texts), width))
    sums = np.asarray(words @ matrix[:width])
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.where(norms > 0, norms, 1.0)).astype(np.float32)


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
