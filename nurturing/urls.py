"""Nurture sequence dashboard pages (marketers)."""

from django.urls import path

from . import template_views, views

app_name = "nurturing_ui"

urlpatterns = [
    path("sequences/", views.sequences_list, name="sequences"),
    path("sequences/new/", views.sequence_edit, name="sequence-new"),
    path("sequences/enroll/", views.leads_enroll, name="enroll-leads"),
    path("sequences/enroll/<int:lead_id>/", views.lead_enroll, name="enroll-lead"),
    path("sequences/<int:sequence_id>/", views.sequence_detail, name="sequence"),
    path("sequences/<int:sequence_id>/edit/", views.sequence_edit, name="sequence-edit"),
    path("sequences/<int:sequence_id>/preview/", views.sequence_preview, name="sequence-preview"),
    path("email-templates/", template_views.email_templates_list, name="email-templates"),
    path("email-templates/new/", template_views.email_template_edit, name="email-template-new"),
    path("email-templates/<int:template_id>/edit/", template_views.email_template_edit, name="email-template-edit"),
    path(
        "email-templates/<int:template_id>/delete/", template_views.email_template_delete, name="email-template-delete"
    ),
]
