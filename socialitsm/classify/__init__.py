"""Complaint classifier for social-media posts about IT services.

A logistic regression (see `model` and `train`) scores hashed word and character n-grams together
with TextBlob/VADER polarity and the IT-service cues of `rules`; `services` finds the catalogue
service and `rules.urgency_cues` the urgency. Reasons name the cues and words that pushed the
score the way it went.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice

import numpy as np

from .catalogue import ServiceEntry, ServiceMatch, matcher_for
from .features import Batch
from .model import NAMED_FEATURES, Scores, active
from .pipeline import RULE_KINDS, Prepared, prepare_many
from .rules import LABELS, urgency_cues

__all__ = ["ServiceEntry", "Verdict", "verdict", "verdict_many"]

_BATCH = 512
_MAX_REASONS = 8
_MIN_REASON_WEIGHT = 0.1
_MIN_WORD_WEIGHT = 0.15
_MAX_CUE_CHARS = 30
_FEATURE_LABELS = {
    "mention": "addressed to an account",
    "url": "contains a link",
    "question": "question mark",
    "exclamation": "exclamation mark",
    "shouting": "capitals",
}
_SENTIMENT = ("vader", "textblob", "sarcastic_positive")
# Function words move scores a little but tell an agent nothing, so reasons do not name them.
_FUNCTION_WORDS = """
    a an the is are was were be been am it its this that of to in on at for with and or but my our your
    i you we he she they me us them do does did has have had so as by from up
    le la les un une des de du et ou mais est sont ce cet cette je tu il elle nous vous ils en au aux ne pas
    der die das ein eine und oder aber ist sind ich du er sie wir ihr es im am zu mit von auf nicht
    el los las una unos y o pero es son yo tu él ella nosotros en con por para del al lo que se no
