"""Detection of catalogue services (names, aliases, one-typo variants) in post text."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.util import find_spec
from pathlib import Path

_FUZZY_MIN_LEN = 5
_TOKEN = re.compile(r"[^\W\d_]{4,}")


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    """A catalogue service: its slug, every name or alias posts may use for it, and what it does."""

    slug: str
    names: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True, slots=True)
class ServiceMatch:
    slug: str
    name: str
    written: str
    fuzzy: bool = False


class Matcher:
    """Finds the first catalogue service mentioned in lowercased text."""

    __slots__ = ("_aliases", "_lengths", "_pattern", "_variants")

    def __init__(self, catalogue: Sequence[ServiceEntry]) -> None:
        self._aliases: dict[str, tuple[str, str]] = {}
        for entry in catalogue:
            for name in entry.names:
                key = " ".join(str(name).lower().split())
                if key:
                    self._aliases.setdefault(key, (entry.slug, name))
        self._pattern = _alias_pattern(self._aliases)
        self._variants = _typo_index(self._aliases)
        self._lengths = range(
            min(map(len, self._variants), default=0),
            max(map(len, self._variants), default=0) + 2,
        )

    def find(self, text: str, lowered: str) -> ServiceMatch | None:
        """Earliest exact alias (longest at its position), else the earliest one-typo word.

        `lowered` is `text.lower()`; `text` only supplies the spelling shown in reasons.
        """
        if self._pattern is not None:
            match = self._pattern.search(lowered)
            if match:
                slug, name = self._aliases[" ".join(match.group().split())]
                return ServiceMatch(slug, name, _written(text, lowered, match))
        return self._find_typo(text, lowered) if self._variants else None

    def _find_typo(self, text: str, lowered: str) -> ServiceMatch | None:
        known = _dictionary()
        for match in _TOKEN.finditer(lowered):
            token = match.group()
            if len(token) not in self._lengths or token in known:
                continue
            key = self._typo_of(token)
            if key is not None:
                slug, name = self._aliases[key]
                return ServiceMatch(slug, name, _written(text, lowered, match), fuzzy=True)
        return None

    def _typo_of(self, token: str) -> str | None:
        for variant in _deletions(token):
            for key in self._variants.get(variant, ()):
                if _within_one_edit(token, key):
                    return key
        return None


def _written(text: str, lowered: str, match: re.Match[str]) -> str:
    # lower() changes the length of a few characters (e.g. "İ"); then offsets no longer line up.
    return text[match.start() : match.end()] if len(text) == len(lowered) else match.group()


_last: tuple[tuple[ServiceEntry, ...], Matcher] | None = None


def matcher_for(catalogue: Sequence[ServiceEntry]) -> Matcher:
    """Return a compiled matcher, cached per catalogue content."""
    global _last
    if _last is not None and _last[0] is catalogue:
        return _last[1]
    entries = catalogue if isinstance(catalogue, tuple) else tuple(catalogue)
    try:
        matcher = _cached_matcher(entries)
    except TypeError:
        return Matcher(entries)
    if type(catalogue) is tuple:
        # A hashable tuple of frozen entries cannot change, so identity spares re-hashing it per post.
        _last = (catalogue, matcher)
    return matcher


@lru_cache(maxsize=64)
def _cached_matcher(catalogue: tuple[ServiceEntry, ...]) -> Matcher:
    return Matcher(catalogue)


def _alias_pattern(aliases: dict[str, tuple[str, str]]) -> re.Pattern[str] | None:
    if not aliases:
        return None
    # Longest first so that, at one position, "outlook web access" wins over "outlook".
    ordered = sorted(aliases, key=len, reverse=True)
    body = "|".join(r"\s+".join(map(re.escape, key.split())) for key in ordered)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)")


def _typo_index(aliases: dict[str, tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    index: dict[str, tuple[str, ...]] = {}
    for key in sorted(aliases, key=len, reverse=True):
        if len(key) >= _FUZZY_MIN_LEN and key.isalpha():
            for variant in _deletions(key):
                index[variant] = (*index.get(variant, ()), key)
    return index


def _deletions(word: str) -> set[str]:
    return {word, *(word[:i] + word[i + 1 :] for i in range(len(word)))}


def _within_one_edit(a: str, b: str) -> bool:
    """Optimal-string-alignment distance <= 1: one insertion, deletion, substitution or swap."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    if len(a) > len(b):
        return a[i + 1 :] == b[i:]
    if len(a) < len(b):
        return a[i:] == b[i + 1 :]
    swapped = a[i : i + 2] == b[i : i + 2][::-1] and a[i + 2 :] == b[i + 2 :]
    return a[i + 1 :] == b[i + 1 :] or swapped


@cache
def _dictionary() -> frozenset[str]:
    # Real English words ("team" near "Teams") are not typos; TextBlob ships a 29k-word list.
    spec = find_spec("textblob")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    path = Path(next(iter(spec.submodule_search_locations))) / "en" / "en-spelling.txt"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return frozenset()
    return frozenset(line.split()[0].lower() for line in lines if line.strip() and not line.startswith(";"))
