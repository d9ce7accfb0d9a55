"""From raw texts to the model's inputs; shared by scoring and training."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .catalogue import Matcher, ServiceMatch
from .embedding import embed
from .features import Batch, grams
from .model import DENSE_FEATURES, NAMED_FEATURES, FloatArray
from .rules import Hit, scan
from .sentiment import Polarities, polarities
from .text import Clean, normalise

RULE_KINDS = ("outage", "sarcasm", "frustration", "trouble", "repeat", "positive")
# Cues counted per kind are capped so a post that repeats "down" 1,000 times is not 1,000 times surer.
_MAX_CUES_PER_KIND = 3
_SHOUTING = re.compile(r"\b[A-Z]{4,}\b")
_INDEX = {name: i for i, name in enumerate(DENSE_FEATURES)}


@dataclass(frozen=True, slots=True)
class Prepared:
    """What is known about one post, apart from its n-grams and polarity, before scoring."""

    clean: Clean
    hits: tuple[Hit, ...]
    service: ServiceMatch | None
    dense: list[float]

    @property
    def sarcastic(self) -> bool:
        return any(hit.kind == "sarcasm" for hit in self.hits)


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    posts: list[Prepared]
    grams: Batch
    polarity: Polarities
    dense: FloatArray  # (posts, DENSE_FEATURES)


def prepare(text: object, matcher: Matcher) -> Prepared:
    clean = normalise(text)
    hits = tuple(scan(clean.lowered, clean.tags))
    service = matcher.find(clean.text, clean.lowered) if clean.text else None
    return Prepared(clean, hits, service, _dense_row(clean, hits))


def prepare_many(texts: Iterable[object], matcher: Matcher, languages: Sequence[str | None] = ()) -> PreparedBatch:
    """Prepared posts, their hashed n-grams, their polarity and their dense feature matrix.

    `languages` holds an ISO code or None per text, or is empty when no language is known.
    """
    posts = [prepare(text, matcher) for text in texts]
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
