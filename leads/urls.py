"""Dashboard pages of the leads app (the funnel overview is the home page)."""

from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("leads/", views.leads_list, name="leads"),
    path("leads/bulk/", views.leads_bulk, name="leads-bulk"),
    path("leads/<int:lead_id>/", views.lead_detail, name="lead"),
    path("leads/<int:lead_id>/lists/", views.lead_list_membership, name="lead-lists"),
    path("leads/<int:lead_id>/<slug:action>/", views.lead_action, name="lead-action"),
    path("segments/", views.segments_list, name="segments"),
    path("segments/new/", views.segment_create, name="segment-create"),
    path("segments/from-filters/", views.segment_from_filters, name="segment-from-filters"),
    path("segments/<int:segment_id>/", views.segment_detail, name="segment"),
    path("segments/<int:segment_id>/edit/", views.segment_edit, name="segment-edit"),
    path("segments/<int:segment_id>/delete/", views.segment_delete, name="segment-delete"),
    path("segments/<int:segment_id>/members/", views.segment_members, name="segment-members"),
    path("queue/", views.queue, name="queue"),
    path("pipeline/", views.pipeline, name="pipeline"),
    path("forms/", views.forms_list, name="forms"),
    path("forms/new/", views.form_create, name="form-create"),
    path("forms/<slug:slug>/", views.form_detail, name="form"),
]
