"""Webhook ingest: a source pushes signed posts in the documented JSON format to a channel."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import build_basic_type
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from socialitsm.connectors import jsonpost
from socialitsm.models import Channel, Network
from socialitsm.ratelimit import client_address, exceeded, hit
from socialitsm.services.ingest import posts_ingest
from socialitsm.signing import SIGNATURE_HEADER, signature_valid
from socialitsm.text import clean_text

from . import parsers
from .base import ApiPolicy
from .serializers import IngestErrorSerializer, IngestResultSerializer

BAD_SIGNATURE = "The signature is not valid for this endpoint."


class AwareDateTimeFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "socialitsm.connectors.jsonpost.AwareDateTimeField"

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = build_basic_type(OpenApiTypes.DATETIME)
        assert schema is not None
        return schema


@extend_schema_serializer(component_name="InboundAuthor")
class InboundAuthorSerializer(jsonpost.AuthorSerializer):
    pass


@extend_schema_serializer(component_name="InboundPost")
class InboundPostSerializer(jsonpost.PostSerializer):
    author = InboundAuthorSerializer()


@extend_schema_serializer(component_name="InboundPostBatch")
class InboundPostBatchSerializer(serializers.Serializer):
    posts = InboundPostSerializer(many=True)


# Documentation only: the view parses with connectors.jsonpost, which these serializers mirror.
IngestPayload = PolymorphicProxySerializer(
    component_name="IngestPayload",
    serializers=[InboundPostSerializer, InboundPostBatchSerializer],
    resource_type_field_name=None,
)


def signed_error(realm: str, code: int, error: str, **extra: Any) -> Response:
    """An error answer of a signed endpoint; a 401 names the signature header as its scheme."""
    headers = (
        {"WWW-Authenticate": f'{SIGNATURE_HEADER} realm="{realm}"'} if code == status.HTTP_401_UNAUTHORIZED else None
    )
    return Response({"error": error, **extra}, status=code, headers=headers)


def _error(code: int, error: str, **extra: Any) -> Response:
    return signed_error("ingest", code, error, **extra)


# Longer than any slug a channel or connection can have: looked up as no such endpoint.
MAX_SLUG_LENGTH = 255


def slug_lookup(slug: str) -> str | None:
    """The slug to look up, or None for one no row can hold (a NUL, a lone surrogate, too long),
    which PostgreSQL would fail on instead of finding nothing."""
    if len(slug) > MAX_SLUG_LENGTH or clean_text(slug) != slug:
        return None
    return slug


class SignedWebhookView(ApiPolicy, APIView):
    """An endpoint other systems call: no session or token, an HMAC of the raw body instead.

    Rate limits apply around the signature, not before it: calls refused for their signature
    (or size) count per client address ("ingest_refused") and an address over that limit is
    refused before its body is read; a correctly signed call counts against the bucket of what
    it signed for ("ingest", per channel or connection), which nobody without the secret can
    use up."""

    authentication_classes: tuple[type, ...] = ()
    permission_classes = (AllowAny,)
    throttle_classes: tuple[type, ...] = ()
    realm = "ingest"
    # Only documents the media type: the body is read raw, parsed with the same limits, and
    # request.data is never touched.
    parser_classes = (parsers.StrictJSONParser,)

    def refused_wait(self, request: Request) -> int | None:
        """Seconds this caller's address must wait after too many refused calls, else None."""
        return exceeded("ingest_refused", client_address(request))

    def refusal(self, request: Request, code: int, error: str, detail: str) -> Response:
        """A refused call, counted against the caller's address."""
        hit("ingest_refused", client_address(request))
        return signed_error(self.realm, code, error, detail=detail)

    def signed_wait(self, bucket: str) -> int | None:
        """Count one correctly signed call against `bucket`; the seconds to wait when over."""
        return hit("ingest", bucket)

    def too_many(self, wait: int) -> Response:
        return Response(
            {"error": "throttled", "detail": f"Too many calls; try again in {wait} seconds."},
            status=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(wait)},
        )


