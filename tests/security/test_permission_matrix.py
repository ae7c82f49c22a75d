"""Permission matrix generated from the URL conf: every /api/v1/ endpoint and method × every
actor. A new endpoint (or method) without a row here fails the test.

Each cell is checked on its own (inside a rolled-back savepoint), against a lead owned by
the "sales owner" and sitting in MQL. Allowed means "neither 401 nor 403" (a 400 for an
empty body, a 404 for a missing object or a 409 for an illegal move are still answers
the actor was entitled to); denied means 403 for a signed-in actor and 401 for anonymous.
"""

import json

import pytest
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver

from leads.services import lead_change_stage
from tests.conftest import _client_for
from tests.factories import FormFactory, LeadFactory

ANON, MARKETER, OWNER, OTHER, ADMIN = "anonymous", "marketer", "sales owner", "other rep", "admin"
ACTORS = (ANON, MARKETER, OWNER, OTHER, ADMIN)
EVERYONE = {ANON, MARKETER, OWNER, OTHER, ADMIN}
SIGNED_IN = {MARKETER, OWNER, OTHER, ADMIN}
MARKETING = {MARKETER, ADMIN}
SALES_OF_LEAD = {OWNER, ADMIN}
MARKETING_OR_SALES = {MARKETER, OWNER, OTHER, ADMIN}
ADMINS = {ADMIN}

