"""Synthetic lead histories with a known, planted signal, built fast with bulk inserts."""

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from leads.models import Interaction, Lead, StageTransition


@dataclass
class Planted:
    leads: list[Lead] = field(default_factory=list)
    strong_ids: set[int] = field(default_factory=set)
    customer_ids: set[int] = field(default_factory=set)


def _path(lead_id: int, created: datetime, converted: datetime) -> list[StageTransition]:
    """visitor → mql → sal → sql → customer, ending at ``converted``."""
    steps = [("visitor", "mql", 20), ("mql", "sal", 15), ("sal", "sql", 10), ("sql", "customer", 0)]
    rows = []
    for from_stage, to_stage, days_before in steps:
        at = max(created + timedelta(minutes=len(rows) + 1), converted - timedelta(days=days_before))
        rows.append(StageTransition(lead_id=lead_id, from_stage=from_stage, to_stage=to_stage, at=at))
    return rows


def planted_history(
    *,
    now: datetime,
    n: int = 400,
    days: int = 300,
    seed: int = 7,
    strong_share: float = 0.3,
    strong_rate: float = 0.65,
    weak_rate: float = 0.04,
    with_outcomes: bool = True,
) -> Planted:
    """Leads spread over ``days``; "strong" ones (senior title + demo request + pricing visits)
    become customers at ``strong_rate``, the rest at ``weak_rate``."""
    rng = random.Random(seed)
    plan = []
    for i in range(n):
        created = now - timedelta(days=rng.uniform(3, days))
        strong = rng.random() < strong_share
        plan.append((i, created, strong))
    leads = Lead.objects.bulk_create(
        [
            Lead(
                email=f"planted{i}@firm{i % 37}.example",
                first_name="Pat",
                last_name=f"Lead{i}",
                title="VP Operations" if strong else rng.choice(["Analyst", "Student", "Assistant"]),
                source=rng.choice(["website", "webinar", "partner"]),
                channel=rng.choice(["inbound", "event", "interaction"]),
                created_at=created,
            )
            for i, created, strong in plan
        ]
    )
    out = Planted(leads=leads)
    interactions, transitions = [], []
    for lead, (_i, created, strong) in zip(leads, plan, strict=True):
        for _ in range(rng.randint(1, 6)):
            at = created + timedelta(days=rng.uniform(0, 40))
            if at < now:
                interactions.append(
                    Interaction(lead=lead, type="page_view", occurred_at=at, properties={"url": "/blog"})
                )
        for _ in range(rng.randint(0, 3)):
            at = created + timedelta(days=rng.uniform(0, 40))
            if at < now:
                interactions.append(Interaction(lead=lead, type="email_open", occurred_at=at, properties={}))
        if strong:
            out.strong_ids.add(lead.pk)
            demo_at = created + timedelta(days=rng.uniform(0.1, 2))
            if demo_at < now:
                interactions.append(Interaction(lead=lead, type="demo_request", occurred_at=demo_at, properties={}))
                interactions.append(
                    Interaction(
                        lead=lead,
                        type="page_view",
                        occurred_at=demo_at + timedelta(hours=1),
                        properties={"url": "https://acme.example/pricing"},
                    )
                )
        if not with_outcomes:
            continue
        if rng.random() < (strong_rate if strong else weak_rate):
            converted = created + timedelta(days=rng.uniform(5, 45))
            if converted < now:
                out.customer_ids.add(lead.pk)
                transitions += _path(lead.pk, created, converted)
    Interaction.objects.bulk_create(interactions, batch_size=2000)
    StageTransition.objects.bulk_create(transitions, batch_size=2000)
    if out.customer_ids:
        Lead.objects.filter(pk__in=out.customer_ids).update(stage="customer")
    return out
