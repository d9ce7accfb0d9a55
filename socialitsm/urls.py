"""Every SocialITSM route under one include(), mountable under any prefix:

    path("itsm/social/", include("socialitsm.urls"))

gives the agents' pages at itsm/social/, the REST API at itsm/social/api/v1/, and the signed
webhooks (posts in, ITSM suites' callbacks) at itsm/social/api/v1/ingest/<channel>/ and
itsm/social/api/v1/itsm/<connection>/webhook/. Names keep their namespaces ("socialitsm:queue",
"socialitsm-api:incident-list"), so links follow the prefix."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("api/v1/", include("socialitsm.api.urls")),
    path("", include("socialitsm.web.urls")),
]
