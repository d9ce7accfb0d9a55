"""Polarity from TextBlob's pattern lexicon and VADER, combined into one number."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

_VADER_WEIGHT = 0.6
_TEXTBLOB_WEIGHT = 0.4


@dataclass(frozen=True, slots=True)
class Polarity:
    combined: float
    textblob: float
    vader: float


@cache
def _vader() -> Any:
    # Imported lazily: loading the lexicons costs ~0.1 s and Django imports this module at startup.
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@cache
def _textblob() -> tuple[Callable[[list[str]], Any], re.Pattern[str]]:
    # The lexicon behind TextBlob's PatternAnalyzer, fed pre-split lowercase words: TextBlob's
    # find_tokens and the namedtuple class PatternAnalyzer.analyze builds on every call cost
    # more than the lexicon lookup itself. The token regex keeps TextBlob's own emoticons.
    from textblob._text import EMOTICONS
    from textblob.en import sentiment

    emoticons = sorted(
        {e.lower() for faces in EMOTICONS.values() for e in faces},
        key=len,
        reverse=True,
    )
    faces = "|".join(map(re.escape, emoticons))
    tokens = re.compile(rf"(?<!\S)(?:{faces})(?!\S)|\(!\)|[^\W_]+(?:-[^\W_]+)*|!")
    return sentiment, tokens


def _textblob_polarity(lowered: str) -> float:
    sentiment, tokens = _textblob()
    return float(sentiment(tokens.findall(lowered))[0])


def polarity(text: str) -> Polarity:
    """Return TextBlob polarity, VADER compound and their weighted combination, all in [-1, 1]."""
    if not text:
        return Polarity(0.0, 0.0, 0.0)
    textblob = _textblob_polarity(text.lower())
    vader = float(_vader().polarity_scores(text)["compound"])
    return Polarity(_combine(textblob, vader), textblob, vader)


def _combine(textblob: float, vader: float) -> float:
    # A zero from either tool usually means "no lexicon word seen", so it should not dilute the other.
    parts = [(w, v) for w, v in ((_TEXTBLOB_WEIGHT, textblob), (_VADER_WEIGHT, vader)) if v]
    if not parts:
        return 0.0
    value = sum(w * v for w, v in parts) / sum(w for w, _ in parts)
    return max(-1.0, min(1.0, value))
