"""Polarity from the VADER and TextBlob (pattern) lexicons, for a whole batch at once.

Both lexicons are hashed into the model's word buckets once; a post's polarity is then a few
array operations over its tokens instead of a run of VADER's and TextBlob's per-post Python
(which cost more than everything else in the classifier together). Kept from the originals:
VADER's valences, its normalisation of the sum (s / sqrt(s² + 15)) and its damped flip after a
negator within three words; TextBlob's averaging of word polarities and its halving flip after
a negator. Not kept: their punctuation, capitals and booster heuristics; the n-gram model sees
those. Both lexicons are English, so posts in another language get no polarity (their English
look-alikes mislead: German "die" is not dying); the language is the one given, or else the one
whose commonest words the post uses most.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from .features import BUCKETS, Batch, grams

_VADER_WEIGHT = 0.6
_TEXTBLOB_WEIGHT = 0.4
_VADER_ALPHA = 15.0
_VADER_NEGATION = -0.74
_TEXTBLOB_NEGATION = -0.5
_NEGATION_REACH = 3
_EXTRA_NEGATORS = ("cant", "dont", "doesnt", "didnt", "wont", "isnt", "wasnt", "aint", "without", "nothing")
# Frequent words that tell one language from the others (none shared between them).
_LANGUAGE_WORDS = {
    "en": "the is are and of to my it this that with for was not why can't don't again",
    "fr": "le la les est et des du une pas je ne pour avec sur mon ça c'est plus encore",
    "de": "der die das und ist nicht ich ein eine mit auf zu mein wir schon wieder kein geht",
    "es": "el los las y una por para con mi qué está del sin pero otra vez funciona",
}
_LANGUAGES = tuple(_LANGUAGE_WORDS)

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Polarities:
    """Per post of a batch, all in [-1, 1]."""

    combined: FloatArray
    textblob: FloatArray
    vader: FloatArray


@dataclass(frozen=True, slots=True)
class _Lexicon:
    vader: FloatArray  # valence per word bucket, 0 when unknown
    textblob: FloatArray
    textblob_known: npt.NDArray[np.bool_]
    negator: npt.NDArray[np.bool_]
    language: npt.NDArray[np.int8]  # 1 + index in _LANGUAGES of a telltale word, else 0


def polarities(batch: Batch, languages: Sequence[str | None] = ()) -> Polarities:
    """VADER compound, TextBlob polarity and their weighted combination for every post.

    `languages` holds an ISO code or None per post (or is empty: all unknown).
    """
    size = batch.size
    tokens = len(batch.spans)
    if not tokens:
        zeros = np.zeros(size, dtype=np.float32)
        return Polarities(zeros, zeros, zeros)
    lexicon = _lexicon()
    buckets = batch.words.bucket[:tokens]
    docs = batch.token_doc
    english = _english(lexicon.language[buckets], docs, size, languages)
    # Tokens of posts in other languages count for nothing.
    keep = english[docs]
    buckets, docs = buckets[keep], docs[keep]
    negated = _negated(lexicon.negator[buckets], docs)
    vader = lexicon.vader[buckets] * np.where(negated, _VADER_NEGATION, 1.0)
    total = np.bincount(docs, weights=vader, minlength=size)
    vader_compound = total / np.sqrt(total * total + _VADER_ALPHA)
    known = lexicon.textblob_known[buckets]
    textblob = lexicon.textblob[buckets] * np.where(negated, _TEXTBLOB_NEGATION, 1.0)
    counts = np.bincount(docs, weights=known, minlength=size)
    sums = np.bincount(docs, weights=textblob, minlength=size)
    textblob_mean = np.divide(sums, counts, out=np.zeros(size), where=counts > 0)
    return Polarities(
        _combine(textblob_mean, vader_compound).astype(np.float32),
        np.clip(textblob_mean, -1.0, 1.0).astype(np.float32),
        vader_compound.astype(np.float32),
    )


def _english(
    telltale: npt.NDArray[np.int8], docs: npt.NDArray[np.int64], size: int, languages: Sequence[str | None]
) -> npt.NDArray[np.bool_]:
    """Per post: English, or unknown and not clearly another language."""
    width = len(_LANGUAGES) + 1
    votes = np.bincount(docs * width + telltale.astype(np.int64), minlength=size * width).reshape(size, width)
    guessed = votes[:, 1] >= votes[:, 2:].max(axis=1)
    given = [_base_language(code) for code in languages] if languages else [None] * size
    return np.array(
        [guess if code is None else code == "en" for code, guess in zip(given, guessed.tolist(), strict=True)],
        dtype=np.bool_,
    )


def _base_language(code: str | None) -> str | None:
    """ "fr-FR" -> "fr"; None, "", "und" (undetermined) -> None."""
    base = (code or "").strip().lower().replace("_", "-").split("-")[0]
    return base if base and base != "und" else None


def _negated(negator: npt.NDArray[np.bool_], docs: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Tokens preceded by a negator of the same post within _NEGATION_REACH tokens."""
    out = np.zeros(len(negator), dtype=np.bool_)
    for step in range(1, _NEGATION_REACH + 1):
        if step >= len(negator):
            break
        out[step:] |= negator[:-step] & (docs[step:] == docs[:-step])
    return out


