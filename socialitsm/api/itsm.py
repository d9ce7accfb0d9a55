"""Inbound ITSM webhooks: a suite tells us one of its records changed, and we pull it."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from socialitsm.itsm import adapter_for
from socialitsm.models import ItsmConnection
from socialitsm.services.itsm_sync import itsm_webhook_receive
from socialitsm.signing import SIGNATURE_HEADER
from socialitsm.text import clean_text, shorten

from . import parsers
from .ingest import SignedWebhookView, signed_error, slug_lookup


class ItsmWebhookResultSerializer(serializers.Serializer):
    incident = serializers.CharField(help_text="The incident linked to the record; a pull is queued.")


class ItsmWebhookErrorSerializer(serializers.Serializer):
    error = serializers.ChoiceField(
        choices=["invalid_signature", "too_large", "invalid_json", "no_record", "unknown_record", "throttled"]
    )
    detail = serializers.CharField()


def _error(code: int, error: str, detail: str) -> Response:
    return signed_error("itsm", code, error, detail=detail)


class ItsmWebhookView(SignedWebhookView):
    realm = "itsm"

    @extend_schema(
        operation_id="itsm_webhook",
        summary="A suite reports a change to one of its records",
        description=(
            "Signed with the connection's webhook_secret: header "
            "`X-SocialITSM-Signature: sha256=<hex HMAC-SHA256 of the raw body>` (Zendesk connections also "
            "accept Zendesk's own webhook signature). The body names the record: "
            '`{"id": "<remote id>"}`, or the suite\'s own payload (ServiceNow `sys_id`, Jira `issue.id`, '
            "Zendesk `ticket_id`, RT `ticket`). The record is then read from the suite, so repeated or "
            "replayed calls only cause another read."
        ),
        auth=[],
        parameters=[
            OpenApiParameter(SIGNATURE_HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER, required=False),
            OpenApiParameter("slug", OpenApiTypes.STR, OpenApiParameter.PATH, description="The connection's slug."),
        ],
        request=OpenApiTypes.OBJECT,
        responses={
            202: ItsmWebhookResultSerializer,
            400: OpenApiResponse(ItsmWebhookErrorSerializer, description="invalid_json or no_record"),
            401: OpenApiResponse(ItsmWebhookErrorSerializer, description="invalid_signature"),
            404: OpenApiResponse(ItsmWebhookErrorSerializer, description="unknown_record: no incident is linked"),
            413: OpenApiResponse(ItsmWebhookErrorSerializer, description="too_large"),
            429: OpenApiResponse(ItsmWebhookErrorSerializer, description="throttled; see Retry-After"),
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        wait = self.refused_wait(request)
        if wait is not None:
            return self.too_many(wait)
        try:
            body = request._request.body
        except RequestDataTooBig:
            return self.refusal(
                request, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, "too_large", "The body is too large."
            )
        lookup = slug_lookup(slug)
        connection = ItsmConnection.objects.filter(slug=lookup, enabled=True).first() if lookup is not None else None
        adapter = adapter_for(connection) if connection is not None else None
        if adapter is None or not adapter.webhook_signature_valid(request.headers, body):
            return self.refusal(
                request,
                status.HTTP_401_UNAUTHORIZED,
                "invalid_signature",
                "The signature is not valid for this endpoint.",
            )
        assert connection is not None
        wait = self.signed_wait(f"itsm:{connection.pk}")
        if wait is not None:
            return self.too_many(wait)
        try:
            data = parsers.decode(body)
        except (UnicodeDecodeError, ValueError) as exc:
            return _error(status.HTTP_400_BAD_REQUEST, "invalid_json", f"The body is not JSON: {exc}")
        remote_id = adapter.webhook_remote_id(data)
        if not remote_id:
            return _error(status.HTTP_400_BAD_REQUEST, "no_record", "The body names no record of the suite.")
        link = itsm_webhook_receive(connection=connection, remote_id=remote_id)
        if link is None:
            named = shorten(clean_text(remote_id), 128)
            return _error(status.HTTP_404_NOT_FOUND, "unknown_record", f"No incident is linked to {named}.")
        return Response({"incident": link.incident.number}, status=status.HTTP_202_ACCEPTED)
