"""Reads on accounts (companies): the list with each company's account score, and one company's
page (its people, engagement by week, open opportunities).

The account score (0-100) is one rule, computed in the database for every company at once::

    account_score = min(100, max(0, best fit score of its people
                                    + sum of the engagement scores of its people active in the
                                      last ACCOUNT_RECENT_DAYS days))

The best fit says whether the account has a person we want; the summed recent engagement says
how much of the account is paying attention now (engagement scores already decay with time).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, F, IntegerField, Max, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Greatest, Least, TruncWeek
from django.utils import timezone

from leadfunnel.errors import NotFound, ValidationFailed

from .models import Company, Interaction, Lead, Opportunity

ACCOUNT_RECENT_DAYS = 90
ENGAGEMENT_WEEKS = 12
COMPANY_LEADS_SHOWN = 200
# ``ordering`` values of the companies list (API and page), the first is the default.
COMPANY_ORDERINGS = ("-account_score", "account_score", "name", "-name", "-people", "people", "-created_at")


def companies_with_scores(*, now: datetime | None = None) -> QuerySet[Company]:
    """Every company annotated with ``people``, ``best_fit``, ``recent_engagement`` and
    ``account_score`` (the rule in the module docstring): one grouped query over its leads."""
    cutoff = (now or timezone.now()) - timedelta(days=ACCOUNT_RECENT_DAYS)
    zero = Value(0, output_field=IntegerField())
    return Company.objects.annotate(
        people=Count("leads"),
        best_fit=Coalesce(Max("leads__fit_score"), zero),
        recent_engagement=Coalesce(Sum("leads__engagement_score", filter=Q(leads__last_activity_at__gte=cutoff)), zero),
    ).annotate(
        account_score=Least(
            Value(100, output_field=IntegerField()),
            Greatest(zero, F("best_fit") + F("recent_engagement"), output_field=IntegerField()),
            output_field=IntegerField(),
        )
    )


def company_list(*, search: str = "", ordering: str = "") -> QuerySet[Company]:
    """Companies matching ``search`` (name or domain contains it), ordered by ``ordering`` (one of
    :data:`COMPANY_ORDERINGS`, default best account score first). 400 for an unknown ordering."""
    ordering = ordering or COMPANY_ORDERINGS[0]
    if ordering not in COMPANY_ORDERINGS:
        raise ValidationFailed(
            f"ordering: Use one of {', '.join(COMPANY_ORDERINGS)}.",
            fields={"ordering": [f"Use one of {', '.join(COMPANY_ORDERINGS)}."]},
        )
    qs = companies_with_scores()
    search = search.strip()
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(domain__icontains=search.lower()))
    return qs.order_by(ordering, "pk")


@dataclass
class CompanyPage:
    company: Company  # annotated like companies_with_scores()
    leads: list[Lead]
    weeks: list[dict]  # {"week": date (Monday), "interactions": n}, oldest first
    opportunities: list[Opportunity]
    open_pipeline: float


def company_engagement_by_week(*, company_id: int, weeks: int = ENGAGEMENT_WEEKS, now=None) -> list[dict]:
    """Interactions of the company's people per week (Monday-based), the last ``weeks`` weeks
    including this one, missing weeks as 0: one grouped query."""
    now = timezone.localtime(now or timezone.now())
    this_monday = (now - timedelta(days=now.weekday())).date()
    first = this_monday - timedelta(weeks=weeks - 1)
    start = timezone.make_aware(datetime.combine(first, datetime.min.time()))
    counts = {
        row["week"].date() if isinstance(row["week"], datetime) else row["week"]: row["n"]
        for row in Interaction.objects.filter(lead__company_id=company_id, occurred_at__gte=start)
        .annotate(week=TruncWeek("occurred_at"))
        .values("week")
        .annotate(n=Count("id"))
        .order_by()
    }
    return [
        {"week": first + timedelta(weeks=n), "interactions": counts.get(first + timedelta(weeks=n), 0)}
        for n in range(weeks)
    ]


def company_get(*, company_id: int) -> CompanyPage:
    """One company's page: its people (best score first), engagement by week, open opportunities."""
    company = companies_with_scores().filter(pk=company_id).first()
    if company is None:
        raise NotFound(f"No company with id {company_id}.")
    leads = list(
        Lead.objects.filter(company_id=company_id)
        .select_related("owner")
        .order_by("-score", "pk")[:COMPANY_LEADS_SHOWN]
    )
    opportunities = list(
        Opportunity.objects.filter(lead__company_id=company_id, status=Opportunity.Status.OPEN)
        .select_related("lead")
        .order_by("-opportunity_size", "pk")
    )
    return CompanyPage(
        company=company,
        leads=leads,
        weeks=company_engagement_by_week(company_id=company_id),
        opportunities=opportunities,
        open_pipeline=float(sum(o.opportunity_size for o in opportunities)),
    )
