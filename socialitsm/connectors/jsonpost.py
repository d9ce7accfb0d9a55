"""The documented JSON post format, shared by the webhook and replay connectors.

One post:
    {"id": "abc-1", "text": "VPN down again", "created_at": "2026-11-26T08:15:00Z",
     "author": {"id": "u-17", "handle": "@maria", "name": "Maria", "url": "https://..."},
     "url": "https://...", "in_reply_to": "abc-0", "conversation_id": "c-5",
     "lang": "en", "direct": false}
Required: id, text, created_at (ISO 8601 with a UTC offset), author.id. A batch is
{"posts": [post, ...]} with at most SOCIALITSM_MAX_BATCH posts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from socialitsm import datetimes
from socialitsm.conf import conf
from socialitsm.text import clean_json, clean_text

from .base import InboundAuthor, InboundPost


class PostFormatError(ValueError):
    """The payload does not follow the format; `errors` maps field paths to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


class CleanCharField(serializers.CharField):
    """Strips NULs, control characters and lone surrogates instead of refusing the post."""

    def run_validation(self, data: Any = serializers.empty) -> Any:
        if isinstance(data, str):
            data = clean_text(data)
        return super().run_validation(data)


class AwareDateTimeField(serializers.Field):
    """An ISO 8601 timestamp with a UTC offset, from 2000 to a day ahead of now (see datetimes)."""

    def to_internal_value(self, data: Any) -> datetime:
        now = timezone.now()
        try:
            return datetimes.parse_instant(
                data,
                earliest=datetimes.POSTS_EARLIEST,
                latest=now + datetimes.POSTS_AHEAD,
                future_message=True,
            )
        except datetimes.InstantError as exc:
            raise serializers.ValidationError(str(exc), code=exc.code) from exc

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()


class AuthorSerializer(serializers.Serializer):
    id = CleanCharField(max_length=255)
    handle = CleanCharField(max_length=255, required=False, allow_blank=True, default="")
    name = CleanCharField(max_length=255, required=False, allow_blank=True, default="")
    url = serializers.URLField(max_length=1000, required=False, allow_blank=True, default="")


class PostSerializer(serializers.Serializer):
    id = CleanCharField(max_length=255)
    text = CleanCharField(trim_whitespace=False)
    created_at = AwareDateTimeField()
    author = AuthorSerializer()
    url = serializers.URLField(max_length=1000, required=False, allow_blank=True, default="")
    in_reply_to = CleanCharField(max_length=255, required=False, allow_blank=True, default="")
    conversation_id = CleanCharField(max_length=255, required=False, allow_blank=True, default="")
    lang = CleanCharField(max_length=16, required=False, allow_blank=True, default="")
    direct = serializers.BooleanField(required=False, default=False)
    edited_at = AwareDateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="When the author last edited the post: a stored post sent again with a later one takes its text.",
    )

    def validate_text(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("This field may not be blank.")
        if len(value) > conf.MAX_POST_CHARS:
            raise serializers.ValidationError(f"Text is {len(value)} characters; the limit is {conf.MAX_POST_CHARS}.")
        return value


def _flatten(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    if isinstance(errors, dict):
        out: dict[str, list[str]] = {}
        for key, value in errors.items():
            path = key if key == "non_field_errors" and not prefix else f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten(value, path))
        return out
    if isinstance(errors, list) and errors and not isinstance(errors[0], str):
        out = {}
        for index, value in enumerate(errors):
            if value:
                out.update(_flatten(value, f"{prefix}[{index}]"))
        return out
    return {prefix or "non_field_errors": [str(e) for e in errors]}


def _to_inbound(data: dict[str, Any], raw: dict[str, Any]) -> InboundPost:
    author = data["author"]
    return InboundPost(
        external_id=data["id"],
        author=InboundAuthor(author["id"], author["handle"], author["name"], author["url"]),
        text=data["text"],
        posted_at=data["created_at"],
        url=data["url"],
        in_reply_to=data["in_reply_to"],
        conversation_id=data["conversation_id"],
        language=data["lang"].lower(),
        is_direct=data["direct"],
        raw=clean_json(raw),
        edited_at=data["edited_at"],
    )


def parse_post(data: Any, prefix: str = "") -> InboundPost:
    """Validate one post object. Raises PostFormatError naming each bad field."""
    if not isinstance(data, dict):
        raise PostFormatError({prefix or "non_field_errors": ["Expected a JSON object."]})
    serializer = PostSerializer(data=data)
    if not serializer.is_valid():
        raise PostFormatError(_flatten(serializer.errors, prefix))
    return _to_inbound(serializer.validated_data, data)


def parse_payload(data: Any) -> list[InboundPost]:
    """Validate a single post or a {"posts": [...]} batch, all or nothing."""
    if isinstance(data, dict) and "posts" in data:
        items = data["posts"]
        if not isinstance(items, list) or not items:
            raise PostFormatError({"posts": ["Expected a non-empty list of posts."]})
        if len(items) > conf.MAX_BATCH:
            raise PostFormatError({"posts": [f"{len(items)} posts; a batch holds at most {conf.MAX_BATCH}."]})
        errors: dict[str, list[str]] = {}
        posts = []
        for index, item in enumerate(items):
            try:
                posts.append(parse_post(item, f"posts[{index}]"))
            except PostFormatError as exc:
                errors.update(exc.errors)
        if errors:
            raise PostFormatError(errors)
        return posts
    return [parse_post(data)]
