"""Every write of a lead: its entry into the funnel, its profile, its interactions, its stage,
its owner and its history. By subject:

- :mod:`.funnel` — enter the funnel; change stage (one or many), the one way a stage changes;
- :mod:`.routing` — assign a rep (round-robin, away, capacity, SLA deadline, history);
- :mod:`.qualification` — scores follow events, and scoring's qualifications are applied;
- :mod:`.submissions` — the public form intake;
- :mod:`.interactions` — events in, one or a thousand;
- :mod:`.tracking` — website page views, anonymous visitors and their identification;
- :mod:`.profile` — leads created and edited by people and integrations;
- :mod:`.merge` — two leads that are one person become one (aliases, hooks);
- :mod:`.tags` — tags added to and removed from many leads at once;
- :mod:`.activities` — a person edits the profile or logs a note, call or meeting (who may);
- :mod:`.recycling` — lost → recycled, by the rep or after a cooling-off period;
- :mod:`.expansion` — a customer's expansion opportunity (service qualified), routed to a rep;
- :mod:`.segments` — saved segments and the members of static lists;
- :mod:`.workflow` — the sales workflow (accept, reject, qualify, close, disqualify, mark MQL);
- :mod:`.suppression` — the suppression list every marketing send checks;
- :mod:`.retention` — form payloads, IPs and user agents blanked after the retention period;
- :mod:`.privacy` — erasing a person (the export is a read: :mod:`leads.privacy`).
"""

from ..selectors import current_sla_hours
from .activities import CALL_OUTCOMES, lead_can_edit, lead_edit_profile, lead_log_activity
from .expansion import expansion_close, leads_open_expansions
from .funnel import (
    Entered,
    Entry,
    IllegalTransition,
    StageChanges,
    StageMove,
    companies_ensure,
    emails_resolve_aliases,
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
from .merge import MERGE_FIELDS, MergePreview, MergeResult, lead_merge, lead_merge_hook, lead_merge_preview
from .privacy import lead_erase
from .profile import EDITABLE_FIELDS, lead_create, lead_update_profile
from .qualification import (
    leads_promote_qualified,
    leads_score,
    leads_score_pending,
    leads_score_pending_all,
    scoring_deferred,
)
from .recycling import deal_reps, lead_recycle, leads_recycle_lost, lost_recycle_after_days
from .retention import import_files_expire, submissions_apply_retention
from .routing import Reassignment, RepRoster, leads_assign, rep_pick_next, rep_queue
from .segments import (
    emails_from_csv,
    segment_create,
    segment_delete,
    segment_members_add,
    segment_members_add_emails,
    segment_members_import_csv,
    segment_members_remove,
    segment_update,
)
from .submissions import SubmitResult, lead_submit_form
from .suppression import suppressed_emails, suppression_add, suppression_hash, suppression_remove
from .tags import MAX_BULK_TAG_LEADS, leads_tag
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
    "deal_reps",
    "expansion_close",
    "leads_open_expansions",
    "lead_recycle",
    "leads_recycle_lost",
    "lost_recycle_after_days",
    "CALL_OUTCOMES",
    "lead_can_edit",
    "lead_edit_profile",
    "lead_log_activity",
    "TRACKING_SOURCE",
    "TrackResult",
    "anonymous_activity_purge",
    "pageview_track",
    "site_get_active",
    "tracking_link_identify",
    "visitor_identify_by_key",
    "visitors_identify",
    "EDITABLE_FIELDS",
    "MAX_BULK_TAG_LEADS",
    "MERGE_FIELDS",
    "MergePreview",
    "MergeResult",
    "emails_resolve_aliases",
    "lead_merge",
    "lead_merge_hook",
    "lead_merge_preview",
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
    "lead_erase",
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
    "leads_tag",
    "leads_promote_qualified",
    "leads_score",
    "leads_score_pending",
    "leads_score_pending_all",
    "scoring_deferred",
    "emails_from_csv",
    "segment_create",
    "segment_delete",
    "segment_members_add",
    "segment_members_add_emails",
    "segment_members_import_csv",
    "segment_members_remove",
    "segment_update",
    "rep_pick_next",
    "rep_queue",
    "stage_changed_payload",
    "submissions_apply_retention",
    "import_files_expire",
    "suppressed_emails",
    "suppression_add",
    "suppression_hash",
    "suppression_remove",
    "unknown_email_policy",
]
