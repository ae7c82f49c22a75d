"""Only the baseline view (bench.baseline_bare_settings)."""

from django.urls import path

from .views import baseline_submit

urlpatterns = [path("bench/baseline/submit/", baseline_submit, name="bench-baseline-submit")]
