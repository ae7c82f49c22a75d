from django.urls import path

from . import api

urlpatterns = [
    path("scoring/rules/", api.RuleListCreateApi.as_view(), name="scoring-rules"),
    path("scoring/rules/<int:pk>/", api.RuleDetailApi.as_view(), name="scoring-rule"),
    path("scoring/settings/", api.SettingsApi.as_view(), name="scoring-settings"),
    path("scoring/recompute/", api.RecomputeApi.as_view(), name="scoring-recompute"),
    path("leads/<int:pk>/score/", api.LeadScoreApi.as_view(), name="lead-score"),
]
