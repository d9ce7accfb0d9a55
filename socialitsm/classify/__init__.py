"""Complaint classifier for social-media posts about IT services.

Two stages (see `model` and `train`). The fast model, a logistic regression over hashed word and
character n-grams, TextBlob/VADER polarity and the IT-service cues of `rules`, reads every post
first. Then a local sentence encoder (`encoder`: multilingual USE in numpy on the CPU) embeds the post and
the decision head, a second logistic regression, decides from the post's meaning, its
similarity to IT trouble, to everyday life outside IT and to the catalogue's descriptions, the
fast model's cues and the fast model's logit. Negative posts about the rest of life score near
1.0 with the fast model alone, so no band of its scores is trusted: the head decides every post
the encoder can read while SOCIALITSM_CLASSIFIER_ENCODER is on (the default); posts with no
piece it knows (only emoji) and every post with the setting off are left to the fast model.

Services are found by name, alias or one-typo spelling, and, with the encoder, by meaning
against each service's description (`semantic`), so a service a lead adds is found without
retraining. `rules.urgency_cues` gives the urgency. Reasons name the cues, words and catalogue
text that pushed the decision the way it went.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice

import numpy as np
import numpy.typing as npt

from . import semantic
from .catalogue import ServiceEntry, ServiceMatch, matcher_for
from .features import Batch
from .model import HEAD_CONTEXT, NAMED_FEATURES, Scores, active
from .pipeline import RULE_KINDS, Meaning, Prepared, head_matrix, prepare_many, understand
from .rules import LABELS, urgency_cues

__all__ = ["ServiceEntry", "Verdict", "encoder_enabled", "verdict", "verdict_many", "warm_up"]

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
_HEAD_INDEX = {name: i for i, name in enumerate(HEAD_CONTEXT)}
# Service confidence: an exact name or alias, a one-typo spelling, and by meaning a cosine
# mapped linearly from _SIMILAR_FROM (0) to _SIMILAR_AT (1) with the catalogue's texts.
_ALIAS_CONFIDENCE = 1.0
_TYPO_CONFIDENCE = 0.8
# (The multilingual encoder's cosines run lower than MiniLM's did; the pair was chosen for the
# best service accuracy on the corpus's train split.)
_SIMILAR_FROM = 0.15
_SIMILAR_AT = 0.45
# A service is named from this confidence up; below, it is only offered as the runner-up.
SERVICE_MIN_CONFIDENCE = 0.5
_MAX_QUOTED = 60
_OFF = frozenset({"0", "false", "no", "off"})
# A factor from this probability up says yes; the reasons of a post that is not a complaint name
# the factors below it (or, when both pass but their combination does not, the weaker one).
FACTOR_PASS = 0.5
# The fast model's logit below which a post with positive cues only is taken as praise (p < 0.12).
_PRAISE_LOGIT = -2.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """Outcome for one post; urgency follows ITIL: 1 high, 2 medium, 3 low."""

    is_complaint: bool
    score: float
    sentiment: float
    service: str | None
    urgency: int
    reasons: tuple[str, ...]
    # How sure the service is (0..1), and the next candidate (named even when `service` is None
    # and a candidate fell below SERVICE_MIN_CONFIDENCE).
    service_confidence: float = 0.0
    runner_up: str | None = None
    runner_up_confidence: float = 0.0
    # Whether the sentence encoder and the decision head decided (False: the fast model alone).
    encoder: bool = False
    # The decision's two factors (0..1), None when the fast model decided alone: whether the
    # post is a complaint at all, about anything, and whether it is about a service this
    # organisation runs (its catalogue, workplace IT).
    complaint_factor: float | None = None
    relevance_factor: float | None = None


@dataclass(frozen=True, slots=True)
class _Candidate:
    slug: str
    confidence: float
    reason: str


def encoder_enabled() -> bool:
    """SOCIALITSM_CLASSIFIER_ENCODER from Django settings when configured, else from the environment."""
    from django.conf import settings

    if settings.configured:
        from socialitsm.conf import conf

        return bool(conf.CLASSIFIER_ENCODER)
    return os.environ.get("SOCIALITSM_CLASSIFIER_ENCODER", "true").strip().lower() not in _OFF


def warm_up() -> None:
    """Load what classifying needs (the model, the lexicons and, when on, the encoder) now, so a
    worker pays for it when it starts rather than in its first task."""
    verdict_many([("the vpn is down again", "en")])


def verdict(
    text: str,
    lang: str | None = None,
    *,
    catalogue: Sequence[ServiceEntry] = (),
    threshold: float = 0.5,
    encoder: bool | None = None,
    addressed: bool = False,
) -> Verdict:
    """Classify one post; `lang` is an ISO code such as "en", "fr-FR" or None when unknown."""
    return verdict_many(
        [(text, lang)], catalogue=catalogue, threshold=threshold, encoder=encoder, addressed=[addressed]
    )[0]


def verdict_many(
    texts: Iterable[tuple[str, str | None]],
    *,
    catalogue: Sequence[ServiceEntry] = (),
    threshold: float = 0.5,
    encoder: bool | None = None,
    addressed: Iterable[bool] | None = None,
) -> list[Verdict]:
    """Classify (text, lang) pairs in batches: n-grams are hashed, posts encoded and scored a batch at once.

    The language (an ISO code, or None when unknown) only decides whether the English polarity
    lexicons apply; the n-gram model and the encoder read every language. `encoder` overrides
    SOCIALITSM_CLASSIFIER_ENCODER for this call. `addressed`, one flag per post, says which posts
    were addressed to our own account (a mention of it, a direct message): those are about a
    service we run, and only whether they complain is left to decide (model.ADDRESSED_RELEVANCE).
    """
    matcher = matcher_for(catalogue)
    model = active.get()
    use_encoder = encoder_enabled() if encoder is None else encoder
    verdicts: list[Verdict] = []
    pairs = iter(texts)
    flags = iter(addressed) if addressed is not None else None
    # Bounded batches keep the working arrays (and the cached hash tables) small.
    while chunk := list(islice(pairs, _BATCH)):
        to_us = np.array(list(islice(flags, len(chunk))), dtype=bool) if flags is not None else None
        if to_us is not None and len(to_us) != len(chunk):
            raise ValueError("addressed needs one flag per post")
        prepared = prepare_many([text for text, _ in chunk], matcher, [lang for _, lang in chunk])
        scores = model.score(prepared.grams, prepared.dense)
        words = _words_by_post(prepared.grams, scores)
        moods = prepared.polarity.sentiment.tolist()
        # Per post, the named features' shares and, last, the sentence vector's as one.
        named = len(NAMED_FEATURES)
        shares = np.hstack([scores.dense[:, :named], scores.dense[:, named:].sum(axis=1, keepdims=True)])
        if not use_encoder:
            logits = scores.logits.tolist()
            share_rows = shares.tolist()
            verdicts.extend(
                _decide(post, moods[i], logits[i], share_rows[i], words.get(i, []), threshold, _by_name(post))
                for i, post in enumerate(prepared.posts)
            )
            continue
        meaning = understand(prepared.posts, catalogue)
        factors, head_shares = model.head.factors(head_matrix(prepared, meaning, scores.logits), to_us)
        lifts = factors.addressed.tolist() if factors.addressed is not None else [0.0] * len(chunk)
        head_logits = factors.decision
        # The fast model's terms, in units of the head's logit (its weight on the fast logit).
        trust = model.head.weight("fast_logit")
        # Each context feature belongs to one factor, so its sign says which way it pushes.
        coef = model.head.complaint_coef + model.head.relevance_coef
        # The fast model's cues and words, already named one by one, in units of the head's logit.
        named_fast = (trust * shares[:, :named].sum(axis=1)).tolist()
        # A cue counts directly in the head and through the fast model's logit.
        head_named = head_shares[:, len(HEAD_CONTEXT) : len(HEAD_CONTEXT) + named] + trust * shares[:, :named]
        head_rows = np.hstack([head_named, head_shares[:, len(HEAD_CONTEXT) + named :].sum(axis=1, keepdims=True)])
        for i, post in enumerate(prepared.posts):
            if not meaning.readable[i] or _plain_praise(post, float(scores.logits[i])):
                # Nothing the encoder knows (only emoji, or a script outside its vocabulary), or
                # praise the fast model is sure of with nothing but positive cues: the fast model
                # decides, as it does with the encoder off (the encoder reads "printer fixed in
                # 10 minutes, thanks" as close to printer trouble).
                verdicts.append(
                    _decide(
                        post,
                        moods[i],
                        float(scores.logits[i]),
                        shares[i].tolist(),
                        words.get(i, []),
                        threshold,
                        _by_meaning(post, i, meaning),
                    )
                )
                continue
            scaled = [(share * trust, word) for share, word in words.get(i, [])]
            row = head_rows[i].tolist()
            verdicts.append(
                _decide(
                    post,
                    moods[i],
                    float(head_logits[i]),
                    row,
                    scaled,
                    threshold,
                    _by_meaning(post, i, meaning),
                    context=_context_terms(
                        head_shares[i], coef, meaning, i, named_fast[i] + sum(s for s, _ in scaled), lifts[i]
                    ),
                    factors=(float(factors.complaint[i]), float(factors.relevance[i])),
                    nearest=_nearest_group(meaning, i),
                )
            )
    return verdicts


def _plain_praise(post: Prepared, fast_logit: float) -> bool:
    kinds = {hit.kind for hit in post.hits}
    return fast_logit <= _PRAISE_LOGIT and kinds == {"positive"}


def _context_terms(
    shares: npt.NDArray[np.float32],
    coef: npt.NDArray[np.float32],
    meaning: Meaning,
    i: int,
    itemised: float,
    addressed: float = 0.0,
) -> list[tuple[float, str]]:
    """The head's own terms; the fast model's logit counts only for what its cues and words,
    named on their own, do not already say. `addressed`: how much being addressed to us
    raised the decision's logit."""
    share = shares.tolist()

    def near(name: str, what: str, value: float) -> tuple[float, str]:
        # Above the training average the post is like `what`, below it unlike it.
        index = _HEAD_INDEX[name]
        above = (share[index] >= 0) == (coef[index] >= 0)
        return share[index], f"{'like' if above else 'unlike'} {what} ({value:.2f})"

    terms = [
        near("it_similarity", "trouble with workplace IT", float(meaning.it[i])),
        near("thanks_similarity", "thanks, questions and notices about IT", float(meaning.thanks[i])),
        near("off_topic_similarity", "everyday life outside IT", float(meaning.off[i])),
        near("catalogue_similarity", "the service catalogue", float(meaning.context[i])),
        (share[_HEAD_INDEX["fast_logit"]] - itemised, "wording (fast model)"),
    ]
    if meaning.alias[i]:
        terms.append((share[_HEAD_INDEX["alias"]], "names a catalogue service"))
    if addressed:
        terms.append((addressed, "addressed to our account (a mention or a direct message)"))
    return terms


