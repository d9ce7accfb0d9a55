"""Services matched by meaning: posts against the catalogue's descriptions, in the encoder's space.

Each catalogue service is embedded from its description and from its name with its aliases; a
post's similarity to a service is its best cosine with those texts. The vectors are kept per
catalogue content (slug, names, description), so a service a lead adds or rewords in the admin is
matched from the next batch on, without retraining: only the decision of whether a post is a
complaint is learnt, never which services exist.

Three fixed sets of sentences stand beside the catalogue: what trouble with workplace IT sounds
like, what thanks, questions and notices about IT sound like, and what everyday negativity
outside IT sounds like. Their similarities are features of
the decision, so it knows "about IT at all" even when a deployment's catalogue is small.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import encoder
from .catalogue import ServiceEntry

FloatArray = encoder.FloatArray

IT_TROUBLE = (
    "The company VPN keeps disconnecting and I cannot work from home.",
    "I cannot log in to my work account, the password reset fails.",
    "Outlook email is down, nobody in the office can send mail.",
    "The office Wi-Fi is so slow that video calls keep dropping.",
    "The printer on our floor is broken again.",
    "My work laptop crashes every time I connect the docking station.",
    "The IT service desk closed my ticket without fixing anything.",
    "I have been waiting weeks for IT to handle my request and nobody calls back.",
    "The shared drive is unavailable and our files are gone.",
    "The payroll and expenses system throws an error when I submit.",
    "The intranet portal times out and the app will not load.",
    "Teams meetings freeze and the meeting room screen does not work.",
)
THANKS = (
    "Thanks IT, the VPN works again, great job.",
    "Shout out to the service desk for fixing my laptop so quickly.",
    "Big thanks to the helpdesk, all sorted in five minutes.",
    "The new Wi-Fi is really fast, well done IT team.",
    "Thank you support, everything works now.",
    "How do I set up email on my new phone?",
    "Reminder: planned maintenance of the file servers on Saturday night.",
)
OFF_TOPIC = (
    "My flight got cancelled and I am stuck at the airport.",
    "The train is late again, my commute is a nightmare.",
    "It has been raining all week, I hate this weather.",
    "The canteen food today was awful and cold.",
    "My home internet provider has been down all evening.",
    "I had a terrible day, my back hurts and I am exhausted.",
    "My football team lost again, what a disaster.",
    "The coffee machine on our floor is empty again.",
    "Another company had a huge outage today, glad we do not use them.",
    "My kids are sick and I did not sleep at all.",
)
# Catalogues beyond this many versions are dropped oldest first (a handful exist per process).
_CACHED_CATALOGUES = 8
_WORD = re.compile(r"[^\W\d_]{4,}")
_STEM = 5
_CHUNK = 64
# A post that shares one word with a list of names is close to it without being about it, so a
# match on the names counts this much less than one on the description.
NAMES_PENALTY = 0.1
_COMMON_WORDS = """
    about after also and another are because been but cannot company does down each every from have into just
    like more most office only other over same some staff than that their them then there these they this
    through time very what when where which while will with work your the for not our all any can get
"""
_COMMON = frozenset(_COMMON_WORDS.split())


@dataclass(frozen=True, slots=True)
class ServiceVectors:
    """Per catalogue service, the texts embedded and their vectors (rows of one matrix)."""

    slugs: tuple[str, ...]
    texts: tuple[str, ...]  # one per row
    owner: np.ndarray  # (rows,) index into slugs
    vectors: FloatArray  # (rows, dimensions)
    descriptions: tuple[str, ...]  # per slug, "" when none
    penalty: FloatArray  # (rows,) taken off a row's cosine: NAMES_PENALTY for lists of names

    def similarities(self, posts: FloatArray) -> tuple[FloatArray, np.ndarray]:
        """(posts, services) best cosine per service, less its row's penalty, and the row that gave it."""
        if not self.slugs:
            return np.zeros((len(posts), 0), dtype=np.float32), np.zeros((len(posts), 0), dtype=np.int64)
        cosine = cosines(posts, self.vectors) - self.penalty[None, :]
        best = np.full((len(posts), len(self.slugs)), -1.0, dtype=np.float32)
        which = np.zeros((len(posts), len(self.slugs)), dtype=np.int64)
        for row, service in enumerate(self.owner.tolist()):
            better = cosine[:, row] > best[:, service]
            best[better, service] = cosine[better, row]
            which[better, service] = row
        return best, which


