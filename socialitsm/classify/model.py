"""The trained complaint model: the fast first pass and the decision head that reads the encoder.

The fast model is a logistic regression over hashed n-grams and cue features. The head reads
the sentence encoder's vector of the post, its similarity to IT trouble, to everyday life outside
IT and to the catalogue, the fast model's cue features and the fast model's own logit
(`HEAD_FEATURES`) as two factors: whether the post is a complaint at all (its wording, tone and
meaning) and whether it is about a service this organisation runs (the catalogue, the reference
sentences and its meaning). A third small regression combines them into the decision, which
stands whenever the encoder is on.

A model is one `.npz` file (numpy arrays only, loaded with allow_pickle=False) holding, for the
word and character n-gram buckets that were frequent enough in training, their idf and
coefficient, the coefficients of the dense cue features, the head's standardisation and
coefficients, and a JSON metadata record (training command, data counts). The shipped model
sits next to this module; a model retrained from agents' feedback is written to
SOCIALITSM_MODEL_PATH and replaces it while that file exists.
"""

from __future__ import annotations

import json
import os
import threading
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from . import encoder
from .embedding import DIMENSIONS
from .features import BUCKETS, Batch, Grams

FORMAT = 3
SHIPPED_PATH = Path(__file__).with_name("model.npz")
# Dense features, in the order of the coefficient vector: named cues (pipeline._dense_row),
# then the static sentence vector (embedding.embed).
NAMED_FEATURES = (
    "vader",
    "textblob",
    "sarcastic_positive",
    "outage",
    "sarcasm",
    "frustration",
    "trouble",
    "repeat",
    "positive",
    "elsewhere",
    "mention",
    "url",
    "question",
    "exclamation",
    "shouting",
    "empty",
)
EMBEDDING_FEATURES = tuple(f"embedding_{i}" for i in range(DIMENSIONS))
DENSE_FEATURES = NAMED_FEATURES + EMBEDDING_FEATURES
# The head's inputs, in order (pipeline.head_matrix): what the post is close to, the fast model's
# verdict and cues, then the sentence encoder's vector.
HEAD_CONTEXT = (
    "it_similarity",
    "thanks_similarity",
    "off_topic_similarity",
    "catalogue_similarity",
    "alias",
    "fast_logit",
)
ENCODER_FEATURES = tuple(f"encoder_{i}" for i in range(encoder.DIMENSIONS))
HEAD_FEATURES = HEAD_CONTEXT + NAMED_FEATURES + ENCODER_FEATURES
# What each factor reads. Whether a post is a complaint at all comes from its wording, its tone
# and its meaning, never from what it is about; whether it is about a service this organisation
# runs comes from the catalogue, the reference sentences and its meaning, never from its tone.
COMPLAINT_FEATURES = ("fast_logit", *NAMED_FEATURES, *ENCODER_FEATURES)
RELEVANCE_FEATURES = (
    "it_similarity",
    "thanks_similarity",
    "off_topic_similarity",
    "catalogue_similarity",
    "alias",
    "elsewhere",
    *ENCODER_FEATURES,
)
COMBINATION = ("complaint", "relevance", "least")
# How often a worker looks at the retrained model's file for a newer version.
RELOAD_CHECK_SECONDS = 2.0

FloatArray = npt.NDArray[np.float32]


class ModelError(ValueError):
    """A model file that is missing, unreadable or of another format."""


@dataclass(frozen=True, slots=True)
class Block:
    """One n-gram kind: per bucket, coefficient x idf (the score) and idf squared (the norm)."""

    weight: FloatArray
    norm: FloatArray

    @classmethod
    def from_sparse(cls, index: npt.NDArray[Any], idf: FloatArray, coef: FloatArray) -> Block:
        weight = np.zeros(BUCKETS, dtype=np.float32)
        norm = np.zeros(BUCKETS, dtype=np.float32)
        weight[index] = coef * idf
        norm[index] = idf * idf
        return cls(weight, norm)

    def contributions(self, grams: Grams, size: int) -> tuple[FloatArray, FloatArray]:
        """Per post logit share, and per occurrence share (for naming the words that mattered)."""
        if not len(grams.doc):
            return np.zeros(size, dtype=np.float32), np.zeros(0, dtype=np.float32)
        norms = np.sqrt(np.bincount(grams.doc, weights=self.norm[grams.bucket], minlength=size))
        norms[norms == 0] = 1.0
        each = self.weight[grams.bucket] / norms[grams.doc]
        return np.bincount(grams.doc, weights=each, minlength=size).astype(np.float32), each.astype(np.float32)