def _combine(textblob: npt.NDArray[np.float64], vader: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    # A zero from either tool usually means "no lexicon word seen", so it should not dilute the other.
    weights = _TEXTBLOB_WEIGHT * (textblob != 0) + _VADER_WEIGHT * (vader != 0)
    weighted = _TEXTBLOB_WEIGHT * textblob + _VADER_WEIGHT * vader
    value = np.divide(weighted, weights, out=np.zeros_like(weighted), where=weights > 0)
    return np.clip(value, -1.0, 1.0)


@cache
def _lexicon() -> _Lexicon:
    # Imported lazily: the lexicons take ~0.2 s to load and Django imports this module at startup.
    from textblob.en import sentiment as textblob_lexicon
    from vaderSentiment.vaderSentiment import NEGATE, SentimentIntensityAnalyzer

    vader = np.zeros(BUCKETS, dtype=np.float32)
    for bucket, valence in _single_words(SentimentIntensityAnalyzer().lexicon.items()):
        vader[bucket] = valence
    textblob = np.zeros(BUCKETS, dtype=np.float32)
    known = np.zeros(BUCKETS, dtype=np.bool_)
    scored = ((word, textblob_lexicon(word)[0]) for word in textblob_lexicon)
    for bucket, value in _single_words((word, value) for word, value in scored if value):
        textblob[bucket] = value
        known[bucket] = True
    negator = np.zeros(BUCKETS, dtype=np.bool_)
    words = {*NEGATE, *textblob_lexicon.negations, *_EXTRA_NEGATORS}
    for bucket, _ in _single_words((word, 1.0) for word in words):
        negator[bucket] = True
    language = np.zeros(BUCKETS, dtype=np.int8)
    for index, code in enumerate(_LANGUAGES, start=1):
        for bucket, _ in _single_words((word, 1.0) for word in _LANGUAGE_WORDS[code].split()):
            language[bucket] = index
    return _Lexicon(vader, textblob, known, negator, language)


def _single_words(entries: Iterable[tuple[str, float]]) -> list[tuple[int, float]]:
    """(bucket, value) for the lexicon entries our tokeniser reads as one word."""
    pairs = [(str(word).lower(), float(value)) for word, value in entries]
    batch = grams([word for word, _ in pairs])
    one_token = np.bincount(batch.token_doc, minlength=len(pairs)) == 1
    first = np.searchsorted(batch.token_doc, np.arange(len(pairs)))
    return [(int(batch.words.bucket[first[i]]), value) for i, (_, value) in enumerate(pairs) if one_token[i]]
