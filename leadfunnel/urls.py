from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import views
from .api_views import MeView
from .security import LockoutLoginView, TokenObtainView

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("accounts/login/", LockoutLoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/me/", MeView.as_view(), name="api-me"),
    path("api/v1/auth/token/", TokenObtainView.as_view(), name="api-token"),
    path("api/v1/", include("leads.api_urls")),
    path("api/v1/", include("scoring.api_urls")),
    path("api/v1/", include("scoring.predictive.urls")),
    path("api/v1/", include("nurturing.api_urls")),
    path("api/v1/", include("leadfunnel.api_urls")),
    path("t/", include("nurturing.tracking_urls")),
    path("", include("leadfunnel.page_urls")),
    # Email providers' tracking webhooks (django-anymail): /anymail/<provider>/tracking/.
    path("anymail/", include("anymail.urls")),
    path("", include("nurturing.urls")),
    path("", include("scoring.urls")),
    path("", include("scoring.predictive.page_urls")),
    path("", include("leads.urls")),
]

handler400 = "leadfunnel.views.bad_request"
handler403 = "leadfunnel.views.permission_denied"
handler404 = "leadfunnel.views.page_not_found"
handler500 = "leadfunnel.views.server_error"
