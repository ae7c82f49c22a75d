"""Nurturing's regions on the leads pages, rendered by nurturing so that leads never imports it.

A leads template loads this library by name (``{% load nurturing_tags %}``); the enrol forms
post to nurturing's own views (``nurturing_ui:enroll-lead`` and ``nurturing_ui:enroll-leads``).
"""

from django import template

from leadfunnel.roles import is_marketer

from .. import selectors

register = template.Library()


def _user(context):
    request = context.get("request")
    return getattr(request, "user", None) or context.get("user")


@register.inclusion_tag("nurturing/_lead_panel.html", takes_context=True)
def lead_nurture_panel(context, lead) -> dict:
    """The lead page's "Sequences" card: its enrolments (one query) and, for marketers and admins,
    the "Enrol in a sequence" form with the active sequences (one more query)."""
    can_enroll = is_marketer(_user(context))
    return {
        "lead": lead,
        "enrollments": selectors.enrollments_for_lead(lead_id=lead.pk),
        "can_enroll": can_enroll,
        "sequences": selectors.sequence_choices() if can_enroll else [],
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("nurturing/_bulk_enroll.html", takes_context=True)
def bulk_enroll_controls(context) -> dict:
    """The leads list's bulk bar: the sequence picker and the button that enrols the selected leads
    (it posts the bar's form to nurturing's view with ``formaction``). Marketers and admins only."""
    can_enroll = is_marketer(_user(context))
    return {"can_enroll": can_enroll, "sequences": selectors.sequence_choices() if can_enroll else []}


SKIP_REASONS = {
    "no_consent": "no marketing consent",
    "suppressed": "suppressed address",
    "unreachable": "unsubscribed or bounced",
}


@register.filter
def skip_reason_label(reason: str) -> str:
    """Why a message step was not sent, as the sequence page says it."""
    return SKIP_REASONS.get(reason, reason.replace("_", " "))
