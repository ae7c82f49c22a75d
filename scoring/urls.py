"""Scoring dashboard pages (marketers)."""

from django.urls import path

from . import views

app_name = "scoring_ui"

urlpatterns = [
    path("scoring/", views.scoring_home, name="home"),
    path("scoring/rules/new/", views.rule_edit, name="rule-new"),
    path("scoring/rules/<int:rule_id>/", views.rule_edit, name="rule"),
    path("scoring/rules/<int:rule_id>/delete/", views.rule_delete, name="rule-delete"),
    path("scoring/settings/", views.settings_save, name="settings"),
    path("scoring/recompute/", views.recompute_start, name="recompute"),
    path("scoring/recompute/status/", views.recompute_status, name="recompute-status"),
]
