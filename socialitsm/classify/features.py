"""Hashed word and character n-grams of a whole batch of posts, computed with numpy.

Every post of a batch is laid end to end in one array of code points; word tokens, word
(1-2)-grams and character (2-5)-grams are hashed there with vectorised polynomial hashes, so
the cost per post is a few array operations rather than a Python loop over its n-grams. The
hashes are fixed (no per-process seed), so a model trained on one machine scores the same on
another.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

BUCKETS = 1 << 20  # a power of two (see _mix)
CHAR_SIZES = (2, 3, 4, 5)
# Odd multipliers: odd numbers are invertible modulo 2**64, which the token hash relies on.
_BASE = 0x100000001B3
_BASE_INVERSE = pow(_BASE, -1, 1 << 64)
_SEEDS = {"word": 0x9E3779B97F4A7C15, "pair": 0xC2B2AE3D27D4EB4F, "char": 0x165667B19E3779F9}
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_SHIFT_27, _SHIFT_30, _SHIFT_31 = np.uint64(27), np.uint64(30), np.uint64(31)
_BUCKET_MASK = np.uint64(BUCKETS - 1)
_APOSTROPHE = ord("'")
_BMP = 0x10000

IntArray = npt.NDArray[np.int64]
HashArray = npt.NDArray[np.uint64]


@dataclass(frozen=True, slots=True)
class Grams:
    """Hashed n-gram occurrences of a batch: one entry per occurrence, grouped by kind.

    `doc` is the post index in the batch, `bucket` the feature index in [0, BUCKETS), and
    `token` the index (into `Batch.spans`) of the word the occurrence belongs to, which is
    what reasons name, or -1 for word pairs and character windows that span two words.
    """

    doc: IntArray
    bucket: IntArray
    token: IntArray


@dataclass(frozen=True, slots=True)
class Batch:
    joined: str
    words: Grams
    chars: Grams
    spans: IntArray  # (n_tokens, 2) start/end offsets of each token in `joined`
    token_doc: IntArray
    size: int


def grams(lowered: list[str]) -> Batch:
    """Hash the n-grams of lowercased, whitespace-normalised posts."""
    # Each post gets a leading and trailing space so character n-grams see word edges.
    joined = "".join(f" {text} " for text in lowered)
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    lengths = np.fromiter((len(text) + 2 for text in lowered), dtype=np.int64, count=len(lowered))
    doc_of = np.repeat(np.arange(len(lowered), dtype=np.int64), lengths)
    with np.errstate(over="ignore"):
        powers, inverse = _powers(len(codes))
        prefix = np.concatenate(([np.uint64(0)], np.cumsum(codes * powers, dtype=np.uint64)))
        spans, token_of = _tokens(codes, doc_of)
        words = _word_grams(prefix, inverse, spans, doc_of)
        chars = _char_grams(prefix, inverse, doc_of, token_of)
    return Batch(joined, words, chars, spans, doc_of[spans[:, 0]], len(lowered))


# The largest table kept between batches (2 MB a table): ordinary batches of posts fit, while a
# batch of unusually long posts computes its tables and lets them go, so memory stays bounded.
_CACHED_CAPACITY = 1 << 18


def _powers(size: int) -> tuple[HashArray, HashArray]:
    # Tables are cached by size rounded up to a power of two, so batches share a few of them.
    capacity = 1 << max(size - 1, 1).bit_length()
    if capacity > _CACHED_CAPACITY:
        return _power_series(_BASE, size), _power_series(_BASE_INVERSE, size)
    base, inverse = _power_table(capacity)
    return base[:size], inverse[:size]


@cache
def _power_table(capacity: int) -> tuple[HashArray, HashArray]:
    return _power_series(_BASE, capacity), _power_series(_BASE_INVERSE, capacity)


def _power_series(base: int, size: int) -> HashArray:
    out = np.empty(size, dtype=np.uint64)
    out[0] = 1
    step = 1
    with np.errstate(over="ignore"):
        # Doubling: out[k:2k] = out[0:k] * base**k, all modulo 2**64.
        while step < size:
            block = min(step, size - step)
            out[step : step + block] = out[:block] * np.uint64(pow(base, step, 1 << 64))
            step += block
    return out


@cache
def _word_table() -> npt.NDArray[np.bool_]:
    table = np.fromiter((chr(code).isalnum() for code in range(_BMP)), dtype=np.bool_, count=_BMP)
    table[_APOSTROPHE] = True
    return table


def _tokens(codes: HashArray, doc_of: IntArray) -> tuple[IntArray, IntArray]:
    """Token spans and, per code point, the token it belongs to (-1 for spaces).

    A token is a run of letters, digits and apostrophes, or any other single visible
    character (punctuation, emoji), so ":(" yields the tokens ":" and "(".
    """
    small = codes < _BMP
    wordy = np.zeros(len(codes), dtype=np.bool_)
    wordy[small] = _word_table()[codes[small].astype(np.int64)]
    space = codes == ord(" ")
    previous_wordy = np.concatenate(([False], wordy[:-1]))
    same_doc = np.concatenate(([False], doc_of[1:] == doc_of[:-1]))
    starts = ~space & ~(wordy & previous_wordy & same_doc)
    token_of = np.cumsum(starts) - 1
    token_of[space] = -1
    start_at = np.flatnonzero(starts)
    ends = np.empty_like(start_at)
    if len(start_at):
        # A token ends where the next token or a space begins.
        boundary = np.flatnonzero(starts | space)
        ends = boundary[np.searchsorted(boundary, start_at, side="right")]
    return np.stack([start_at, ends], axis=1).astype(np.int64), token_of.astype(np.int64)


def _window_hash(prefix: HashArray, inverse: HashArray, start: IntArray, end: IntArray) -> HashArray:
    """Polynomial hash of codes[start:end], independent of where the window sits."""
    return (prefix[end] - prefix[start]) * inverse[start]


def _mix(values: HashArray, seed: int) -> IntArray:
    """splitmix64 finaliser, reduced to a bucket (BUCKETS is a power of two: a mask, not a division)."""
    z = values ^ np.uint64(seed)
    z ^= z >> _SHIFT_30
    z *= _MIX_1
    z ^= z >> _SHIFT_27
    z *= _MIX_2
    z ^= z >> _SHIFT_31
    z &= _BUCKET_MASK
    return z.astype(np.int64)


def _word_grams(prefix: HashArray, inverse: HashArray, spans: IntArray, doc_of: IntArray) -> Grams:
    if not len(spans):
        empty = np.zeros(0, dtype=np.int64)
        return Grams(empty, empty, empty)
    hashes = _window_hash(prefix, inverse, spans[:, 0], spans[:, 1])
    token_doc = doc_of[spans[:, 0]]
    tokens = np.arange(len(spans), dtype=np.int64)
    pair = np.flatnonzero(token_doc[1:] == token_doc[:-1])
    pair_hashes = hashes[pair] * np.uint64(_BASE) + hashes[pair + 1]
    # Pairs are credited to no single word in the reasons (-1); each word has its own unigram.
    return Grams(
        doc=np.concatenate((token_doc, token_doc[pair])),
        bucket=np.concatenate((_mix(hashes, _SEEDS["word"]), _mix(pair_hashes, _SEEDS["pair"]))),
        token=np.concatenate((tokens, np.full(len(pair), -1, dtype=np.int64))),
    )


def _char_grams(prefix: HashArray, inverse: HashArray, doc_of: IntArray, token_of: IntArray) -> Grams:
    total = len(doc_of)
    sizes = np.array([size for size in CHAR_SIZES if size <= total], dtype=np.int64)
    if not len(sizes):
        empty = np.zeros(0, dtype=np.int64)
        return Grams(empty, empty, empty)
    # The token of a window's first and of its last non-space code point; a window is
    # credited to its word only when both are the same word (" vpn", not "s do").
    owner = token_of.copy()
    back = token_of.copy()
    if total > 1:
        owner[:-1] = np.where(owner[:-1] < 0, token_of[1:], owner[:-1])
        back[1:] = np.where(back[1:] < 0, token_of[:-1], back[1:])
    # Every window of every size at once, smallest size first: one pass of array operations.
    start = np.tile(np.arange(total, dtype=np.int64), len(sizes))
    size = np.repeat(sizes, total)
    end = start + size
    fits = end <= total
    start, size, end = start[fits], size[fits], end[fits]
    keep = (doc_of[start] == doc_of[end - 1]) & (owner[start] >= 0)
    start, size, end = start[keep], size[keep], end[keep]
    hashes = _window_hash(prefix, inverse, start, end)
    first, last = owner[start], back[end - 1]
    return Grams(
        doc_of[start],
        _mix(hashes + size.astype(np.uint64), _SEEDS["char"]),
        np.where(first == last, first, -1),
    )
