"""Demo history for predictive scoring, back-tests and channel quality.

``seed_predictive_history()`` adds about a year of past leads with their
interactions and full, consistent stage histories (visitor → MQL → SAL/rejected
→ SQL → won/lost, with reasons), written directly with past dates, then trains
the predictive model on it. Who converts follows plausible signals (senior title,
business email, company size, demo request, pricing visits, webinar attendance,
channel), so the model has something real to find and channel quality shows
differences. Idempotent: a second run adds nothing and keeps the trained model.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from leads.models import Form, Interaction, Lead, Opportunity, StageTransition

from .prediction import predictive_model_active
from .runs import predictive_model_train_now

DOMAIN_SUFFIX = "history.example"
DAYS = 420
# Demo history is denser in customers than a real funnel, so a few hundred leads hold enough outcomes.
BASE_PROPENSITY = 0.3

FIRST = ("Alex", "Sam", "Kim", "Jo", "Noa", "Lee", "Ari", "Mika", "Rene", "Toni", "Eli", "Robin")
LAST = ("Berg", "Costa", "Dietz", "Evans", "Fox", "Garcia", "Hale", "Ito", "Jansen", "Kovacs", "Lind", "Moreau")
TITLES = (
    ("VP Marketing", 1.2),
    ("Head of Sales", 1.0),
    ("Director of Operations", 0.9),
    ("Chief Technology Officer", 1.3),
    ("Marketing Manager", 0.3),
    ("IT Manager", 0.3),
    ("Analyst", -0.4),
    ("Assistant", -0.6),
    ("Student", -2.0),
    ("Purchasing Agent", -0.8),
)
SIZES = (("1-10", -0.8), ("11-50", -0.2), ("51-200", 0.3), ("201-1000", 0.7), ("1000+", 0.9))
INDUSTRIES = ("software", "manufacturing", "retail", "finance", "healthcare")
# channel, source, form slug, effect on conversion
CHANNELS = (
    ("inbound", "website", "history-demo-request", 0.8),
    ("inbound", "google-ads", "history-pricing-landing", 0.1),
    ("inbound", "website", "history-whitepaper", -0.3),
    ("event", "webinar", "history-webinar-signup", 0.3),
    ("event", "trade-show", "", -0.2),
    ("interaction", "newsletter", "", -0.7),
)
FORMS = {
    "history-demo-request": ("Demo request (last year)", "demo_request", 20),
    "history-pricing-landing": ("Pricing landing page (last year)", "paid_landing", 10),
    "history-whitepaper": ("Whitepaper download (last year)", "content_download", 5),
    "history-webinar-signup": ("Webinar sign-up (last year)", "webinar", 10),
}
REJECTIONS = ("no_budget_yet", "not_ready", "wrong_person", "no_response")
LOSSES = ("price", "competitor", "no_decision", "timing")


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


class _History:
    def __init__(self, rng: random.Random, now: datetime, reps: list) -> None:
        self.rng = rng
        self.now = now
        self.reps = reps
        self.interactions: list[Interaction] = []
        self.transitions: list[StageTransition] = []
        self.opportunities: list[Opportunity] = []

    def touch(self, lead: Lead, itype: str, at: datetime, **properties) -> None:
        if at < self.now:
            self.interactions.append(
                Interaction(lead=lead, type=itype, occurred_at=at, received_at=at, properties=properties, source="demo")
            )

    def move(
        self, lead: Lead, from_stage: str, to_stage: str, at: datetime, reason: str = "", cycle: int = 1, owner=None
    ) -> bool:
        if at >= self.now:
            return False
        self.transitions.append(
            StageTransition(
                lead=lead,
                from_stage=from_stage,
                to_stage=to_stage,
                at=at,
                cause="rule" if to_stage == "mql" else "user",
                reason_code=reason,
                cycle=cycle,
                owner=owner,
            )
        )
        lead.stage, lead.stage_changed_at, lead.cycle = to_stage, at, cycle
        lead.owner = owner if to_stage in ("mql", "sal", "sql", "customer") else None
        if to_stage == "sql":  # qualifying records the facts and opens the opportunity
            self.opportunities.append(
                Opportunity(
                    lead=lead,
                    cycle=cycle,
                    buying_cycle="Evaluating tools this quarter",
                    influencer="Head of the buying team",
                    timeframe=self.rng.choice(("this quarter", "next quarter", "6 months")),
                    opportunity_size=self.rng.choice((6000, 12000, 24000, 48000)),
                    next_step="Proposal call",
                    created_at=at,
                    created_by=owner,
                )
            )
        elif to_stage in ("customer", "lost"):
            opportunity = self.opportunities[-1]
            opportunity.status = "won" if to_stage == "customer" else "lost"
            opportunity.closed_at = at
            opportunity.close_reason_code = reason
        return True


def _plan_lead(h: _History, i: int, forms: dict[str, Form]) -> tuple[Lead, float]:
    rng = h.rng
    created = h.now - timedelta(days=rng.uniform(1, DAYS), minutes=rng.uniform(0, 600))
    title, title_w = rng.choice(TITLES)
    size, size_w = rng.choice(SIZES)
    channel, source, slug, channel_w = rng.choice(CHANNELS)
    free_mail = rng.random() < 0.25
    domain = rng.choice(("gmail.com", "outlook.com")) if free_mail else f"firm{i % 240}.{DOMAIN_SUFFIX}"
    first, last = rng.choice(FIRST), rng.choice(LAST)
    lead = Lead(
        email=f"{first.lower()}.{last.lower()}{i}@{domain}",
        first_name=first,
        last_name=last,
        title=title,
        company_name="" if free_mail else f"Firm {i % 240}",
        company_size=size,
        industry=rng.choice(INDUSTRIES),
        country=rng.choice(("DE", "FR", "NL", "GB", "US")),
        source=source,
        channel=channel,
        first_form=forms.get(slug),
        created_at=created,
        stage_changed_at=created,
        last_activity_at=created,
    )
    propensity = BASE_PROPENSITY + title_w + size_w + channel_w - (0.9 if free_mail else 0.0) + rng.gauss(0, 0.4)
    return lead, propensity


def _play(h: _History, lead: Lead, propensity: float) -> None:
    """Interactions and stage history for one lead, driven by its hidden propensity."""
    rng, created = h.rng, lead.created_at
    if lead.first_form_id:
        h.touch(lead, "form_submit", created, form_slug=lead.first_form.slug)
    engaged = _sigmoid(propensity + 1.0)
    for _ in range(rng.randint(1, 4) + int(engaged * 6)):
        h.touch(
            lead,
            "page_view",
            created + timedelta(days=rng.uniform(0, 60)),
            url=rng.choice(("/blog/roi", "/features", "/about")),
        )
    for _ in range(rng.randint(0, 5)):
        h.touch(lead, "email_open", created + timedelta(days=rng.uniform(0, 90)))
    if rng.random() < engaged:
        h.touch(lead, "page_view", created + timedelta(days=rng.uniform(0.5, 20)), url="/pricing")
        h.touch(lead, "email_click", created + timedelta(days=rng.uniform(1, 30)), url="/case-studies")
    if rng.random() < engaged * 0.8:
        h.touch(
            lead, "webinar_attended", created + timedelta(days=rng.uniform(2, 40)), minutes=rng.choice((20, 35, 50))
        )
    demo = rng.random() < engaged * 0.7
    demo_at = created + timedelta(days=rng.uniform(1, 25))
    if demo:
        h.touch(lead, "demo_request", demo_at)
    if lead.title == "Student":
        return
    if not (demo or rng.random() < engaged * 0.5):
        if rng.random() < 0.05:
            h.move(lead, "visitor", "disqualified", created + timedelta(days=rng.uniform(1, 30)), reason="spam")
        return
    owner = rng.choice(h.reps) if h.reps else None
    mql_at = (demo_at if demo else created + timedelta(days=rng.uniform(3, 40))) + timedelta(hours=1)
    if not h.move(lead, "visitor", "mql", mql_at, owner=owner):
        return
    decide_at = mql_at + timedelta(hours=rng.uniform(2, 40))
    if rng.random() > _sigmoid(propensity + 1.6):
        h.move(lead, "mql", "recycled", decide_at, reason=rng.choice(REJECTIONS))
        return
    if not h.move(lead, "mql", "sal", decide_at, owner=owner):
        return
    qualify_at = decide_at + timedelta(days=rng.uniform(2, 15))
    if rng.random() > _sigmoid(propensity + 1.0):
        h.move(lead, "sal", "recycled", qualify_at, reason="not_ready")
        return
    if not h.move(lead, "sal", "sql", qualify_at, owner=owner):
        return
    close_at = qualify_at + timedelta(days=rng.uniform(10, 60))
    if rng.random() < _sigmoid(propensity + 0.6):
        h.move(lead, "sql", "customer", close_at, owner=owner)
    else:
        h.move(lead, "sql", "lost", close_at, reason=rng.choice(LOSSES))


@transaction.atomic
def _create_history(*, leads: int, seed: int, now: datetime) -> int:
    rng = random.Random(seed)
    forms = {}
    for slug, (name, kind, weight) in FORMS.items():
        forms[slug], _ = Form.objects.get_or_create(
            slug=slug, defaults={"name": name, "kind": kind, "channel_weight": weight}
        )
    reps = list(get_user_model().objects.filter(groups__name="sales", is_active=True).order_by("pk"))
    h = _History(rng, now, reps)
    planned = [_plan_lead(h, i, forms) for i in range(leads)]
    for lead, propensity in planned:
        _play(h, lead, propensity)
    Lead.objects.bulk_create([lead for lead, _p in planned], batch_size=1000)
    for row in h.interactions:
        row.lead_id = row.lead.pk
    for row in h.transitions:
        row.lead_id = row.lead.pk
    for row in h.opportunities:
        row.lead_id = row.lead.pk
    Interaction.objects.bulk_create(h.interactions, batch_size=2000)
    StageTransition.objects.bulk_create(h.transitions, batch_size=2000)
    Opportunity.objects.bulk_create(h.opportunities, batch_size=2000)
    return len(planned)


def seed_predictive_history(*, leads: int = 200, seed: int = 7, now: datetime | None = None, train: bool = True) -> str:
    """Add the historical leads (once) and train the predictive model (unless one is active)."""
    now = now or timezone.now()
    created = 0
    if not Lead.objects.filter(email__endswith=DOMAIN_SUFFIX).exists():
        created = _create_history(leads=leads, seed=seed, now=now)
    summary = f"{created} historical leads added" if created else "history already present"
    if train and predictive_model_active() is None:
        row = predictive_model_train_now(now=now)
        summary += f"; predictive model v{row.version}: {row.status} — {row.message}"
    return summary
