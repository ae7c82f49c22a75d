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
    path("email-templates/", api.EmailTemplateListCreateApi.as_view(), name="api-email-templates"),
    path("email-templates/<int:template_id>/", api.EmailTemplateDetailApi.as_view(), name="api-email-template"),
]
