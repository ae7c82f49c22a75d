"""Dashboard pages for leads: funnel overview, leads list and detail, the sales queue and pipeline, forms.

Views are thin: they parse input with a Django form, call a selector or a service
and render a template (a whole page, or the partial htmx asked for). Business
rules (who may accept, which moves are legal) live in ``leads.services``; a
``DomainError`` from a service becomes a message on the page.

One sub-module per page: ``accounts`` (companies, duplicates, the merge preview, a lead's tags), ``overview`` (home, the funnel), ``listing`` (leads list and bulk
bar), ``detail``, ``actions`` (the stage actions every page posts to), ``sales`` (queue and
pipeline, whose cards ``cards`` builds), ``webforms``, ``imports`` (CSV import steps), ``reps``,
``privacy`` (erase, export, suppressions), ``segments`` (segment list, editor, page, static lists),
``sites`` (tracked websites); ``common`` holds the shared helpers.
"""

from .accounts import companies_list, company_detail, duplicates_list, lead_merge, lead_tags
from .actions import ACTION_DONE, ACTION_FORMS, CloseForm, QualifyForm, ReasonForm, RejectForm, lead_action
from .common import form_error_text, is_htmx, safe_next
from .detail import lead_activity_log, lead_detail, lead_profile_edit
from .imports import import_detail, import_errors, import_map, import_status, imports_list
from .listing import BulkForm, leads_bulk, leads_export, leads_list
from .overview import FUNNEL_CACHE_SECONDS, funnel_overview, home
from .privacy import EraseForm, SuppressionForm, lead_erase, lead_export_download, suppression_delete, suppressions
from .reports import cohort_report, reps_report
from .reps import rep_away, rep_edit, reps_list
from .sales import expansion_close, pipeline, queue
from .segments import (
    lead_list_membership,
    segment_create,
    segment_delete,
    segment_detail,
    segment_edit,
    segment_from_filters,
    segment_members,
    segments_list,
)
from .sites import SiteForm, site_detail, sites_list
from .webforms import WebFormForm, form_create, form_detail, form_edit, form_snippet_preview, forms_list

__all__ = [
    "ACTION_DONE",
    "ACTION_FORMS",
    "FUNNEL_CACHE_SECONDS",
    "BulkForm",
    "cohort_report",
    "expansion_close",
    "reps_report",
    "CloseForm",
    "EraseForm",
    "QualifyForm",
    "ReasonForm",
    "RejectForm",
    "SuppressionForm",
    "SiteForm",
    "WebFormForm",
    "companies_list",
    "company_detail",
    "duplicates_list",
    "form_create",
    "form_detail",
    "form_edit",
    "form_error_text",
    "form_snippet_preview",
    "forms_list",
    "funnel_overview",
    "home",
    "import_detail",
    "import_errors",
    "import_map",
    "import_status",
    "imports_list",
    "is_htmx",
    "lead_action",
    "lead_activity_log",
    "lead_detail",
    "lead_erase",
    "lead_export_download",
    "lead_merge",
    "lead_tags",
    "lead_profile_edit",
    "leads_bulk",
    "leads_export",
    "leads_list",
    "pipeline",
    "queue",
    "rep_away",
    "rep_edit",
    "reps_list",
    "safe_next",
    "suppression_delete",
    "suppressions",
    "segment_create",
    "segment_delete",
    "segment_detail",
    "segment_edit",
    "segment_from_filters",
    "segment_members",
    "segments_list",
    "lead_list_membership",
    "site_detail",
    "sites_list",
]