"""
_UNTOLD = frozenset(_FUNCTION_WORDS.split())
_INDEX = {name: i for i, name in enumerate(NAMED_FEATURES)}


@dataclass(frozen=True, slots=True)
class Verdict:
    """Outcome for one post; urgency follows ITIL: 1 high, 2 medium, 3 low."""

    is_complaint: bool
    score: float
    sentiment: float
    service: str | None
    urgency: int
    reasons: tuple[str, ...]


def verdict(
    text: str,
    lang: str | None = None,
    *,
    catalogue: Sequence[ServiceEntry] = (),
    threshold: float = 0.5,
) -> Verdict:
    """Classify one post; `lang` is an ISO code such as "en", "fr-FR" or None when unknown."""
    return verdict_many([(text, lang)], catalogue=catalogue, threshold=threshold)[0]


def verdict_many(
    texts: Iterable[tuple[str, str | None]],
    *,
    catalogue: Sequence[ServiceEntry] = (),
    threshold: float = 0.5,
) -> list[Verdict]:
    """Classify (text, lang) pairs in batches: n-grams are hashed and scored for a batch at once.

    The language (an ISO code, or None when unknown) only decides whether the English polarity
    lexicons apply; the n-gram model reads every language.
    """
    matcher = matcher_for(catalogue)
    model = active.get()
    verdicts: list[Verdict] = []
    pairs = iter(texts)
    # Bounded batches keep the working arrays (and the cached hash tables) small.
    while chunk := list(islice(pairs, _BATCH)):
        prepared = prepare_many([text for text, _ in chunk], matcher, [lang for _, lang in chunk])
        scores = model.score(prepared.grams, prepared.dense)
        words = _words_by_post(prepared.grams, scores)
        moods = prepared.polarity.sentiment.tolist()
        logits = scores.logits.tolist()
        # Per post, the named features' shares and, last, the sentence vector's as one.
        named = len(NAMED_FEATURES)
        shares = np.hstack([scores.dense[:, :named], scores.dense[:, named:].sum(axis=1, keepdims=True)]).tolist()
        verdicts.extend(
            _decide(post, moods[i], logits[i], shares[i], words.get(i, []), threshold)
            for i, post in enumerate(prepared.posts)
        )
    return verdicts


def _decide(
    post: Prepared, mood: float, logit: float, share: list[float], words: list[tuple[float, str]], threshold: float
) -> Verdict:
    score = _logistic(logit)
    is_complaint = score >= threshold
    urgent = urgency_cues(post.clean.lowered) if is_complaint else ()
    terms = _dense_terms(post, mood, share)
    # A word that is part of a cue already named is not named again.
    cued = {word for hit in post.hits for word in hit.cue.split()}
    terms.extend((share, f"word '{_shorten(word)}'") for share, word in words if word not in cued)
    return Verdict(
        is_complaint=is_complaint,
        score=score,
        sentiment=mood,
        service=post.service.slug if post.service else None,
        urgency=(1 if urgent else 2) if is_complaint else 3,
        reasons=_reasons(terms, is_complaint, post, urgent),
    )


def _dense_terms(post: Prepared, mood: float, share: list[float]) -> list[tuple[float, str]]:
    terms: list[tuple[float, str]] = []
    if mood:
        label = "sarcastic positive" if post.sarcastic and mood > 0 else ("negative" if mood < 0 else "positive")
        terms.append((sum(share[_INDEX[name]] for name in _SENTIMENT), f"{label} sentiment {mood:+.2f}"))
    if post.hits:
        by_kind: dict[str, dict[str, None]] = {}
        for hit in post.hits:
            by_kind.setdefault(hit.kind, {})[hit.cue] = None
        for kind in RULE_KINDS:
            cues = by_kind.get(kind, {})
            terms.extend((share[_INDEX[kind]] / len(cues), f"{LABELS[kind]} '{_shorten(cue)}'") for cue in cues)
    for name, label in _FEATURE_LABELS.items():
        if share[_INDEX[name]]:
            terms.append((share[_INDEX[name]], label))
    terms.append((share[-1], "overall wording"))
    return terms


def _words_by_post(batch: Batch, scores: Scores) -> dict[int, list[tuple[float, str]]]:
    """Per post, (share, word) for the words whose n-grams moved its score noticeably."""
    # Only tokens that could make it into the reasons are looked at, so long posts stay cheap.
    strong = np.flatnonzero(np.abs(scores.token) >= _MIN_WORD_WEIGHT)
    joined = batch.joined
    shares: dict[int, dict[str, float]] = {}
    for (start, end), doc, share in zip(
        batch.spans[strong].tolist(), batch.token_doc[strong].tolist(), scores.token[strong].tolist(), strict=True
    ):
        word = joined[start:end]
        # Single letters and punctuation say little; single emoji do.
        if (end - start > 1 and word not in _UNTOLD) or not (word.isascii() or word.isalnum()):
            per = shares.setdefault(doc, {})
            per[word] = per.get(word, 0.0) + share
    return {doc: [(share, word) for word, share in per.items()] for doc, per in shares.items()}


def _reasons(
    terms: list[tuple[float, str]], is_complaint: bool, post: Prepared, urgent: tuple[str, ...]
) -> tuple[str, ...]:
    sign = 1.0 if is_complaint else -1.0
    ranked = sorted((t for t in terms if t[0] * sign >= _MIN_REASON_WEIGHT), key=lambda t: -abs(t[0]))
    reasons = [reason for _, reason in ranked[:_MAX_REASONS]]
    if post.service is not None:
        reasons.append(_service_reason(post.service))
    reasons.extend(f"{LABELS['urgency']} '{_shorten(cue)}'" for cue in urgent[:2])
    if not reasons:
        reasons.append(_no_strong_reason(post, is_complaint))
    return tuple(reasons)


def _no_strong_reason(post: Prepared, is_complaint: bool) -> str:
    if not post.clean.text:
        return "empty text"
    return "many weak complaint cues" if is_complaint else "no complaint cues"


def _shorten(cue: str) -> str:
    return cue if len(cue) <= _MAX_CUE_CHARS else cue[: _MAX_CUE_CHARS - 1] + "…"


def _service_reason(service: ServiceMatch) -> str:
    typo = f" (typo of '{service.name}')" if service.fuzzy else ""
    return f"service {service.slug}: '{service.written}'{typo}"


def _logistic(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))
