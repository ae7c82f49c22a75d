from django.urls import path

from . import api

urlpatterns = [
    path("sequences/", api.SequenceListCreateApi.as_view(), name="api-sequences"),
    path("sequences/<int:sequence_id>/", api.SequenceDetailApi.as_view(), name="api-sequence"),
    path(
        "sequences/<int:sequence_id>/enrollments/",
        api.SequenceEnrollmentsApi.as_view(),
        name="api-sequence-enrollments",
    ),
    path("sequences/<int:sequence_id>/stats/", api.SequenceStatsApi.as_view(), name="api-sequence-stats"),
    path("sequences/<int:sequence_id>/preview/", api.SequencePreviewApi.as_view(), name="api-sequence-preview"),
]