# (url name, method) -> actors allowed.
MATRIX: dict[tuple[str, str], set[str]] = {
    ("api-me", "GET"): SIGNED_IN,
    ("api-token", "POST"): EVERYONE,
    ("api-forms", "GET"): MARKETING,
    ("api-forms", "POST"): MARKETING,
    ("api-form-detail", "GET"): MARKETING,
    ("api-form-detail", "PATCH"): MARKETING,
    ("api-form-submit", "POST"): EVERYONE,
    ("api-track", "POST"): EVERYONE,  # public: the site key, origin and throttle guard it
    ("api-sites", "GET"): MARKETING,
    ("api-sites", "POST"): MARKETING,
    ("api-site", "GET"): MARKETING,
    ("api-site", "PATCH"): MARKETING,
    ("api-site", "DELETE"): MARKETING,
    ("api-leads", "GET"): MARKETING_OR_SALES,
    ("api-leads", "POST"): MARKETING,
    ("api-lead-detail", "GET"): MARKETING_OR_SALES,
    # Profile edits: marketing's, and the rep who owns the lead (as on the lead's page).
    ("api-lead-detail", "PATCH"): {MARKETER, OWNER, ADMIN},
    ("api-lead-timeline", "GET"): MARKETING_OR_SALES,
    ("api-lead-erase", "POST"): MARKETING,
    ("api-lead-export", "GET"): MARKETING,
    ("api-suppressions", "GET"): ADMINS,
    ("api-suppressions", "POST"): ADMINS,
    ("api-suppression", "DELETE"): ADMINS,
    ("api-lead-mark-mql", "POST"): MARKETING,
    ("api-lead-accept", "POST"): SALES_OF_LEAD,
    ("api-lead-reject", "POST"): SALES_OF_LEAD,
    ("api-lead-qualify", "POST"): SALES_OF_LEAD,
    ("api-lead-close", "POST"): SALES_OF_LEAD,
    ("api-lead-disqualify", "POST"): SALES_OF_LEAD,
    # Sales reps pass the view; on this MQL the service answers 409 (only a lost lead is recycled,
    # and then only by the rep who worked the deal: tests/leads/test_recycling.py).
    ("api-lead-recycle", "POST"): {OWNER, OTHER, ADMIN},
    ("api-interactions", "POST"): MARKETING_OR_SALES,  # reps log calls and meetings
    ("api-interactions-bulk", "POST"): MARKETING_OR_SALES,
    ("api-segments", "GET"): MARKETING_OR_SALES,
    ("api-segments", "POST"): MARKETING,
    ("api-segment", "GET"): MARKETING_OR_SALES,
    ("api-segment", "PATCH"): MARKETING,
    ("api-segment", "DELETE"): MARKETING,
    ("api-segment-leads", "GET"): MARKETING_OR_SALES,
    ("api-segment-members", "POST"): MARKETING,
    ("api-segment-members", "DELETE"): MARKETING,
    ("scoring-rules", "GET"): MARKETING,
    ("scoring-rules", "POST"): MARKETING,
    ("scoring-rule", "GET"): MARKETING,
    ("scoring-rule", "PUT"): MARKETING,
    ("scoring-rule", "PATCH"): MARKETING,
    ("scoring-rule", "DELETE"): MARKETING,
    ("scoring-settings", "GET"): MARKETING,
    ("scoring-settings", "PATCH"): MARKETING,
    ("scoring-recompute", "GET"): MARKETING,
    ("scoring-recompute", "POST"): MARKETING,
    ("lead-score", "GET"): MARKETING_OR_SALES,
    ("predictive-status", "GET"): MARKETING_OR_SALES,  # model status, no lead data
    ("predictive-train", "POST"): MARKETING,
    ("lead-prediction", "GET"): MARKETING_OR_SALES,
    ("backtest-create", "POST"): MARKETING,
    ("backtest-detail", "GET"): MARKETING,
    ("backtest-apply", "POST"): MARKETING,
    ("channel-quality", "GET"): MARKETING,
    ("api-sequences", "GET"): MARKETING,
    ("api-sequences", "POST"): MARKETING,
    ("api-sequence", "GET"): MARKETING,
    ("api-sequence", "PUT"): MARKETING,
    ("api-sequence", "PATCH"): MARKETING,
    ("api-sequence", "DELETE"): MARKETING,
    ("api-sequence-enrollments", "GET"): MARKETING,
    ("api-sequence-enrollments", "POST"): MARKETING,
    ("api-sequence-stats", "GET"): MARKETING,
    ("api-sequence-preview", "GET"): MARKETING,
    ("api-email-templates", "GET"): MARKETING,
    ("api-email-templates", "POST"): MARKETING,
    ("api-email-template", "GET"): MARKETING,
    ("api-email-template", "PATCH"): MARKETING,
    ("api-email-template", "DELETE"): MARKETING,
    ("api-funnel", "GET"): MARKETING,
    ("api-rep", "PATCH"): {OWNER, ADMIN},  # a rep sets their own availability; the URL names the owner
    ("api-leads-export", "GET"): MARKETING,
    ("api-lead-assignments", "GET"): MARKETING_OR_SALES,
    ("api-webhooks", "GET"): ADMINS,
    ("api-webhooks", "POST"): ADMINS,
    ("api-webhook-events", "GET"): ADMINS,
    ("api-webhook", "GET"): ADMINS,
    ("api-webhook", "PATCH"): ADMINS,
    ("api-webhook", "DELETE"): ADMINS,
    ("api-webhook-deliveries", "GET"): ADMINS,
    ("api-webhook-redeliver", "POST"): ADMINS,
    ("api-webhook-rotate", "POST"): ADMINS,
    ("api-companies", "GET"): MARKETING_OR_SALES,
    ("api-company", "GET"): MARKETING_OR_SALES,
    ("api-lead-duplicates", "GET"): MARKETING,
    ("api-lead-merge", "POST"): MARKETING,
    ("api-leads-tags", "POST"): MARKETING,
    ("api-imports", "GET"): MARKETING,
    ("api-imports", "POST"): MARKETING,
    ("api-import", "GET"): MARKETING,
    ("api-import-errors", "GET"): MARKETING,
}
METHODS = ("get", "post", "put", "patch", "delete")
# Valid bodies where validation would otherwise answer 400 before the permission is looked at.
BODIES = {
    "api-lead-reject": {"reason_code": "not_ready", "reason": "Not ready to talk yet."},
    "api-lead-qualify": {
        "buying_cycle": "Q3",
        "influencer": "CFO",
        "timeframe": "90 days",
        "opportunity_size": "12000.00",
        "next_step": "Demo",
    },
    "api-lead-close": {"won": True},
    "api-lead-disqualify": {"reason": "Spam submission."},
    "api-lead-accept": {},
    "api-lead-mark-mql": {"reason": "Asked for a call."},
    "api-lead-recycle": {"reason": "Budget next year."},
}


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern


