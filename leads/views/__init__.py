"""Dashboard pages for leads: funnel overview, leads list and detail, the sales queue and pipeline, forms.

Views are thin: they parse input with a Django form, call a selector or a service
and render a template (a whole page, or the partial htmx asked for). Business
rules (who may accept, which moves are legal) live in ``leads.services``; a
``DomainError`` from a service becomes a message on the page.

One sub-module per page: ``overview`` (home, the funnel), ``listing`` (leads list and bulk
bar), ``detail``, ``actions`` (the stage actions every page posts to), ``sales`` (queue and
pipeline, whose cards ``cards`` builds), ``webforms``, ``sites`` (tracked websites); ``common`` holds the shared helpers.
"""

from .actions import ACTION_DONE, ACTION_FORMS, CloseForm, QualifyForm, ReasonForm, RejectForm, lead_action
from .common import form_error_text, is_htmx, safe_next
from .detail import lead_detail
from .listing import BulkForm, leads_bulk, leads_list
from .overview import FUNNEL_CACHE_SECONDS, funnel_overview, home
from .sales import pipeline, queue
from .sites import SiteForm, site_detail, sites_list
from .webforms import WebFormForm, form_create, form_detail, forms_list

__all__ = [
    "ACTION_DONE",
    "ACTION_FORMS",
    "FUNNEL_CACHE_SECONDS",
    "BulkForm",
    "CloseForm",
    "QualifyForm",
    "ReasonForm",
    "RejectForm",
    "SiteForm",
    "WebFormForm",
    "form_create",
    "form_detail",
    "form_error_text",
    "forms_list",
    "funnel_overview",
    "home",
    "is_htmx",
    "lead_action",
    "lead_detail",
    "leads_bulk",
    "leads_list",
    "pipeline",
    "queue",
    "safe_next",
    "site_detail",
    "sites_list",
]
