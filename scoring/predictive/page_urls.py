"""Dashboard routes of scoring insights (predictive model, back-tests, channel quality)."""

from django.urls import path

from . import views

app_name = "predictive_ui"

urlpatterns = [
    path("scoring/insights/", views.insights, name="insights"),
    path("scoring/insights/train/", views.train, name="train"),
    path("scoring/insights/backtest/", views.backtest_start, name="backtest"),
    path("scoring/insights/backtest/<int:job_id>/apply/", views.backtest_apply, name="backtest-apply"),
]