class IngestView(SignedWebhookView):
    @extend_schema(
        operation_id="ingest_create",
        summary="Push posts to a webhook channel",
        description=(
            "Signed with the channel secret: header "
            "`X-SocialITSM-Signature: sha256=<hex HMAC-SHA256 of the raw body>`. "
            'The body is one post or `{"posts": [...]}`; a batch with an invalid post is refused whole. '
            "Posts already stored (same id on this channel) are counted as duplicates and left unchanged, "
            "unless sent with a later `edited_at`: then they take the new text and count as edited; "
            "ids, authors and threads are this channel's own, never another channel's."
        ),
        auth=[],
        parameters=[
            OpenApiParameter(
                SIGNATURE_HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description="sha256=<hex HMAC-SHA256 of the raw body, keyed by the channel secret>",
            ),
            OpenApiParameter(
                "slug", OpenApiTypes.STR, OpenApiParameter.PATH, description="The webhook channel's slug."
            ),
        ],
        request=IngestPayload,
        responses={
            202: IngestResultSerializer,
            400: OpenApiResponse(
                IngestErrorSerializer, description="invalid_json or invalid_post (with fields by path)"
            ),
            401: OpenApiResponse(
                IngestErrorSerializer,
                description="invalid_signature: missing or wrong signature, or no such enabled channel",
            ),
            413: OpenApiResponse(IngestErrorSerializer, description="too_large"),
            429: OpenApiResponse(
                IngestErrorSerializer,
                description="throttled: the channel's rate, or this address's refused calls, are used up; "
                "Retry-After says when to come back",
            ),
        },
        examples=[
            OpenApiExample(
                "One post",
                request_only=True,
                value={
                    "id": "abc-1",
                    "text": "VPN down again, third time this week",
                    "created_at": "2026-11-26T08:15:00Z",
                    "author": {"id": "u-17", "handle": "@maria", "name": "Maria", "url": "https://example.com/@maria"},
                    "url": "https://example.com/@maria/abc-1",
                    "lang": "en",
                },
            ),
        ],
    )
    def post(self, request: Request, slug: str) -> Response:
        wait = self.refused_wait(request)
        if wait is not None:
            return self.too_many(wait)
        try:
            body = request._request.body
        except RequestDataTooBig:
            return self.refusal(
                request,
                status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                "too_large",
                "The body is larger than this server accepts.",
            )
        header = request.headers.get(SIGNATURE_HEADER)
        if not header:
            return self.refusal(
                request, status.HTTP_401_UNAUTHORIZED, "invalid_signature", f"The {SIGNATURE_HEADER} header is missing."
            )
        lookup = slug_lookup(slug)
        channel = (
            Channel.objects.filter(slug=lookup, network=Network.WEBHOOK, enabled=True).first()
            if lookup is not None
            else None
        )
        if channel is None or not signature_valid(channel.credentials.get("secret", ""), body, header):
            return self.refusal(request, status.HTTP_401_UNAUTHORIZED, "invalid_signature", BAD_SIGNATURE)
        wait = self.signed_wait(f"channel:{channel.pk}")
        if wait is not None:
            return self.too_many(wait)
        try:
            data = parsers.decode(body)
        except UnicodeDecodeError:
            return _error(status.HTTP_400_BAD_REQUEST, "invalid_json", detail="The body is not UTF-8.")
        except ValueError as exc:
            return _error(status.HTTP_400_BAD_REQUEST, "invalid_json", detail=f"The body is not JSON: {exc}")
        try:
            posts = jsonpost.parse_payload(data)
        except jsonpost.PostFormatError as exc:
            return _error(status.HTTP_400_BAD_REQUEST, "invalid_post", fields=exc.errors)
        rule = channel.rules.filter(enabled=True).order_by("id").first()
        result = posts_ingest(channel=channel, posts=posts, rule=rule)
        answer = {"received": result.received, "created": result.created, "duplicates": result.duplicates}
        if result.rejected:
            answer["rejected"] = result.rejected
        if result.edited:
            answer["edited"] = result.edited
        return Response(answer, status=status.HTTP_202_ACCEPTED)
