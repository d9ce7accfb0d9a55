"""Polarity from the VADER and TextBlob (pattern) lexicons, for a whole batch at once.

Both lexicons are hashed into the model's word buckets once; a post's polarity is then a few
array operations over its tokens instead of a run of VADER's and TextBlob's per-post Python
(which cost more than everything else in the classifier together). Kept from the originals:
VADER's valences (emoji read through their descriptions), its normalisation of the sum
(s / sqrt(s² + 15)), its damped flip after a negator within three words, its "but" contrast
and its "!" emphasis; TextBlob's averaging of word polarities and its halving flip after a
negator. Not kept: capitals and boosters; the n-gram model sees those. A post's sentiment is
the VADER value: on the TweetEval validation tweets it recalls the three classes better alone
(0.580 macro recall) than mixed with TextBlob (0.543), which stays a model feature.

Both lexicons are English, so posts in another language get no polarity (their English
look-alikes mislead: German "die" is not dying); the language is the one given, or else the
one whose commonest words the post uses most.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .features import BUCKETS, Batch, grams

_VADER_ALPHA = 15.0
_VADER_NEGATION = -0.74
_TEXTBLOB_NEGATION = -0.5
_NEGATION_REACH = 3
_BUT_BEFORE = 0.5
_BUT_AFTER = 1.5
_BANG_BOOST = 0.292
_MAX_BANGS = 4
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

    textblob: FloatArray
    vader: FloatArray

    @property
    def sentiment(self) -> FloatArray:
        return self.vader


@dataclass(frozen=True, slots=True)
class _Lexicon:
    vader: FloatArray  # valence per word bucket, 0 when unknown
    textblob: FloatArray
    textblob_known: npt.NDArray[np.bool_]
    negator: npt.NDArray[np.bool_]
    but: npt.NDArray[np.bool_]
    bang: npt.NDArray[np.bool_]
    language: npt.NDArray[np.int8]  # 1 + index in _LANGUAGES of a telltale word, else 0


def polarities(batch: Batch, languages: Sequence[str | None] = ()) -> Polarities:
    """VADER compound and TextBlob polarity for every post.

    `languages` holds an ISO code or None per post (or is empty: all unknown).
    """
    size = batch.size
    tokens = len(batch.spans)
    if not tokens:
        zeros = np.zeros(size, dtype=np.float32)
        return Polarities(zeros, zeros)
    lexicon = _lexicon()
    buckets = batch.words.bucket[:tokens]
    docs = batch.token_doc
    english = _english(lexicon.language[buckets], docs, size, languages)
    # Tokens of posts in other languages count for nothing.
    keep = english[docs]
    buckets, docs = buckets[keep], docs[keep]
    negated = _negated(lexicon.negator[buckets], docs)
    vader = lexicon.vader[buckets] * np.where(negated, _VADER_NEGATION, 1.0) * _but_weights(lexicon.but[buckets], docs)
    total = np.bincount(docs, weights=vader, minlength=size).astype(np.float64)
    # VADER's emphasis: each "!" (up to four) adds to the polarity already there.
    bangs = np.minimum(np.bincount(docs, weights=lexicon.bang[buckets], minlength=size), _MAX_BANGS)
    total += np.sign(total) * bangs * _BANG_BOOST
    vader_compound = total / np.sqrt(total * total + _VADER_ALPHA)
    known = lexicon.textblob_known[buckets]
    textblob = lexicon.textblob[buckets] * np.where(negated, _TEXTBLOB_NEGATION, 1.0)
    counts = np.bincount(docs, weights=known, minlength=size)
    sums = np.bincount(docs, weights=textblob, minlength=size)
    textblob_mean = np.divide(sums, counts, out=np.zeros(size), where=counts > 0)
    return Polarities(
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


def _but_weights(but: npt.NDArray[np.bool_], docs: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """VADER's contrast rule: in a post with "but", words before it count half, words after 1.5x."""
    weights = np.ones(len(but))
    if not but.any():
        return weights
    seen = np.cumsum(but)
    starts = np.searchsorted(docs, docs)  # first token of each token's post
    before = seen - seen[starts] + but[starts]  # "but"s up to and including this token
    has_but = np.bincount(docs, weights=but)[docs] > 0
    weights[has_but & (before == 0)] = _BUT_BEFORE
    weights[has_but & (before > 0) & ~but] = _BUT_AFTER
    return weights


