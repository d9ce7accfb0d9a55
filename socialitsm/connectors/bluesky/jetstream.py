"""Which of a channel's watch rules a post record from Jetstream answers to."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..base import RuleKind
from .records import _dict, _did_of

if TYPE_CHECKING:
    from socialitsm.models import WatchRule


class _Matcher:
    """Which of a channel's rules a Jetstream post record answers to."""

    def __init__(self, rules: Sequence[WatchRule], own_did: str) -> None:
        self.own_did = own_did
        self.mentions = next((r for r in rules if r.kind == RuleKind.MENTIONS), None)
        self.hashtags = [
            (r.query.strip().lstrip("#").lower(), r) for r in rules if r.kind == RuleKind.HASHTAG and r.query
        ]
        self.searches = [(_terms(r.query), r) for r in rules if r.kind == RuleKind.SEARCH and r.query.strip()]

    def match(self, record: Mapping[str, Any]) -> WatchRule | None:
        text = str(record.get("text") or "")
        features = [
            f
            for facet in record.get("facets") or []
            if isinstance(facet, dict)
            for f in facet.get("features") or []
            if isinstance(f, dict)
        ]
        if self.mentions is not None and self.own_did and self._about_us(record, features):
            return self.mentions
        tags = {str(f.get("tag", "")).lower() for f in features if f.get("$type") == "app.bsky.richtext.facet#tag"}
        tags |= {str(t).lower() for t in record.get("tags") or [] if isinstance(t, str)}
        tags |= {t.lower() for t in re.findall(r"#(\w+)", text)}
        for tag, rule in self.hashtags:
            if tag in tags:
                return rule
        lowered = text.lower()
        for terms, rule in self.searches:
            if all(term in lowered for term in terms):
                return rule
        return None

    def _about_us(self, record: Mapping[str, Any], features: list[dict[str, Any]]) -> bool:
        if any(f.get("$type") == "app.bsky.richtext.facet#mention" and f.get("did") == self.own_did for f in features):
            return True
        parent = _dict(_dict(record.get("reply")).get("parent"))
        if _did_of(str(parent.get("uri") or "")) == self.own_did:
            return True
        quoted = _dict(_dict(record.get("embed")).get("record"))
        return _did_of(str(quoted.get("uri") or "")) == self.own_did


def _terms(query: str) -> list[str]:
    return [(phrase or word).lower() for phrase, word in re.findall(r'"([^"]+)"|(\S+)', query)]