def _by_name(post: Prepared) -> list[_Candidate]:
    if post.service is None:
        return []
    confidence = _TYPO_CONFIDENCE if post.service.fuzzy else _ALIAS_CONFIDENCE
    return [_Candidate(post.service.slug, confidence, _service_reason(post.service))]


def _by_meaning(post: Prepared, i: int, meaning: Meaning) -> list[_Candidate]:
    """Candidates by name or alias, and by similarity to each service's description and names."""
    candidates = {c.slug: c for c in _by_name(post)}
    services = meaning.services
    if not post.clean.text or not services.slugs:
        return list(candidates.values())
    similarity = meaning.similarity[i]
    for j in np.argsort(-similarity, kind="stable")[:3].tolist():
        slug = services.slugs[j]
        row = int(meaning.matched[i, j])
        text = services.texts[row]
        described = text == services.descriptions[j]
        # The similarity is already less the names' penalty (semantic.NAMES_PENALTY).
        value = float(similarity[j])
        confidence = min(1.0, max(0.0, (value - _SIMILAR_FROM) / (_SIMILAR_AT - _SIMILAR_FROM)))
        if confidence <= 0.0 or (slug in candidates and candidates[slug].confidence >= confidence):
            continue
        shared = semantic.shared_words(post.clean.text, text)
        words = f" (words {', '.join(repr(w) for w in shared)})" if shared else ""
        what = "description" if described else "names"
        cosine = value + float(services.penalty[row])
        reason = f"service {slug} by meaning ({cosine:.2f}): like its {what} '{_quote(text)}'{words}"
        candidates[slug] = _Candidate(slug, confidence, reason)
    return list(candidates.values())


