"""Dashboard pages of the leads app (the funnel overview is the home page)."""

from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("leads/", views.leads_list, name="leads"),
    path("leads/bulk/", views.leads_bulk, name="leads-bulk"),
    path("leads/export.csv", views.leads_export, name="leads-export"),
    path("leads/<int:lead_id>/", views.lead_detail, name="lead"),
    path("leads/<int:lead_id>/profile/", views.lead_profile_edit, name="lead-profile"),
    path("leads/<int:lead_id>/activity/", views.lead_activity_log, name="lead-activity"),
    path("leads/<int:lead_id>/<slug:action>/", views.lead_action, name="lead-action"),
    path("reports/cohorts/", views.cohort_report, name="report-cohorts"),
    path("reports/reps/", views.reps_report, name="report-reps"),
    path("queue/", views.queue, name="queue"),
    path("expansions/<int:opportunity_id>/close/", views.expansion_close, name="expansion-close"),
    path("pipeline/", views.pipeline, name="pipeline"),
    path("forms/", views.forms_list, name="forms"),
    path("forms/new/", views.form_create, name="form-create"),
    path("forms/<slug:slug>/", views.form_detail, name="form"),
]
