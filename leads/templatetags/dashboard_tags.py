"""Display helpers for the dashboard templates (no business rules here)."""

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html

from leads.models import Channel, InteractionType, Stage

register = template.Library()

# Choices' `.values`/`.label` are rebuilt on every access; pages render these per row.
STAGE_LABELS = dict(Stage.choices)
CHANNEL_LABELS = dict(Channel.choices)
INTERACTION_TYPES = frozenset(InteractionType.values)


@register.filter
def stage_badge(stage: str):
    label = STAGE_LABELS.get(stage, stage)
    return format_html('<span class="stage stage-{}">{}</span>', stage, label)


@register.filter
def stage_label(stage: str) -> str:
    return STAGE_LABELS.get(stage, stage)


@register.filter
def channel_label(channel: str) -> str:
    return CHANNEL_LABELS.get(channel, channel or "—")


@register.filter
def interaction_label(kind: str) -> str:
    if kind in INTERACTION_TYPES:
        return kind.replace("_", " ").capitalize()
    return kind


@register.filter
def words(code) -> str:
    """A stored code (``left_voicemail``) as words (``Left voicemail``)."""
    return str(code or "").replace("_", " ").capitalize()


def _span(seconds: float) -> str:
    seconds = int(abs(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m"


@register.filter
def sla_text(due: datetime | None) -> str:
    if due is None:
        return "no SLA"
    delta = (due - timezone.now()).total_seconds()
    return f"due in {_span(delta)}" if delta >= 0 else f"overdue by {_span(delta)}"


@register.filter
def sla_state(due: datetime | None) -> str:
    """ok / soon (under two hours) / breached — a CSS class."""
    if due is None:
        return "none"
    delta = (due - timezone.now()).total_seconds()
    if delta < 0:
        return "breached"
    return "soon" if delta < 7200 else "ok"


@register.filter
def signed(value) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    text = f"{number:+.1f}".rstrip("0").rstrip(".") if number != int(number) else f"{int(number):+d}"
    return text


@register.filter
def percent(value) -> str:
    """A rate given as a fraction (0.667) shown as a percentage (66.7%)."""
    return "—" if value is None else f"{round(value * 100, 1):g}%"


@register.filter
def days(value) -> str:
    if value is None:
        return "—"
    if value < 1:
        hours = value * 24
        return f"{hours:.0f} h" if hours >= 1 else "< 1 h"
    return f"{value:g} d"


@register.filter
def get_item(mapping, key):
    if mapping is None:
        return None
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def short_props(properties) -> str:
    """The one or two properties that say most about an interaction (url, title, minutes...)."""
    if not isinstance(properties, dict):
        return ""
    parts = []
    for key in ("url", "title", "asset", "content", "minutes", "session", "plan", "feature", "subject", "campaign"):
        if key in properties and properties[key] not in (None, ""):
            parts.append(f"{key}: {properties[key]}")
        if len(parts) == 2:
            break
    return " · ".join(str(p)[:120] for p in parts)