def _quote(text: str) -> str:
    return text if len(text) <= _MAX_QUOTED else text[: _MAX_QUOTED - 1] + "…"


def _decide(
    post: Prepared,
    mood: float,
    logit: float,
    share: list[float],
    words: list[tuple[float, str]],
    threshold: float,
    candidates: list[_Candidate],
    context: list[tuple[float, str]] | None = None,
    factors: tuple[float, float] | None = None,
    nearest: str = "",
) -> Verdict:
    score = _logistic(logit)
    is_complaint = score >= threshold
    complaint, relevance = (_logistic(factors[0]), _logistic(factors[1])) if factors else (None, None)
    urgent = urgency_cues(post.clean.lowered) if is_complaint else ()
    terms = _dense_terms(post, mood, share, "meaning of the post (sentence encoder)" if context else "overall wording")
    terms.extend(context or ())
    # A word that is part of a cue already named is not named again.
    cued = {word for hit in post.hits for word in hit.cue.split()}
    terms.extend((share, f"word '{_shorten(word)}'") for share, word in words if word not in cued)
    ranked = sorted(candidates, key=lambda c: -c.confidence)
    top = ranked[0] if ranked and ranked[0].confidence >= SERVICE_MIN_CONFIDENCE else None
    runner = ranked[1] if top is not None and len(ranked) > 1 else (ranked[0] if top is None and ranked else None)
    return Verdict(
        is_complaint=is_complaint,
        score=score,
        sentiment=mood,
        service=top.slug if top else None,
        urgency=(1 if urgent else 2) if is_complaint else 3,
        reasons=_reasons(terms, is_complaint, post, urgent, top, _failed(complaint, relevance, is_complaint, nearest)),
        service_confidence=round(top.confidence, 4) if top else 0.0,
        runner_up=runner.slug if runner else None,
        runner_up_confidence=round(runner.confidence, 4) if runner else 0.0,
        encoder=context is not None,
        complaint_factor=None if complaint is None else round(complaint, 4),
        relevance_factor=None if relevance is None else round(relevance, 4),
    )