@dataclass(frozen=True, slots=True)
class Scores:
    logits: FloatArray
    dense: FloatArray  # (posts, features) per feature logit share
    token: FloatArray  # per token logit share, indexed like Batch.spans


@dataclass(frozen=True, slots=True)
class Factors:
    """One post's two factors and the decision that combines them, as logits."""

    complaint: FloatArray  # (posts,) a complaint at all, about anything
    relevance: FloatArray  # (posts,) about a service this organisation runs
    decision: FloatArray  # (posts,)
    # (posts,) how much the decision's logit rose because the post was addressed to us (0 if not)
    addressed: FloatArray | None = None


# A post addressed to our own account (a mention of it, a direct message to it) is about a
# service we run whatever its words say: its relevance counts at least this logit (p = 0.9).
# The post must still be a complaint: a thank-you or a question sent to us is none.
ADDRESSED_RELEVANCE = 2.2


@dataclass(frozen=True, slots=True)
class Head:
    """Two logistic regressions over standardised HEAD_FEATURES (each reads only its own
    inputs, `COMPLAINT_FEATURES` and `RELEVANCE_FEATURES`; the others' coefficients are 0), and
    the decision: a logistic regression over their logits and the smaller of the two
    (`COMBINATION`), so a post must be both a complaint and about our IT."""

    mean: FloatArray
    scale: FloatArray
    complaint_coef: FloatArray
    complaint_bias: float
    relevance_coef: FloatArray
    relevance_bias: float
    combine: FloatArray  # (3,) weights of complaint, relevance, min(complaint, relevance)
    combine_bias: float

    def factors(
        self, features: FloatArray, addressed: npt.NDArray[np.bool_] | None = None
    ) -> tuple[Factors, FloatArray]:
        """Per post the factors' and decision's logits, and per post and feature its share of the
        decision's logit (each factor's shares times that factor's average weight in the decision).
        Posts `addressed` to us (True) have a relevance of at least ADDRESSED_RELEVANCE."""
        scaled = (features - self.mean) / self.scale
        complaint_shares = scaled * self.complaint_coef
        relevance_shares = scaled * self.relevance_coef
        complaint = self.complaint_bias + complaint_shares.sum(axis=1)
        relevance = self.relevance_bias + relevance_shares.sum(axis=1)
        decision = self.decide(complaint, relevance)
        lift = None
        if addressed is not None:
            relevance = np.where(addressed, np.maximum(relevance, ADDRESSED_RELEVANCE), relevance)
            raised = self.decide(complaint, relevance)
            lift, decision = (raised - decision).astype(np.float32), raised
        # The smaller factor's terms move the decision more; the shares credit each factor with its
        # weight on average over both cases, so a strong factor's cues are still named in reasons.
        through_complaint = self.combine[0] + self.combine[2] / 2
        through_relevance = self.combine[1] + self.combine[2] / 2
        shares = complaint_shares * through_complaint + relevance_shares * through_relevance
        factors = Factors(complaint.astype(np.float32), relevance.astype(np.float32), decision.astype(np.float32), lift)
        return factors, shares.astype(np.float32)

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any]) -> Head:
        """The head from a model's arrays (a loaded .npz, or those training has just fitted)."""
        return cls(
            arrays["head_mean"].astype(np.float32),
            arrays["head_scale"].astype(np.float32),
            arrays["complaint_coef"].astype(np.float32),
            float(arrays["complaint_bias"]),
            arrays["relevance_coef"].astype(np.float32),
            float(arrays["relevance_bias"]),
            arrays["combine_coef"].astype(np.float32),
            float(arrays["combine_bias"]),
        )

    def decide(self, complaint: FloatArray, relevance: FloatArray) -> FloatArray:
        """The decision's logits from the two factors' logits."""
        least = np.minimum(complaint, relevance)
        return self.combine_bias + self.combine[0] * complaint + self.combine[1] * relevance + self.combine[2] * least

    def score(self, features: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Per post the decision's logit, and per post and feature its share of it."""
        factors, shares = self.factors(features)
        return factors.decision, shares

    def weight(self, name: str) -> float:
        """How much one unit of a feature moves the decision's logit, on average over the factors
        that read it (for naming the fast model's words in the decision's units)."""
        index = HEAD_FEATURES.index(name)
        total = (self.combine[0] + self.combine[2] / 2) * self.complaint_coef[index]
        total += (self.combine[1] + self.combine[2] / 2) * self.relevance_coef[index]
        return float(total / self.scale[index])


@dataclass(frozen=True, slots=True)
class Model:
    words: Block
    chars: Block
    dense: FloatArray
    bias: float
    head: Head
    meta: Mapping[str, Any] = field(default_factory=dict)

    def score(self, batch: Batch, dense: FloatArray) -> Scores:
        word_doc, word_each = self.words.contributions(batch.words, batch.size)
        char_doc, char_each = self.chars.contributions(batch.chars, batch.size)
        dense_share = dense * self.dense
        logits = self.bias + word_doc + char_doc + dense_share.sum(axis=1)
        tokens = len(batch.spans)
        token = np.zeros(tokens, dtype=np.float64)
        for grams, each in ((batch.words, word_each), (batch.chars, char_each)):
            credited = grams.token >= 0
            token += np.bincount(grams.token[credited], weights=each[credited], minlength=tokens)
        return Scores(logits.astype(np.float32), dense_share.astype(np.float32), token.astype(np.float32))


def save(path: Path, arrays: Mapping[str, npt.NDArray[Any]], meta: Mapping[str, Any]) -> None:
    """Write a model as an .npz, byte for byte the same for the same inputs, and atomically,
    so a worker never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    record = {
        **meta,
        "format": FORMAT,
        "dense_features": list(DENSE_FEATURES),
        "head_features": list(HEAD_FEATURES),
    }
    members = {"meta": np.array(json.dumps(record, sort_keys=True)), **arrays}
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(members):
            # A fixed timestamp: np.savez stamps the current time, which would change every build.
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as member:
                np.lib.format.write_array(member, np.asarray(members[name]), allow_pickle=False)
    tmp.replace(path)


def load(path: Path) -> Model:
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if (
                meta.get("format") != FORMAT
                or tuple(meta.get("dense_features", ())) != DENSE_FEATURES
                or tuple(meta.get("head_features", ())) != HEAD_FEATURES
            ):
                raise ModelError(f"{path}: model format {meta.get('format')} does not match this code")
            head = Head.from_arrays(data)
            width = (len(HEAD_FEATURES),)
            if (
                not head.mean.shape
                == head.scale.shape
                == head.complaint_coef.shape
                == head.relevance_coef.shape
                == width
            ):
                raise ModelError(f"{path}: the decision head does not have {len(HEAD_FEATURES)} features")
            if head.combine.shape != (len(COMBINATION),):
                raise ModelError(f"{path}: the decision does not combine {len(COMBINATION)} terms")
            return Model(
                words=Block.from_sparse(data["word_index"], data["word_idf"], data["word_coef"]),
                chars=Block.from_sparse(data["char_index"], data["char_idf"], data["char_coef"]),
                dense=data["dense_coef"].astype(np.float32),
                bias=float(data["bias"]),
                head=head,
                meta=meta,
            )
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, ModelError):
            raise
        raise ModelError(f"{path}: not a readable model ({exc})") from exc


def configured_path() -> Path | None:
    """SOCIALITSM_MODEL_PATH from Django settings when configured, else from the environment."""
    from django.conf import settings

    from socialitsm.conf import conf

    value = conf.MODEL_PATH if settings.configured else os.environ.get("SOCIALITSM_MODEL_PATH")
    return Path(value) if value else None


class _Active:
    """The model in use: the retrained file while it exists, else the shipped one.

    Workers notice a newly trained file within RELOAD_CHECK_SECONDS (by path and mtime);
    a broken file is reported once per change and the previous model stays in use.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._model: Model | None = None
        self._key: tuple[str, int] | None = None
        self._checked = 0.0
        self.error: str | None = None

    def get(self) -> Model:
        model = self._model
        if model is not None and time.monotonic() - self._checked < RELOAD_CHECK_SECONDS:
            return model
        with self._lock:
            self._checked = time.monotonic()
            key = _current_key()
            if self._model is None or key != self._key:
                self._swap(key)
            assert self._model is not None
            return self._model

    def _swap(self, key: tuple[str, int]) -> None:
        try:
            self._model = load(Path(key[0]))
            self.error = None
        except ModelError as exc:
            self.error = str(exc)
            if self._model is None:
                self._model = load(SHIPPED_PATH)
        self._key = key

    def reset(self) -> None:
        with self._lock:
            self._model, self._key, self._checked, self.error = None, None, 0.0, None


def _current_key() -> tuple[str, int]:
    path = configured_path()
    if path is not None:
        try:
            return str(path), path.stat().st_mtime_ns
        except OSError:
            pass
    return str(SHIPPED_PATH), 0


active = _Active()
