"""The host project's URLs: its own pages, and SocialITSM under one prefix."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("itsm/social/", include("socialitsm.urls")),
]
