"""Every write of a lead: its entry into the funnel, its profile, its interactions, its stage,
its owner and its history. By subject:

- :mod:`.funnel` — enter the funnel; change stage (one or many), the one way a stage changes;
- :mod:`.routing` — assign a rep (round-robin, away, capacity, SLA deadline, history);
- :mod:`.qualification` — scores follow events, and scoring's qualifications are applied;
- :mod:`.submissions` — the public form intake;
- :mod:`.interactions` — events in, one or a thousand;
- :mod:`.tracking` — website page views, anonymous visitors and their identification;
- :mod:`.profile` — leads created and edited by people and integrations;
- :mod:`.workflow` — the sales workflow (accept, reject, qualify, close, disqualify, mark MQL).
"""

from ..selectors import current_sla_hours
from .funnel import (
    Entered,
    Entry,
    IllegalTransition,
    StageChanges,
    StageMove,
    companies_ensure,
    lead_change_stage,
    leads_apply_qualifications,
    leads_change_stage,
    leads_enter_funnel,
    stage_changed_payload,
)
from .interactions import (
    INTERACTION_TYPES,
    MAX_BULK_EVENTS,
    MAX_FUTURE_SKEW,
    MAX_PROPERTIES_SIZE,
    OUTBOUND_TYPES,
    BulkResult,
    CleanEvent,
    event_clean,
    interaction_record,
    interactions_record_bulk,
    unknown_email_policy,
)
from .profile import EDITABLE_FIELDS, lead_create, lead_update_profile
from .qualification import (
    leads_promote_qualified,
    leads_score,
    leads_score_pending,
    leads_score_pending_all,
    scoring_deferred,
)
from .routing import Reassignment, RepRoster, leads_assign, rep_pick_next, rep_queue
from .submissions import SubmitResult, lead_submit_form
from .tracking import (
    TRACKING_SOURCE,
    TrackResult,
    anonymous_activity_purge,
    pageview_track,
    site_get_active,
    tracking_link_identify,
    visitor_identify_by_key,
    visitors_identify,
)
from .workflow import (
    QUALIFICATION_FACTS,
    lead_accept,
    lead_close,
    lead_disqualify,
    lead_mark_mql,
    lead_qualify,
    lead_reject,
    leads_mark_mql,
)

__all__ = [
    "TRACKING_SOURCE",
    "TrackResult",
    "anonymous_activity_purge",
    "pageview_track",
    "site_get_active",
    "tracking_link_identify",
    "visitor_identify_by_key",
    "visitors_identify",
    "EDITABLE_FIELDS",
    "INTERACTION_TYPES",
    "MAX_BULK_EVENTS",
    "MAX_FUTURE_SKEW",
    "MAX_PROPERTIES_SIZE",
    "OUTBOUND_TYPES",
    "QUALIFICATION_FACTS",
    "BulkResult",
    "CleanEvent",
    "Entered",
    "Entry",
    "IllegalTransition",
    "Reassignment",
    "RepRoster",
    "StageChanges",
    "StageMove",
    "SubmitResult",
    "companies_ensure",
    "current_sla_hours",
    "event_clean",
    "interaction_record",
    "interactions_record_bulk",
    "lead_accept",
    "lead_change_stage",
    "lead_close",
    "lead_create",
    "lead_disqualify",
    "lead_mark_mql",
    "lead_qualify",
    "lead_reject",
    "lead_submit_form",
    "lead_update_profile",
    "leads_apply_qualifications",
    "leads_assign",
    "leads_change_stage",
    "leads_enter_funnel",
    "leads_mark_mql",
    "leads_promote_qualified",
    "leads_score",
    "leads_score_pending",
    "leads_score_pending_all",
    "scoring_deferred",
    "rep_pick_next",
    "rep_queue",
    "stage_changed_payload",
    "unknown_email_policy",
]
