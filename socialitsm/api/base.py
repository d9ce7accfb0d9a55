"""The API's own policies, set on its views rather than read from the host's REST_FRAMEWORK.

A host project's defaults (often AllowAny, no pagination, another exception handler) must not
open or reshape these endpoints: every SocialITSM view states who may call it, how it is
authenticated, limited, parsed, paginated, filtered, described and how its errors look.
project/settings.py sets the same values as defaults for the demo project's own use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.authentication import SessionAuthentication
from rest_framework.filters import OrderingFilter
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.routers import APIRootView

from .errors import exception_handler
from .parsers import StrictJSONParser
from .permissions import IsAgent
from .schema import AutoSchema
from .throttling import ThrottledTokenAuthentication, UserRateThrottle


class Pagination(PageNumberPagination):
    page_size = 50


class ApiPolicy:
    """Mixed in before DRF's view class: `class XViewSet(ApiPolicy, GenericViewSet)`."""

    # Token first so an anonymous request gets 401 with a WWW-Authenticate header, not 403.
    authentication_classes: tuple[type, ...] = (ThrottledTokenAuthentication, SessionAuthentication)
    permission_classes: tuple[type, ...] = (IsAgent,)
    throttle_classes: tuple[type, ...] = (UserRateThrottle,)
    parser_classes: tuple[type, ...] = (StrictJSONParser, FormParser, MultiPartParser)
    pagination_class: type | None = Pagination
    filter_backends: tuple[type, ...] = (DjangoFilterBackend, OrderingFilter)
    schema: Any = AutoSchema()

    def get_exception_handler(self) -> Callable[..., Any]:
        return exception_handler


class RootView(ApiPolicy, APIRootView):
    """The router's index of endpoints, for agents only; not in the schema."""

    schema = None
