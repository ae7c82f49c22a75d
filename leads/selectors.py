"""Reads on leads: the lists, filters and the timeline, each owning its joins."""

import json
from dataclasses import dataclass
from datetime import timedelta

import django_filters
from django.db import connection
from django.db.models import Count, F, Lookup, Q, QuerySet, Subquery
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from leadfunnel.errors import NotFound, ValidationFailed
from leadfunnel.validation import DbIsoDateTimeFilter
from scoring.selectors import scoring_settings_get

from .intake import normalise_tag
from .models import (
    AnonymousPageView,
    Company,
    Form,
    Interaction,
    InteractionType,
    Lead,
    Stage,
    StageTransition,
    Suppression,
    TrackedSite,
)
from .segments.selectors import (
    lead_static_lists,
    segment_count,
    segment_counts,
    segment_get,
    segment_lead_ids,
    segment_leads,
    segment_list,
    segment_q,
    static_lists,
)

__all__ = [
    "LeadFilter",
    "LeadTimeline",
    "TimelineEntry",
    "current_sla_hours",
    "form_get_active",
    "form_list",
    "lead_get",
    "lead_list",
    "lead_static_lists",
    "segment_count",
    "segment_counts",
    "segment_get",
    "segment_lead_ids",
    "segment_leads",
    "segment_list",
    "segment_q",
    "static_lists",
]

MESSAGE_TYPES = frozenset({InteractionType.EMAIL_SENT, InteractionType.SMS_SENT})


def form_get_active(*, slug: str) -> Form:
    """The form that takes public submissions, or a 404 (unknown and inactive forms look the same)."""
    form = Form.objects.filter(slug=slug, active=True).first()
    if form is None:
        raise NotFound(f"No active form with the slug '{slug}'.")
    return form


def form_list() -> QuerySet[Form]:
    return Form.objects.order_by("name", "pk")


def lead_list() -> QuerySet[Lead]:
    return Lead.objects.select_related("company", "owner")


def lead_get(*, lead_id: int) -> Lead:
    lead = lead_list().filter(pk=lead_id).first()
    if lead is None:
        raise NotFound(f"No lead with id {lead_id}.")
    return lead


def _company_match(term: str) -> Q:
    """Leads whose company's name contains ``term``, as a subquery rather than a join.

    On PostgreSQL the subquery is evaluated once into an array (``company_id = ANY(ARRAY(…))``):
    with ``IN (subquery)`` inside the OR the planner turns the search into a sequential scan
    instead of combining the columns' trigram indexes with a bitmap OR.
    """
    companies = Company.objects.filter(name__icontains=term).values("id")
    if connection.vendor == "postgresql":
        return Q(_EqualsAnyOf(F("company_id"), Subquery(companies)))
    return Q(company_id__in=companies)


class _EqualsAnyOf(Lookup):
    """``lhs = ANY(ARRAY(subquery))`` (PostgreSQL): the subquery runs once, as an InitPlan."""

    lookup_name = "equals_any_of"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = compiler.compile(self.lhs)
        rhs, rhs_params = compiler.compile(self.rhs)  # "(SELECT …)"
        return f"{lhs} = ANY(ARRAY{rhs})", (*lhs_params, *rhs_params)


def leads_with_tag(queryset: QuerySet[Lead], value: str) -> QuerySet[Lead]:
    """Leads carrying the tag (normalised like stored tags; 400 for a bad one). PostgreSQL:
    ``tags @> '["tag"]'``, served by the GIN index of migration 0007."""
    try:
        tag = normalise_tag(value, field_name="tag")
    except ValidationFailed as exc:
        raise ValidationError(exc.fields) from None
    if connection.vendor == "postgresql":
        return queryset.filter(tags__contains=[tag])
    return queryset.filter(tags__icontains=json.dumps(tag))  # SQLite has no JSON containment