def _negated(negator: npt.NDArray[np.bool_], docs: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Tokens preceded by a negator of the same post within _NEGATION_REACH tokens."""
    out = np.zeros(len(negator), dtype=np.bool_)
    for step in range(1, _NEGATION_REACH + 1):
        if step >= len(negator):
            break
        out[step:] |= negator[:-step] & (docs[step:] == docs[:-step])
    return out


@cache
def _lexicon() -> _Lexicon:
    # Imported lazily: the lexicons take ~0.2 s to load and Django imports this module at startup.
    from vaderSentiment.vaderSentiment import NEGATE, SentimentIntensityAnalyzer

    textblob_lexicon = _textblob_sentiment()

    analyzer = SentimentIntensityAnalyzer()
    vader = np.zeros(BUCKETS, dtype=np.float32)
    # VADER reads an emoji as its description ("😂" -> "face with tears of joy").
    emoji = (
        (face, sum(analyzer.lexicon.get(word, 0.0) for word in text.split())) for face, text in analyzer.emojis.items()
    )
    for bucket, valence in _single_words([*emoji, *analyzer.lexicon.items()]):
        if valence:
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
    but = np.zeros(BUCKETS, dtype=np.bool_)
    bang = np.zeros(BUCKETS, dtype=np.bool_)
    but[_single_words([("but", 1.0)])[0][0]] = True
    bang[_single_words([("!", 1.0)])[0][0]] = True
    language = np.zeros(BUCKETS, dtype=np.int8)
    for index, code in enumerate(_LANGUAGES, start=1):
        for bucket, _ in _single_words((word, 1.0) for word in _LANGUAGE_WORDS[code].split()):
            language[bucket] = index
    return _Lexicon(vader, textblob, known, negator, but, bang, language)


def _textblob_sentiment() -> Any:
    """TextBlob's English sentiment lexicon, built as `textblob.en.sentiment` builds it.

    Importing `textblob` itself imports NLTK, which imports scikit-learn and SciPy: about 90 MB
    and a second of start-up in every worker for a lexicon we read once. The lexicon lives in
    `textblob._text`, which needs nothing but the standard library, so that module alone is loaded
    from the installed package (TextBlob stays the source of the words and their scores).
    """
    spec = importlib.util.find_spec("textblob")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover - in requirements.txt
        raise ImportError("TextBlob is not installed")
    package = Path(next(iter(spec.submodule_search_locations)))
    name = "socialitsm._textblob_text"
    text: Any = sys.modules.get(name)
    if text is None:
        loader = importlib.util.spec_from_file_location(name, package / "_text.py")
        if loader is None or loader.loader is None:  # pragma: no cover - part of every TextBlob release
            raise ImportError("TextBlob's _text module is missing")
        text = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(text)
        sys.modules[name] = text

    class Sentiment(text.Sentiment):
        def load(self, path: str | None = None) -> None:
            # As textblob.en.Sentiment: "terrible" also scores the adverb "terribly".
            text.Sentiment.load(self, path)
            if not path:
                entries: list[tuple[str, dict[str, tuple[float, float, float]]]] = list(dict.items(self))
                for word, pos in entries:
                    if "JJ" in pos:
                        if word.endswith("y"):
                            word = word[:-1] + "i"
                        if word.endswith("le"):
                            word = word[:-2]
                        polarity, subjectivity, intensity = pos["JJ"]
                        self.annotate(word + "ly", "RB", polarity, subjectivity, intensity)

    return Sentiment(
        path=str(package / "en" / "en-sentiment.xml"),
        synset="wordnet_id",
        negations=("no", "not", "n't", "never"),
        modifiers=("RB",),
        modifier=lambda word: word.endswith("ly"),
        tokenizer=text.find_tokens,
        language="en",
    )


def _single_words(entries: Iterable[tuple[str, float]]) -> list[tuple[int, float]]:
    """(bucket, value) for the lexicon entries our tokeniser reads as one word."""
    pairs = [(str(word).lower(), float(value)) for word, value in entries]
    batch = grams([word for word, _ in pairs])
    one_token = np.bincount(batch.token_doc, minlength=len(pairs)) == 1
    first = np.searchsorted(batch.token_doc, np.arange(len(pairs)))
    return [(int(batch.words.bucket[first[i]]), value) for i, (_, value) in enumerate(pairs) if one_token[i]]
