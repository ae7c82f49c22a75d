"""Dashboard pages of the leads app (the funnel overview is the home page)."""

from django.urls import path

from . import views
from .views.consent import consent_confirm_page

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("leads/", views.leads_list, name="leads"),
    path("leads/bulk/", views.leads_bulk, name="leads-bulk"),
    path("leads/duplicates/", views.duplicates_list, name="lead-duplicates"),
    path("leads/<int:lead_id>/", views.lead_detail, name="lead"),
    path("leads/<int:lead_id>/erase/", views.lead_erase, name="lead-erase"),
    path("leads/<int:lead_id>/export/", views.lead_export_download, name="lead-export"),
    path("leads/<int:lead_id>/merge/", views.lead_merge, name="lead-merge"),
    path("leads/<int:lead_id>/tags/", views.lead_tags, name="lead-tags"),
    path("leads/export.csv", views.leads_export, name="leads-export"),
    path("leads/<int:lead_id>/profile/", views.lead_profile_edit, name="lead-profile"),
    path("leads/<int:lead_id>/activity/", views.lead_activity_log, name="lead-activity"),
    path("leads/<int:lead_id>/lists/", views.lead_list_membership, name="lead-lists"),
    path("leads/<int:lead_id>/<slug:action>/", views.lead_action, name="lead-action"),
    path("companies/", views.companies_list, name="companies"),
    path("companies/<int:company_id>/", views.company_detail, name="company"),
    path("segments/", views.segments_list, name="segments"),
    path("segments/new/", views.segment_create, name="segment-create"),
    path("segments/from-filters/", views.segment_from_filters, name="segment-from-filters"),
    path("segments/<int:segment_id>/", views.segment_detail, name="segment"),
    path("segments/<int:segment_id>/edit/", views.segment_edit, name="segment-edit"),
    path("segments/<int:segment_id>/delete/", views.segment_delete, name="segment-delete"),
    path("segments/<int:segment_id>/members/", views.segment_members, name="segment-members"),
    path("queue/", views.queue, name="queue"),
    path("queue/away/", views.rep_away, name="rep-away"),
    path("reps/", views.reps_list, name="reps"),
    path("reps/<int:user_id>/", views.rep_edit, name="rep"),
    path("reports/cohorts/", views.cohort_report, name="report-cohorts"),
    path("reports/reps/", views.reps_report, name="report-reps"),
    path("expansions/<int:opportunity_id>/close/", views.expansion_close, name="expansion-close"),
    path("pipeline/", views.pipeline, name="pipeline"),
    path("suppressions/", views.suppressions, name="suppressions"),
    path("suppressions/<int:suppression_id>/delete/", views.suppression_delete, name="suppression-delete"),
    path("forms/", views.forms_list, name="forms"),
    path("forms/new/", views.form_create, name="form-create"),
    path("forms/snippet-preview/", views.form_snippet_preview, name="form-snippet-preview"),
    path("forms/<slug:slug>/", views.form_detail, name="form"),
    path("forms/<slug:slug>/edit/", views.form_edit, name="form-edit"),
    path("imports/", views.imports_list, name="imports"),
    path("imports/<int:job_id>/", views.import_detail, name="import"),
    path("imports/<int:job_id>/map/", views.import_map, name="import-map"),
    path("imports/<int:job_id>/status/", views.import_status, name="import-status"),
    path("imports/<int:job_id>/errors.csv", views.import_errors, name="import-errors"),
    # Public: the double opt-in link of a confirmation email.
    path("consent/confirm/<str:token>/", consent_confirm_page, name="consent-confirm"),
    path("sites/", views.sites_list, name="sites"),
    path("sites/<int:site_id>/", views.site_detail, name="site"),
]
