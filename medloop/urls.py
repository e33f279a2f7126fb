from django.contrib import admin
from django.urls import include, path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from medloop.converters import IdConverter
from medloop.views import favicon, health

register_converter(IdConverter, "id")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("medloop.accounts.urls")),
    path("api/", include("annotations.api.urls")),
    path("api/", include("active_learning.api.urls")),
    path("api/", include("active_learning.api.verification_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI from the drf-spectacular-sidecar package (no CDN), its set-up script a separate
    # file (?script=) so the page runs under a CSP without inline scripts.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("health/", health, name="health"),
    # Browsers ask for /favicon.ico on pages that name no icon (admin, Swagger UI's own).
    path("favicon.ico", favicon, name="favicon"),
    path("", include("frontend.urls")),
]

handler403 = "medloop.views.permission_denied"
handler404 = "medloop.views.not_found"
handler500 = "medloop.views.server_error"
