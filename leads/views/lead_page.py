"""The lead page's forms (the profile; a note, call or meeting) and its score-over-time chart.

Who may write is the services' rule (``services.lead_can_edit``); the page only hides the forms.
The views that take these forms are in :mod:`.detail`, beside the page they render again.
"""

from django import forms

from leadfunnel.errors import DomainError

from .. import services
from ..models import InteractionType
from .common import place_field_errors


class ProfileForm(forms.Form):
    """The profile as a person edits it (the intake's limits; the service validates again)."""

    first_name = forms.CharField(required=False, max_length=100, label="First name")
    last_name = forms.CharField(required=False, max_length=100, label="Last name")
    title = forms.CharField(required=False, max_length=150)
    email = forms.CharField(max_length=254, error_messages={"required": "A lead needs an email."})
    phone = forms.CharField(required=False, max_length=40)
    company = forms.CharField(required=False, max_length=200, label="Company")
    company_size = forms.CharField(required=False, max_length=20, label="Company size")
    industry = forms.CharField(required=False, max_length=100)
    country = forms.CharField(required=False, max_length=100)
    city = forms.CharField(required=False, max_length=100)
    time_zone = forms.CharField(required=False, max_length=64, label="Time zone")
    linkedin = forms.CharField(required=False, max_length=200, label="LinkedIn")
    twitter = forms.CharField(required=False, max_length=100)

    @classmethod
    def for_lead(cls, lead) -> "ProfileForm":
        initial = {name: getattr(lead, name, "") for name in cls.base_fields if name != "company"}
        initial["company"] = lead.company_name
        return cls(initial=initial, prefix="profile")


ACTIVITY_KINDS = (
    (InteractionType.NOTE.value, "Note"),
    (InteractionType.CALL.value, "Call"),
    (InteractionType.MEETING.value, "Meeting"),
)


class ActivityForm(forms.Form):
    kind = forms.ChoiceField(choices=ACTIVITY_KINDS, initial="note", label="What")
    text = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3}), label="Notes")
    outcome = forms.ChoiceField(
        required=False,
        choices=[("", "—"), *((o, o.replace("_", " ").capitalize()) for o in services.CALL_OUTCOMES)],
        label="Call outcome",
    )
    duration_minutes = forms.IntegerField(required=False, min_value=1, max_value=24 * 60, label="Minutes")
    occurred_at = forms.DateTimeField(
        required=False,
        label="When (empty: now)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )


def place_errors(form: forms.Form, exc: DomainError) -> None:
    place_field_errors(form, exc.fields, message=exc.message, renames={"company_name": "company"})


# --- the score over time ------------------------------------------------------------------

CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 560, 160, 24


def score_chart(series: list[dict]) -> dict:
    """Coordinates of the cumulative score points (``scoring.selectors.lead_score_series``) in an
    SVG box: x by time, y by cumulative points (zero line drawn when points went negative)."""
    if not series:
        return {"points": [], "width": CHART_WIDTH, "height": CHART_HEIGHT}
    first, last = series[0]["at"], series[-1]["at"]
    span = max((last - first).total_seconds(), 1.0)
    totals = [p["total"] for p in series]
    low, high = min(0.0, *totals), max(0.0, *totals)
    rise = max(high - low, 1.0)
    inner_w, inner_h = CHART_WIDTH - 2 * CHART_PAD, CHART_HEIGHT - 2 * CHART_PAD

    def y(value: float) -> float:
        return round(CHART_PAD + inner_h - (value - low) / rise * inner_h, 1)

    points = []
    for p in series:
        x = CHART_PAD + ((p["at"] - first).total_seconds() / span) * inner_w if len(series) > 1 else CHART_WIDTH / 2
        points.append({**p, "x": round(x, 1), "y": y(p["total"])})
    return {
        "points": points,
        "polyline": " ".join(f"{p['x']},{p['y']}" for p in points),
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "zero_y": y(0.0),
        "high": high,
        "low": low,
        "first": first,
        "last": last,
        "pad": CHART_PAD,
        "right": CHART_WIDTH - CHART_PAD,
    }
