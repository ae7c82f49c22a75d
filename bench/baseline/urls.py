"""LeadFunnel's URLs plus the baseline view."""

from django.urls import path

from leadfunnel.urls import handler400, handler403, handler404, handler500
from leadfunnel.urls import urlpatterns as app_urlpatterns

from .views import baseline_submit

urlpatterns = [path("bench/baseline/submit/", baseline_submit, name="bench-baseline-submit"), *app_urlpatterns]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
