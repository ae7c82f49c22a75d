"""Dashboard pages of the leads app (the funnel overview is the home page)."""

from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("leads/", views.leads_list, name="leads"),
    path("leads/bulk/", views.leads_bulk, name="leads-bulk"),
    path("leads/<int:lead_id>/", views.lead_detail, name="lead"),
    path("leads/<int:lead_id>/erase/", views.lead_erase, name="lead-erase"),
    path("leads/<int:lead_id>/export/", views.lead_export_download, name="lead-export"),
    path("leads/<int:lead_id>/<slug:action>/", views.lead_action, name="lead-action"),
    path("queue/", views.queue, name="queue"),
    path("pipeline/", views.pipeline, name="pipeline"),
    path("suppressions/", views.suppressions, name="suppressions"),
    path("suppressions/<int:suppression_id>/delete/", views.suppression_delete, name="suppression-delete"),
    path("forms/", views.forms_list, name="forms"),
    path("forms/new/", views.form_create, name="form-create"),
    path("forms/<slug:slug>/", views.form_detail, name="form"),
]