def _failed(complaint: float | None, relevance: float | None, is_complaint: bool, nearest: str) -> list[str]:
    """For a post that is not a complaint, the factors that said no (the weaker first), and when
    the IT relevance did, which group of reference sentences the post is closest to."""
    if is_complaint or complaint is None or relevance is None:
        return []
    said = [
        (complaint, f"not a complaint at all (complaint factor {complaint:.2f})"),
        (relevance, f"not about a service we run (IT relevance {relevance:.2f})"),
    ]
    failed = [reason for value, reason in sorted(said) if value < FACTOR_PASS] or [sorted(said)[0][1]]
    if relevance < FACTOR_PASS and nearest:
        failed.append(nearest)
    return failed


def _nearest_group(meaning: Meaning, i: int) -> str:
    groups = [
        (float(meaning.it[i]), "trouble with workplace IT"),
        (float(meaning.thanks[i]), "thanks, questions and notices about IT"),
        (float(meaning.off[i]), "everyday life outside IT"),
    ]
    value, what = max(groups)
    return f"like {what} ({value:.2f})"


def _dense_terms(post: Prepared, mood: float, share: list[float], overall: str) -> list[tuple[float, str]]:
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
        # Only what the post has: the head's shares of absent features are not zero.
        if post.dense[_INDEX[name]] and share[_INDEX[name]]:
            terms.append((share[_INDEX[name]], label))
    terms.append((share[-1], overall))
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
    terms: list[tuple[float, str]],
    is_complaint: bool,
    post: Prepared,
    urgent: tuple[str, ...],
    service: _Candidate | None,
    failed: Sequence[str] = (),
) -> tuple[str, ...]:
    sign = 1.0 if is_complaint else -1.0
    ranked = sorted((t for t in terms if t[0] * sign >= _MIN_REASON_WEIGHT), key=lambda t: -abs(t[0]))
    reasons = list(dict.fromkeys([*failed, *(reason for _, reason in ranked[:_MAX_REASONS])]))
    if service is not None:
        reasons.append(service.reason)
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
