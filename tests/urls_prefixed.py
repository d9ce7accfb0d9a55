"""A host project's URLconf: SocialITSM under a prefix, the host's own login, and none of the
demo project's extra names (API docs, admin)."""

from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("staff/login/", auth_views.LoginView.as_view(), name="login"),
    path("staff/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("itsm/social/", include("socialitsm.urls")),
]
