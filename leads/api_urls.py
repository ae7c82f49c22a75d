from django.urls import path

from . import api, ops_api, tracking_api

urlpatterns = [
    path("forms/", api.FormListCreateView.as_view(), name="api-forms"),
    path("forms/<slug:slug>/", api.FormDetailView.as_view(), name="api-form-detail"),
    path("forms/<slug:slug>/submit/", api.FormSubmitView.as_view(), name="api-form-submit"),
    path("track/", tracking_api.TrackView.as_view(), name="api-track"),
    path("sites/", tracking_api.SiteListCreateView.as_view(), name="api-sites"),
    path("sites/<int:site_id>/", tracking_api.SiteDetailView.as_view(), name="api-site"),
    path("leads/", api.LeadListCreateView.as_view(), name="api-leads"),
    path("leads/<int:lead_id>/", api.LeadDetailView.as_view(), name="api-lead-detail"),
    path("leads/<int:lead_id>/timeline/", api.LeadTimelineView.as_view(), name="api-lead-timeline"),
    path("leads/<int:lead_id>/mark-mql/", api.MarkMqlView.as_view(), name="api-lead-mark-mql"),
    path("leads/<int:lead_id>/accept/", api.AcceptView.as_view(), name="api-lead-accept"),
    path("leads/<int:lead_id>/reject/", api.RejectView.as_view(), name="api-lead-reject"),
    path("leads/<int:lead_id>/qualify/", api.QualifyView.as_view(), name="api-lead-qualify"),
    path("leads/<int:lead_id>/close/", api.CloseView.as_view(), name="api-lead-close"),
    path("leads/<int:lead_id>/disqualify/", api.DisqualifyView.as_view(), name="api-lead-disqualify"),
    path("interactions/", api.InteractionCreateView.as_view(), name="api-interactions"),
    path("interactions/bulk/", api.InteractionBulkView.as_view(), name="api-interactions-bulk"),
    path("funnel/", ops_api.FunnelView.as_view(), name="api-funnel"),
    path("reps/<int:user_id>/", ops_api.RepUpdateView.as_view(), name="api-rep"),
    path("leads/export.csv", ops_api.LeadExportView.as_view(), name="api-leads-export"),
    path("leads/<int:lead_id>/assignments/", ops_api.LeadAssignmentsView.as_view(), name="api-lead-assignments"),
    path("imports/", ops_api.ImportListView.as_view(), name="api-imports"),
    path("imports/<int:pk>/", ops_api.ImportDetailView.as_view(), name="api-import"),
    path("imports/<int:pk>/errors.csv", ops_api.ImportErrorsView.as_view(), name="api-import-errors"),
]
