"""Baseline complaint classifier for social-media posts about IT services."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .rules import LABELS, WEIGHTS, Hit, scan, urgency_cues
from .sentiment import polarity
from .services import Matcher, ServiceEntry, ServiceMatch, matcher_for
from .text import Clean, normalise

__all__ = ["ServiceEntry", "Verdict", "verdict", "verdict_many"]

_BIAS = -2.0
_SERVICE_WEIGHT = 0.5
# TextBlob and VADER only know English; elsewhere they mostly see emoji, so rules carry the decision.
_SENTIMENT_WEIGHT_EN = 2.5
_SENTIMENT_WEIGHT_OTHER = 1.0
_ENGLISH = frozenset({"", "en", "und"})
_EXTRA_HIT_FACTOR = 0.3
_MAX_HITS_PER_KIND = 4
_MAX_REASONS = 8
_MIN_REASON_WEIGHT = 0.1
_MAX_CUE_CHARS = 30


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
    return _judge(text, lang, matcher_for(catalogue), threshold)


def verdict_many(
    texts: Iterable[tuple[str, str | None]],
    *,
    catalogue: Sequence[ServiceEntry] = (),
    threshold: float = 0.5,
) -> list[Verdict]:
    """Classify (text, lang) pairs with one compiled catalogue."""
    matcher = matcher_for(catalogue)
    return [_judge(text, lang, matcher, threshold) for text, lang in texts]


def _judge(text: str, lang: str | None, matcher: Matcher, threshold: float) -> Verdict:
    clean = normalise(text)
    hits = scan(clean.lowered, clean.tags)
    service = matcher.find(clean.text, clean.lowered) if clean.text else None
    sentiment, weighted = _sentiment_terms(clean, lang, hits)
    weighted.extend(_rule_terms(hits))
    if service is not None:
        weighted.append((_SERVICE_WEIGHT, _service_reason(service)))
    score = _logistic(_BIAS + sum(weight for weight, _ in weighted))
    is_complaint = score >= threshold
    urgent = urgency_cues(clean.lowered) if is_complaint else ()
    return Verdict(
        is_complaint=is_complaint,
        score=score,
        sentiment=sentiment,
        service=service.slug if service else None,
        urgency=_urgency(is_complaint, urgent),
        reasons=_reasons(weighted, urgent, clean),
    )


def _sentiment_terms(clean: Clean, lang: str | None, hits: list[Hit]) -> tuple[float, list[tuple[float, str]]]:
    value = polarity(clean.text).combined
    if not value:
        return 0.0, []
    scale = _SENTIMENT_WEIGHT_EN if _language(lang) in _ENGLISH else _SENTIMENT_WEIGHT_OTHER
    if value > 0 and any(hit.kind == "sarcasm" for hit in hits):
        return value, [(scale * value, f"sarcastic positive sentiment {value:+.2f}")]
    mood = "negative" if value < 0 else "positive"
    return value, [(-scale * value, f"{mood} sentiment {value:+.2f}")]


def _rule_terms(hits: list[Hit]) -> list[tuple[float, str]]:
    terms: list[tuple[float, str]] = []
    seen: dict[str, int] = {}
    for hit in hits:
        count = seen.get(hit.kind, 0)
        if count >= _MAX_HITS_PER_KIND:
            continue
        seen[hit.kind] = count + 1
        weight = WEIGHTS[hit.kind] * (1.0 if count == 0 else _EXTRA_HIT_FACTOR)
        terms.append((weight, f"{LABELS[hit.kind]} '{_shorten(hit.cue)}'"))
    return terms


def _shorten(cue: str) -> str:
    return cue if len(cue) <= _MAX_CUE_CHARS else cue[: _MAX_CUE_CHARS - 1] + "…"


def _service_reason(service: ServiceMatch) -> str:
    typo = f" (typo of '{service.name}')" if service.fuzzy else ""
    return f"service {service.slug}: '{service.written}'{typo}"


def _urgency(is_complaint: bool, urgent: tuple[str, ...]) -> int:
    if not is_complaint:
        return 3
    return 1 if urgent else 2


def _reasons(weighted: list[tuple[float, str]], urgent: tuple[str, ...], clean: Clean) -> tuple[str, ...]:
    ranked = sorted(weighted, key=lambda term: -abs(term[0]))
    reasons = [reason for weight, reason in ranked if abs(weight) >= _MIN_REASON_WEIGHT][:_MAX_REASONS]
    reasons.extend(f"{LABELS['urgency']} '{_shorten(cue)}'" for cue in urgent[:2])
    if not reasons:
        reasons.append("no complaint cues" if clean.text else "empty text")
    return tuple(reasons)


def _language(lang: str | None) -> str:
    return (lang or "").strip().lower().replace("_", "-").split("-")[0]


def _logistic(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))
