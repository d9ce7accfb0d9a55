"""The API's own policies, set on its views rather than read from the host's REST_FRAMEWORK.

A host project's defaults (often AllowAny, no pagination, another exception handler) must not
open or reshape these endpoints: every SocialITSM view states who may call it, how it is
authenticated, limited, parsed, paginated, filtered, described and how its errors look.
project/settings.py sets the same values as defaults for the demo project's own use."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.filters import OrderingFilter
from rest_framework.pagination import BasePagination, PageNumberPagination
from rest_framework.parsers import BaseParser, FormParser, MultiPartParser
from rest_framework.routers import APIRootView
from rest_framework.schemas.inspectors import ViewInspector
from rest_framework.throttling import BaseThrottle

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
    authentication_classes: Sequence[type[BaseAuthentication]] = (ThrottledTokenAuthentication, SessionAuthentication)
    permission_classes: Sequence[Any] = (IsAgent,)
    throttle_classes: Sequence[type[BaseThrottle]] = (UserRateThrottle,)
    parser_classes: Sequence[type[BaseParser]] = (StrictJSONParser, FormParser, MultiPartParser)
    pagination_class: type[BasePagination] | None = Pagination
    filter_backends: Any = (DjangoFilterBackend, OrderingFilter)
    schema: ViewInspector | None = AutoSchema()

    def get_exception_handler(self) -> Callable[..., Any]:
        return exception_handler


class RootView(ApiPolicy, APIRootView):
    """The router's index of endpoints, for agents only; not in the schema."""

    schema = None
