from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from .health import healthz, readyz
from .security import csp_update

# Swagger UI and Redoc set element styles inline; Redoc renders in a blob: worker and draws data:
# images. Their scripts are still only the local files.
docs_policy = csp_update(
    style_src="'self' 'unsafe-inline'",
    img_src="'self' data:",
    worker_src="'self' blob:",
)

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", docs_policy(SpectacularSwaggerSplitView.as_view(url_name="schema")), name="api-docs"),
    path("api/redoc/", docs_policy(SpectacularRedocView.as_view(url_name="schema")), name="api-redoc"),
    path("", include("socialitsm.urls")),
]

handler400 = "project.errors.bad_request"
handler403 = "project.errors.permission_denied"
handler404 = "project.errors.page_not_found"
handler500 = "project.errors.server_error"
