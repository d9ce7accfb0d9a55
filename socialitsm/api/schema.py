"""The OpenAPI schema's AutoSchema: every operation also lists the errors it can answer."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as BaseAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, for a person to read.")


FIELD_ERRORS = {
    "type": "object",
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
    "description": 'Messages by field (or non_field_errors), e.g. {"opened_before": ["..."]}; '
    'an unreadable body is {"error": "invalid_json", "detail": "..."}.',
}


class AutoSchema(BaseAutoSchema):
    """Adds the answers DRF gives before or around the view's own: 400 for input it refuses,
    401 without valid credentials, 403 without the role, 404 for an unknown object in the path,
    429 where the view is throttled. Responses a view documents itself are kept."""

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for code, response in self._error_responses().items():
            if code not in responses:
                responses[code] = self._get_response_for_code(response, code, direction=direction)
        return responses

    def _error_responses(self) -> dict[str, Any]:
        view = self.view
        errors: dict[str, Any] = {}
        signed = not view.get_authenticators()
        if self.method in ("POST", "PUT", "PATCH") or self._get_filter_parameters():
            errors["400"] = OpenApiResponse(FIELD_ERRORS, description="Invalid input, by field.")
        if not signed and not all(isinstance(p, AllowAny) for p in view.get_permissions()):
            errors["401"] = OpenApiResponse(ErrorSerializer, description="No or invalid credentials.")
            errors["403"] = OpenApiResponse(ErrorSerializer, description="Logged in without the role or permission.")
        if not signed and "{" in self.path:
            errors["404"] = OpenApiResponse(ErrorSerializer, description="No such object.")
        elif not signed and self._is_list_view() and getattr(view, "pagination_class", None):
            errors["404"] = OpenApiResponse(ErrorSerializer, description="No such page.")
        if view.get_throttles():
            errors["429"] = OpenApiResponse(ErrorSerializer, description="Too many requests; see Retry-After.")
        return errors