def api_operations() -> list[tuple[str, str, str]]:
    """(url name, METHOD, route) for every method every /api/v1/ view implements."""
    found = []
    for route, pattern in _walk(get_resolver().url_patterns):
        if not route.startswith("api/v1/"):
            continue
        view = getattr(pattern.callback, "cls", None) or getattr(pattern.callback, "view_class", None)
        assert view is not None, f"{route}: not a class-based view; add it to the matrix by hand"
        assert pattern.name, f"{route}: give the URL a name so the matrix can refer to it"
        found += [(pattern.name, m.upper(), route) for m in METHODS if hasattr(view, m)]
    return found


OPERATIONS = api_operations()


def test_every_api_endpoint_and_method_has_a_row_in_the_matrix():
    missing = sorted({(name, method) for name, method, _ in OPERATIONS} - set(MATRIX))
    stale = sorted(set(MATRIX) - {(name, method) for name, method, _ in OPERATIONS})
    assert not missing, f"endpoints without an expected-permission row: {missing}"
    assert not stale, f"rows for endpoints that no longer exist: {stale}"


@pytest.fixture
def world(db, marketer, sales_rep, other_rep, admin_user):
    lead = LeadFactory(email="matrix@initech.example")
    lead_change_stage(lead=lead, to_stage="mql", cause="manual", owner=sales_rep)
    FormFactory(slug="contact")
    clients = {
        ANON: _client_for(None),
        MARKETER: _client_for(marketer),
        OWNER: _client_for(sales_rep),
        OTHER: _client_for(other_rep),
        ADMIN: _client_for(admin_user),
    }
    kwargs = {
        "lead_id": lead.pk,
        "slug": "contact",
        "user_id": sales_rep.pk,
        "sequence_id": 999_999,
        "suppression_id": 999_999,
        "template_id": 999_999,
        "company_id": 999_999,
        "segment_id": 999_999,
        "site_id": 999_999,
    }
    return clients, kwargs, lead


def _path(route: str, name: str, kwargs: dict, lead) -> str:
    from django.urls import reverse

    needed = {}
    for key in (
        "lead_id",
        "slug",
        "user_id",
        "sequence_id",
        "suppression_id",
        "template_id",
        "company_id",
        "segment_id",
        "site_id",
        "pk",
    ):
        if f"<int:{key}>" in route or f"<slug:{key}>" in route or f"<str:{key}>" in route:
            if key == "pk":
                needed[key] = lead.pk if route.startswith("api/v1/leads/") else 999_999
            else:
                needed[key] = kwargs[key]
    return reverse(name, kwargs=needed)


@pytest.mark.parametrize(("name", "method", "route"), OPERATIONS, ids=[f"{m} {r}" for _, m, r in OPERATIONS])
def test_permission_matrix(world, name, method, route):
    clients, kwargs, lead = world
    allowed = MATRIX.get((name, method))
    assert allowed is not None, f"no row for {(name, method)}"
    path = _path(route, name, kwargs, lead)
    answers = {}
    for actor in ACTORS:
        with transaction.atomic():
            call = getattr(clients[actor], method.lower())
            if method in ("POST", "PUT", "PATCH"):
                body = BODIES.get(name, {})
                response = call(path, data=json.dumps(body), content_type="application/json")
            else:
                response = call(path)
            answers[actor] = response.status_code
            transaction.set_rollback(True)
    wrong = {}
    for actor, status in answers.items():
        if actor in allowed:
            ok = status not in (401, 403) and status < 500
        elif actor == ANON:
            ok = status == 401
        else:
            ok = status == 403
        if not ok:
            wrong[actor] = status
    assert not wrong, f"{method} {path}: unexpected {wrong} (all answers {answers}, allowed {sorted(allowed)})"