class LeadFilter(django_filters.FilterSet):
    """Filters of GET /api/v1/leads/: email, stage (comma-separated), owner (id, "me", "none"),
    min_score, source, channel, company, form, tag, search (name/email/company), created_after/before,
    segment (a saved segment's id)."""

    email = django_filters.CharFilter(method="filter_email", help_text="Exact email (any letter case).")
    stage = django_filters.CharFilter(method="filter_stage", help_text="A stage, or several separated by commas.")
    owner = django_filters.CharFilter(method="filter_owner", help_text='Owner user id, "me" or "none".')
    min_score = django_filters.NumberFilter(field_name="score", lookup_expr="gte")
    max_score = django_filters.NumberFilter(field_name="score", lookup_expr="lte")
    source = django_filters.CharFilter(field_name="source")
    channel = django_filters.CharFilter(field_name="channel")
    company = django_filters.NumberFilter(field_name="company_id")
    form = django_filters.CharFilter(field_name="first_form__slug", help_text="Slug of the form that brought the lead.")
    created_after = DbIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = DbIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    search = django_filters.CharFilter(method="filter_search", help_text="Words matched in name, email and company.")
    tag = django_filters.CharFilter(method="filter_tag", help_text="Leads carrying this tag (any letter case).")
    segment = django_filters.CharFilter(method="filter_segment", help_text="Id of a saved segment: only its members.")
    ordering = django_filters.OrderingFilter(
        fields=(
            "created_at",
            "score",
            "fit_score",
            "engagement_score",
            "stage_changed_at",
            "sla_due_at",
            "email",
            "last_name",
            "last_activity_at",
            "id",
        )
    )

    class Meta:
        model = Lead
        fields: list[str] = []

    def filter_email(self, queryset, name, value):
        return queryset.filter(email=value.strip().lower())

    def filter_stage(self, queryset, name, value):
        stages = [s.strip().lower() for s in value.split(",") if s.strip()]
        unknown = [s for s in stages if s not in Stage.values]
        if unknown:
            raise ValidationError({"stage": [f"Unknown stage {unknown[0]!r}; use one of {', '.join(Stage.values)}."]})
        return queryset.filter(stage__in=stages) if stages else queryset

    def filter_tag(self, queryset, name, value):
        return leads_with_tag(queryset, value)

    def filter_owner(self, queryset, name, value):
        value = value.strip().lower()
        if value == "me":
            return queryset.filter(owner_id=getattr(self.request.user, "pk", None))
        if value in ("none", "null"):
            return queryset.filter(owner__isnull=True)
        if not value.isdigit():
            raise ValidationError({"owner": ['Give a user id, "me" or "none".']})
        return queryset.filter(owner_id=int(value))

    def filter_segment(self, queryset, name, value):
        return queryset.filter(segment_q(segment_get(segment_id=value.strip())))

    def filter_search(self, queryset, name, value):
        for term in value.split()[:5]:
            queryset = queryset.filter(
                Q(email__icontains=term)
                | Q(first_name__icontains=term)
                | Q(last_name__icontains=term)
                | Q(company_name__icontains=term)
                | _company_match(term)
            )
        return queryset

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if not self.form.cleaned_data.get("ordering"):
            queryset = queryset.order_by("-created_at", "-id")
        return queryset


@dataclass
class TimelineEntry:
    kind: str  # "interaction", "message" (email_sent / sms_sent) or "stage_change"
    at: object
    item: object


class LeadTimeline:
    """A lead's interactions, messages sent and stage changes, newest first, as a sliceable
    sequence, so Django's paginator pages it with two small indexed queries per page."""

    def __init__(self, lead_id: int) -> None:
        self.lead_id = lead_id

    def count(self) -> int:
        return (
            Interaction.objects.filter(lead_id=self.lead_id).count()
            + StageTransition.objects.filter(lead_id=self.lead_id).count()
        )

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index: slice) -> list[TimelineEntry]:
        if not isinstance(index, slice):
            raise TypeError("LeadTimeline supports slices only")
        start = index.start or 0
        stop = index.stop if index.stop is not None else start + 100
        if stop <= start:
            return []
        quote = connection.ops.quote_name
        # Each branch walks its (lead, time) index; the merge stops after `stop` rows.
        sql = (
            "SELECT kind, id, at FROM ("  # noqa: S608 - identifiers from model metadata, values bound
            f"SELECT 'i' AS kind, id, occurred_at AS at FROM {quote(Interaction._meta.db_table)} WHERE lead_id = %s "
            "UNION ALL "
            f"SELECT 't' AS kind, id, at FROM {quote(StageTransition._meta.db_table)} WHERE lead_id = %s"
            ") AS timeline ORDER BY at DESC, kind DESC, id DESC LIMIT %s OFFSET %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [self.lead_id, self.lead_id, stop - start, start])
            rows = cursor.fetchall()
        interaction_ids = [row[1] for row in rows if row[0] == "i"]
        transition_ids = [row[1] for row in rows if row[0] == "t"]
        interactions = Interaction.objects.in_bulk(interaction_ids) if interaction_ids else {}
        transitions = (
            StageTransition.objects.select_related("actor", "owner").in_bulk(transition_ids) if transition_ids else {}
        )
        entries = []
        for kind, pk, _at in rows:
            if kind == "i" and pk in interactions:
                item = interactions[pk]
                entries.append(
                    TimelineEntry("message" if item.type in MESSAGE_TYPES else "interaction", item.occurred_at, item)
                )
            elif kind == "t" and pk in transitions:
                item = transitions[pk]
                entries.append(TimelineEntry("stage_change", item.at, item))
        return entries


def current_sla_hours() -> int:
    """Hours a rep has to answer a new MQL/PQL (the scoring settings' ``sla_hours``)."""
    return scoring_settings_get().sla_hours


def sites_with_counts() -> QuerySet[TrackedSite]:
    """Tracked sites by name, each with ``visitor_count`` and ``identified_count`` (visitors who
    became a lead), in one query."""
    return TrackedSite.objects.annotate(
        visitor_count=Count("visitors", distinct=True),
        identified_count=Count("visitors", filter=Q(visitors__lead__isnull=False), distinct=True),
    ).order_by("name", "pk")


def site_anonymous_views_count(*, site: TrackedSite, days: int = 7) -> int:
    """Page views of the site's still-anonymous visitors in the last ``days`` days."""
    since = timezone.now() - timedelta(days=days)
    return AnonymousPageView.objects.filter(visitor__site=site, occurred_at__gte=since).count()


def suppression_list() -> QuerySet[Suppression]:
    """The suppression list, newest first, with who added each entry."""
    return Suppression.objects.select_related("created_by").order_by("-created_at", "-id")