def _service_texts(entry: ServiceEntry) -> list[str]:
    texts = []
    description = " ".join(entry.description.split())
    if description:
        texts.append(description)
    names = [" ".join(str(name).split()) for name in entry.names if str(name).strip()]
    if names:
        texts.append(", ".join(dict.fromkeys(names)))
    return texts


_lock = threading.Lock()
_cache: OrderedDict[tuple[tuple[str, tuple[str, ...], str], ...], ServiceVectors] = OrderedDict()
_anchors: tuple[FloatArray, FloatArray, FloatArray] | None = None


def service_vectors(catalogue: Sequence[ServiceEntry]) -> ServiceVectors:
    """The catalogue's vectors, embedded once per catalogue content."""
    key = tuple((e.slug, tuple(map(str, e.names)), e.description) for e in catalogue)
    with _lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    slugs: list[str] = []
    texts: list[str] = []
    owner: list[int] = []
    descriptions: list[str] = []
    penalty: list[float] = []
    for entry in catalogue:
        if entry.slug in slugs:
            continue
        slugs.append(entry.slug)
        descriptions.append(" ".join(entry.description.split()))
        for text in _service_texts(entry):
            texts.append(text)
            owner.append(len(slugs) - 1)
            penalty.append(0.0 if text == descriptions[-1] else NAMES_PENALTY)
    vectors = encoder.encode(texts) if texts else np.zeros((0, encoder.DIMENSIONS), dtype=np.float32)
    built = ServiceVectors(
        tuple(slugs),
        tuple(texts),
        np.array(owner, dtype=np.int64),
        vectors,
        tuple(descriptions),
        np.array(penalty, dtype=np.float32),
    )
    with _lock:
        _cache[key] = built
        while len(_cache) > _CACHED_CATALOGUES:
            _cache.popitem(last=False)
    return built


def clear() -> None:
    """Forget every catalogue's vectors (a service changed; the next batch embeds them again)."""
    with _lock:
        _cache.clear()


def anchor_similarities(posts: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per post, the best cosine with the IT-trouble sentences, the thanks-and-questions ones and
    the off-topic ones."""
    global _anchors
    anchors = _anchors
    if anchors is None:
        vectors = encoder.encode([*IT_TROUBLE, *THANKS, *OFF_TOPIC])
        split = (len(IT_TROUBLE), len(IT_TROUBLE) + len(THANKS))
        anchors = _anchors = (vectors[: split[0]], vectors[split[0] : split[1]], vectors[split[1] :])
    it, thanks, off = anchors
    return cosines(posts, it).max(axis=1), cosines(posts, thanks).max(axis=1), cosines(posts, off).max(axis=1)


def cosines(posts: FloatArray, texts: FloatArray) -> FloatArray:
    """(posts, texts) dot products of unit vectors, each computed the same way whatever the
    batch (a matrix product picks its kernel by shape, which changes the last bits)."""
    out = np.empty((len(posts), len(texts)), dtype=np.float32)
    for start in range(0, len(posts), _CHUNK):
        out[start : start + _CHUNK] = (posts[start : start + _CHUNK, None, :] * texts[None, :, :]).sum(axis=2)
    return out


def shared_words(post: str, description: str, limit: int = 3) -> list[str]:
    """Words of the post that also stand in the description (same first letters), for reasons."""
    stems = {word[:_STEM] for word in _WORD.findall(description.lower()) if word not in _COMMON}
    found: dict[str, None] = {}
    for word in _WORD.findall(post.lower()):
        if word not in _COMMON and word[:_STEM] in stems:
            found[word] = None
    return list(found)[:limit]
