"""Detection of catalogue services (names, aliases, one-typo variants) in post text.

Names and text are compared without case or accents ("contrasena" finds "contraseña"); a word of
four letters or more also matches with a plural or inflected ending ("imprimantes", "Druckern",
"portátiles"), and in German posts a name also matches inside a compound ("Druckerproblem",
"Firmenlaptop"), the last part of the compound first ("Netzwerkdrucker" is a printer).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.util import find_spec
from pathlib import Path

_FUZZY_MIN_LEN = 5
_TOKEN = re.compile(r"[^\W\d_]{4,}")
# Endings a name of this many letters or more may take: plurals and the common inflections of
# the four languages posts are written in ("mails", "e-mails", "Druckern", "portales").
_INFLECTED_MIN_LEN = 4
_ENDINGS = r"(?:s|es|e|n|en)?"
# Compounds: the name at least this long, the rest of the word at least this long.
_COMPOUND_MIN_NAME = 4
_COMPOUND_MIN_REST = 3
_COMPOUND_WORD = re.compile(r"[^\W\d_]{7,}")
_COMPOUND_LANGUAGES = frozenset({"de"})
# Accented Latin letters fold to their base letter, one character for one, so offsets stay valid.
_FOLD = {
    code: base
    for code in range(0xC0, 0x250)
    if (base := unicodedata.normalize("NFD", chr(code))[0]) != chr(code) and base.isascii()
}


def fold(lowered: str) -> str:
    """`lowered` without accents, of the same length ("contraseña" -> "contrasena")."""
    return lowered.translate(_FOLD) if not lowered.isascii() else lowered


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

    __slots__ = ("_aliases", "_by_first", "_compounds", "_groups", "_lengths", "_starts", "_variants")

    def __init__(self, catalogue: Sequence[ServiceEntry]) -> None:
        self._aliases: dict[str, tuple[str, str]] = {}
        for entry in catalogue:
            for name in entry.names:
                key = fold(" ".join(str(name).lower().split()))
                if key:
                    self._aliases.setdefault(key, (entry.slug, name))
        self._starts, self._by_first, self._groups = _alias_patterns(self._aliases)
        self._compounds = frozenset(key for key in self._aliases if len(key) >= _COMPOUND_MIN_NAME and key.isalpha())
        self._variants = _typo_index(self._aliases)
        self._lengths = range(
            min(map(len, self._variants), default=0),
            max(map(len, self._variants), default=0) + 2,
        )

    def find(self, text: str, lowered: str, lang: str | None = None) -> ServiceMatch | None:
        """Earliest alias (longest at its position; any case, accents or inflected ending), else
        in German the earliest compound holding one, else the earliest one-typo word.

        `lowered` is `text.lower()`; `text` only supplies the spelling shown in reasons; `lang`
        is the post's ISO code or None.
        """
        folded = fold(lowered)
        if self._starts is not None:
            match = self._search(folded)
            if match:
                slug, name = self._aliases[self._groups[match.lastgroup or ""]]
                return ServiceMatch(slug, name, _written(text, lowered, match))
        if self._compounds and lang and lang[:2].lower() in _COMPOUND_LANGUAGES:
            found = self._find_compound(text, lowered, folded)
            if found is not None:
                return found
        return self._find_typo(text, folded) if self._variants else None

    def names(self, lowered: str) -> bool:
        """Whether lowercased text holds one of the catalogue's names or aliases (exactly, not a typo)."""
        return self._starts is not None and self._search(fold(lowered)) is not None

    def _search(self, folded: str) -> re.Match[str] | None:
        """The earliest alias in `folded`, longest first at its position: what one regex of every
        alias would find, but at each word start only the aliases beginning with its letter are
        tried (one alternation of hundreds of names, tried at every position, was most of the
        classifier's time)."""
        by_first = self._by_first
        for start in self._starts.finditer(folded):  # type: ignore[union-attr]
            match = by_first[start.group()].match(folded, start.start())
            if match:
                return match
        return None

    def _find_compound(self, text: str, lowered: str, folded: str) -> ServiceMatch | None:
        for match in _COMPOUND_WORD.finditer(folded):
            key = _compound_part(match.group(), self._compounds)
            if key is not None:
                slug, name = self._aliases[key]
                return ServiceMatch(slug, name, _written(text, lowered, match))
        return None

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


def _alias_patterns(
    aliases: dict[str, tuple[str, str]],
) -> tuple[re.Pattern[str] | None, dict[str, re.Pattern[str]], dict[str, str]]:
    """Where an alias may start (a first letter of one, not inside a word); per first letter, one
    regex of the aliases starting with it, a named group each; and the alias key per group name."""
    if not aliases:
        return None, {}, {}
    # Longest first so that, at one position, "outlook web access" wins over "outlook".
    ordered = sorted(aliases, key=len, reverse=True)
    groups = {f"a{i}": key for i, key in enumerate(ordered)}
    by_first: dict[str, list[str]] = {}
    for group, key in groups.items():
        by_first.setdefault(key[0], []).append(f"(?P<{group}>{_key_pattern(key)})")
    patterns = {first: re.compile(rf"(?:{'|'.join(body)})(?!\w)") for first, body in by_first.items()}
    starts = re.compile(rf"(?<!\w)[{''.join(re.escape(first) for first in sorted(by_first))}]")
    return starts, patterns, groups


def _key_pattern(key: str) -> str:
    words = []
    for word in key.split():
        inflected = len(word) >= _INFLECTED_MIN_LEN and word[-1].isalpha()
        words.append(re.escape(word) + (_ENDINGS if inflected else ""))
    return r"\s+".join(words)


def _compound_part(word: str, names: frozenset[str]) -> str | None:
    """The catalogue name a compound word ends with (its head), else the one it starts with."""
    for start in range(_COMPOUND_MIN_REST, len(word) - _COMPOUND_MIN_NAME + 1):
        tail = word[start:]
        for ending in ("", "s", "n", "en", "e"):
            if ending and not tail.endswith(ending):
                continue
            key = tail[: len(tail) - len(ending)]
            if key in names:
                return key
    for end in range(len(word) - _COMPOUND_MIN_REST, _COMPOUND_MIN_NAME - 1, -1):
        if word[:end] in names:
            return word[:end]
    return None


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
