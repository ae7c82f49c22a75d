"""Territory routing: a lead whose country / company size matches reps' rules goes round-robin among
those reps; no match, or no rules at all, is plain round-robin; away and capacity still hold; the
rule costs no query per lead."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leads.models import Lead, SalesRepProfile
from leads.services import Reassignment, StageMove, leads_assign, leads_change_stage
from leads.territories import TerritoryRule
from tests.factories import CompanyFactory, LeadFactory, sales_rep

pytestmark = pytest.mark.django_db

LONG_AGO = timezone.now() - timedelta(days=3)


@pytest.fixture
def team():
    """dach takes Germany, Austria, Switzerland; big takes US companies of 1001-5000; anna and ben
    have no rules. In plain round-robin order: anna, ben, dach, big."""
    return {
        "anna": sales_rep("anna", last_assigned_at=LONG_AGO),
        "ben": sales_rep("ben", last_assigned_at=LONG_AGO + timedelta(minutes=1)),
        "dach": sales_rep("dach", last_assigned_at=LONG_AGO + timedelta(minutes=2), territories=["DACH"]),
        "big": sales_rep(
            "big", last_assigned_at=LONG_AGO + timedelta(minutes=3), territories=["US"], company_sizes=["1001-5000"]
        ),
    }


def promote(*leads) -> dict[int, int | None]:
    leads_change_stage(moves=[StageMove(lead_id=lead.pk, to_stage="mql", cause="rule") for lead in leads])
    return dict(Lead.objects.filter(pk__in=[lead.pk for lead in leads]).values_list("pk", "owner_id"))


def test_a_matching_lead_goes_to_the_territory_rep_not_the_next_in_turn(team):
    german = LeadFactory(country="DE")
    assert promote(german)[german.pk] == team["dach"].pk


def test_leads_of_a_territory_share_it_round_robin_among_its_reps(team):
    SalesRepProfile.objects.filter(user=team["anna"]).update(territories=["Germany", "de"])
    leads = [LeadFactory(country="DE") for _ in range(4)]
    owners = promote(*leads)
    # anna was assigned longest ago, then dach: they alternate; ben and big get none.
    assert [owners[lead.pk] for lead in leads] == [team["anna"].pk, team["dach"].pk] * 2


def test_company_size_and_country_must_both_match_and_the_company_fills_blanks(team):
    big_us = LeadFactory(country="us", company_size="1001-5000")
    small_us = LeadFactory(country="US", company_size="11-50")
    via_company = LeadFactory(country="", company_size="", company=CompanyFactory(country="US", size_band="1001-5000"))
    owners = promote(big_us, small_us, via_company)
    assert owners[big_us.pk] == team["big"].pk
    assert owners[via_company.pk] == team["big"].pk
    # The small US company matches nobody: the plain round-robin (anna first).
    assert owners[small_us.pk] == team["anna"].pk


def test_a_lead_matching_nobody_stays_plain_round_robin(team):
    french = [LeadFactory(country="FR") for _ in range(4)]
    owners = promote(*french)
    assert [owners[lead.pk] for lead in french] == [team[n].pk for n in ("anna", "ben", "dach", "big")]


def test_without_any_rules_routing_is_plain_round_robin(team):
    SalesRepProfile.objects.update(territories=[], company_sizes=[])
    german = [LeadFactory(country="DE") for _ in range(4)]
    owners = promote(*german)
    assert [owners[lead.pk] for lead in german] == [team[n].pk for n in ("anna", "ben", "dach", "big")]


def test_an_away_territory_rep_gets_nothing_and_the_lead_goes_round_robin(team):
    SalesRepProfile.objects.filter(user=team["dach"]).update(is_away=True)
    german = LeadFactory(country="AT")
    assert promote(german)[german.pk] == team["anna"].pk


def test_a_full_territory_rep_gets_nothing_and_the_lead_goes_round_robin(team):
    SalesRepProfile.objects.filter(user=team["dach"]).update(capacity=1)
    LeadFactory(stage="mql", owner=team["dach"])
    swiss = LeadFactory(country="CH")
    assert promote(swiss)[swiss.pk] == team["anna"].pk


def test_capacity_is_counted_within_a_batch_of_territory_leads(team):
    SalesRepProfile.objects.filter(user=team["dach"]).update(capacity=2)
    leads = [LeadFactory(country="DE") for _ in range(3)]
    owners = promote(*leads)
    assert [owners[lead.pk] for lead in leads] == [team["dach"].pk, team["dach"].pk, team["anna"].pk]


def test_reassignment_honours_territories_and_skips_the_current_owner(team):
    second = sales_rep("dach-2", last_assigned_at=LONG_AGO + timedelta(minutes=5), territories=["de"])
    lead = LeadFactory(country="DE", stage="mql", owner=team["dach"])
    moved = leads_assign(reassignments=[Reassignment(lead_id=lead.pk)], cause="sla")
    assert moved[lead.pk].to_owner_id == second.pk


def test_routing_queries_do_not_grow_with_the_batch(team):
    def count(n: int) -> int:
        leads = [LeadFactory(country=("DE", "FR", "US")[i % 3], company_size="1001-5000") for i in range(n)]
        with CaptureQueriesContext(connection) as ctx:
            # lock (with the lead's country and company), reps with their rules, SLA hours,
            # leads UPDATE, rep profiles upsert, transitions INSERT, outbox INSERT
            leads_change_stage(moves=[StageMove(lead_id=lead.pk, to_stage="mql", cause="rule") for lead in leads])
        assert Lead.objects.filter(pk__in=[lead.pk for lead in leads], owner__isnull=True).count() == 0
        return len(ctx.captured_queries)

    count(1)  # warm the per-process caches (content types, settings)
    assert count(2) == count(30) <= 8

    def reassign(n: int) -> int:
        leads = [LeadFactory(country="DE", stage="mql", owner=team["anna"]) for _ in range(n)]
        with CaptureQueriesContext(connection) as ctx:
            leads_assign(reassignments=[Reassignment(lead_id=lead.pk) for lead in leads], cause="manual")
        return len(ctx.captured_queries)

    assert reassign(2) == reassign(30)


def test_regions_expand_to_countries_and_matching_ignores_case():
    rule = TerritoryRule.of(["Nordics", "Spain"], [])
    assert rule.matches(country="se", company_size="")
    assert rule.matches(country="SPAIN", company_size="5000+")
    assert not rule.matches(country="DE", company_size="")
    assert not TerritoryRule.of([], []).matches(country="DE", company_size="")
    sized = TerritoryRule.of([], ["51-200"])
    assert sized.matches(country="anywhere", company_size="51-200")
    assert not sized.matches(country="anywhere", company_size="")
