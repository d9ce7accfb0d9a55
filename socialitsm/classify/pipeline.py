"""From raw texts to the model's inputs; shared by scoring and training."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from . import encoder, semantic
from .catalogue import Matcher, ServiceEntry, ServiceMatch, matcher_for
from .embedding import embed
from .features import Batch, grams
from .model import DENSE_FEATURES, NAMED_FEATURES, FloatArray
from .reference import REFERENCE_CATALOGUE
from .rules import Hit, scan
from .sentiment import Polarities, polarities
from .text import Clean, normalise

RULE_KINDS = ("outage", "sarcasm", "frustration", "trouble", "repeat", "positive", "elsewhere")
# Cues counted per kind are capped so a post that repeats "down" 1,000 times is not 1,000 times surer.
_MAX_CUES_PER_KIND = 3
_SHOUTING = re.compile(r"\b[A-Z]{4,}\b")
_INDEX = {name: i for i, name in enumerate(DENSE_FEATURES)}
# The fast model's logit enters the head clipped: past this it says nothing more.
_FAST_LOGIT_CAP = 8.0


@dataclass(frozen=True, slots=True)
class Prepared:
    """What is known about one post, apart from its n-grams and polarity, before scoring."""

    clean: Clean
    hits: tuple[Hit, ...]
    service: ServiceMatch | None
    dense: list[float]
    lang: str | None = None

    @property
    def sarcastic(self) -> bool:
        return any(hit.kind == "sarcasm" for hit in self.hits)


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    posts: list[Prepared]
    grams: Batch
    polarity: Polarities
    dense: FloatArray  # (posts, DENSE_FEATURES)


def prepare(text: object, matcher: Matcher, lang: str | None = None) -> Prepared:
    clean = normalise(text)
    # A provider the organisation lists in its catalogue (its own Zoom, its AWS) is its service.
    hits = tuple(
        hit for hit in scan(clean.lowered, clean.tags) if hit.kind != "elsewhere" or not matcher.names(hit.cue)
    )
    service = matcher.find(clean.text, clean.lowered, lang) if clean.text else None
    return Prepared(clean, hits, service, _dense_row(clean, hits), lang)


def prepare_many(texts: Iterable[object], matcher: Matcher, languages: Sequence[str | None] = ()) -> PreparedBatch:
    """Prepared posts, their hashed n-grams, their polarity and their dense feature matrix.

    `languages` holds an ISO code or None per text, or is empty when no language is known.
    """
    posts = [prepare(text, matcher, languages[i] if i < len(languages) else None) for i, text in enumerate(texts)]
    batch = grams([post.clean.lowered for post in posts])
    mood = polarities(batch, languages)
    dense = np.array([post.dense for post in posts], dtype=np.float32).reshape(len(posts), len(DENSE_FEATURES))
    dense[:, _INDEX["vader"]] = mood.vader
    dense[:, _INDEX["textblob"]] = mood.textblob
    sarcastic = (dense[:, _INDEX["sarcasm"]] > 0) & (mood.sentiment > 0)
    dense[:, _INDEX["sarcastic_positive"]] = np.where(sarcastic, mood.sentiment, 0.0)
    dense[:, len(NAMED_FEATURES) :] = embed([f"{post.clean.lowered} {post.clean.handles}" for post in posts])
    return PreparedBatch(posts, batch, mood, dense)


def _dense_row(clean: Clean, hits: tuple[Hit, ...]) -> list[float]:
    """The features known per post; polarity columns are filled for the whole batch."""
    row = [0.0] * len(DENSE_FEATURES)
    counts = dict.fromkeys(RULE_KINDS, 0)
    for hit in hits:
        counts[hit.kind] += 1
    for kind, count in counts.items():
        row[_INDEX[kind]] = float(min(count, _MAX_CUES_PER_KIND))
    text = clean.text
    row[_INDEX["mention"]] = float(clean.mentions)
    row[_INDEX["url"]] = float(clean.urls)
    row[_INDEX["question"]] = float("?" in text)
    row[_INDEX["exclamation"]] = float("!" in text)
    row[_INDEX["shouting"]] = float(_SHOUTING.search(text) is not None)
    row[_INDEX["empty"]] = float(not text)
    return row


@dataclass(frozen=True, slots=True)
class Meaning:
    """What the sentence encoder makes of a batch of posts."""

    vectors: FloatArray  # (posts, encoder.DIMENSIONS) unit vectors
    readable: npt.NDArray[np.bool_]  # whether the encoder knew any word piece of the post
    it: FloatArray  # best similarity to IT-trouble sentences
    thanks: FloatArray  # best similarity to thanks, questions and notices about IT
    off: FloatArray  # best similarity to everyday-life sentences outside IT
    services: semantic.ServiceVectors  # the catalogue passed in (possibly empty)
    similarity: FloatArray  # (posts, services) best similarity per catalogue service
    matched: npt.NDArray[np.int64]  # (posts, services) the service text that gave it
    context: FloatArray  # best similarity to the catalogue the head reads
    alias: FloatArray  # 1.0 where that catalogue's names occur in the post


def understand(posts: Sequence[Prepared], catalogue: Sequence[ServiceEntry]) -> Meaning:
    """Encode the posts and compare them with the catalogue and the fixed reference sentences.

    The head reads the similarity to the catalogue passed in, or to the default catalogue when
    none is (training, and classifying without a database), so it always sees an IT catalogue.
    """
    vectors, readable = encoder.read([post.clean.text for post in posts])
    it, thanks, off = semantic.anchor_similarities(vectors)
    services = semantic.service_vectors(catalogue)
    similarity, matched = services.similarities(vectors)
    if len(services.slugs):
        context = similarity.max(axis=1)
        alias = np.array([post.service is not None for post in posts], dtype=np.float32)
    else:
        reference, _ = semantic.service_vectors(REFERENCE_CATALOGUE).similarities(vectors)
        context = reference.max(axis=1)
        matcher = matcher_for(REFERENCE_CATALOGUE)
        alias = np.array(
            [
                bool(post.clean.text) and matcher.find(post.clean.text, post.clean.lowered, post.lang) is not None
                for post in posts
            ],
            dtype=np.float32,
        )
    return Meaning(vectors, readable, it, thanks, off, services, similarity, matched, context.astype(np.float32), alias)


def head_matrix(batch: PreparedBatch, meaning: Meaning, fast_logits: npt.NDArray[np.floating]) -> FloatArray:
    """The head's inputs (model.HEAD_FEATURES) for a batch."""
    fast = np.clip(np.asarray(fast_logits, dtype=np.float32), -_FAST_LOGIT_CAP, _FAST_LOGIT_CAP)
    context = np.stack([meaning.it, meaning.thanks, meaning.off, meaning.context, meaning.alias, fast], axis=1)
    named = batch.dense[:, : len(NAMED_FEATURES)].copy()
    # A link says nothing about whether a post is a complaint ("VPN down again <status page>"); in
    # the public tweets the head also learns from, links mostly mark news, which taught it otherwise.
    named[:, _INDEX["url"]] = 0.0
    return np.hstack([context, named, meaning.vectors]).astype(np.float32)
