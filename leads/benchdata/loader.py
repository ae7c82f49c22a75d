"""One load from start to end: the order the loaders run in (it fixes the data for a seed), the
one transaction around them, deferred foreign keys so interactions and histories can stream in
before the leads they point at, and the sequences and planner statistics put right afterwards.
"""

import random
from dataclasses import dataclass
from datetime import datetime

from django.core.management.base import CommandError
from django.db import connection, transaction

from leads.models import Company, Form, FormSubmission, Interaction, Lead, Opportunity, StageTransition

from .forms import forms_write, submissions_write
from .histories import histories_write
from .interactions import interactions_write
from .leads import leads_plan, leads_write
from .people import companies_write, reps_and_marketer
from .pgcopy import reset_sequence
from .run import Run


@dataclass(frozen=True)
class Loaded:
    """How many rows of each kind one load wrote."""

    leads: int
    companies: int
    interactions: int
    transitions: int
    submissions: int
    opportunities: int
    reps: int


def load(*, leads: int, interactions: int, seed: int, now: datetime, reps: int, batch_size: int, reset: bool) -> Loaded:
    """Load the data set for ``seed`` with every time relative to ``now`` (PostgreSQL only).

    Refuses (``CommandError``) a database that already holds leads unless ``reset`` empties the
    leads tables first.
    """
    rng = random.Random(seed)
    batch_size = max(1000, batch_size)
    with transaction.atomic():
        if reset:
            _tables_empty()
        elif Lead.objects.exists():
            raise CommandError("This database already holds leads; pass --reset to empty it first.")
        rep_ids, marketer = reps_and_marketer(reps)
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        with connection.cursor() as django_cursor:
            cursor = django_cursor.cursor
            run = Run(cursor=cursor, rng=rng, now=now, batch_size=batch_size)
            form_ids = forms_write(run, marketer)
            companies = companies_write(run, max(1, leads // 6))
            planned = leads_plan(run, leads, companies, form_ids)
            n_interactions = interactions_write(run, planned, interactions)
            n_transitions, n_opportunities = histories_write(run, planned, rep_ids)
            n_submissions = submissions_write(run, planned, form_ids)
            leads_write(run, planned)
            # Interactions went in before their leads (deferred foreign keys): check them all now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for model in (Company, Form, Lead, StageTransition, Interaction, FormSubmission, Opportunity):
                reset_sequence(cursor, model)
    with connection.cursor() as cursor:
        for model in (Company, Lead, StageTransition, Interaction, FormSubmission, Opportunity):
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    return Loaded(
        leads=len(planned),
        companies=len(companies),
        interactions=n_interactions,
        transitions=n_transitions,
        submissions=n_submissions,
        opportunities=n_opportunities,
        reps=len(rep_ids),
    )


def _tables_empty() -> None:
    """Empty the leads tables and what references them (TRUNCATE … RESTART IDENTITY CASCADE)."""
    tables = [
        m._meta.db_table for m in (Interaction, StageTransition, FormSubmission, Opportunity, Lead, Company, Form)
    ]
    with connection.cursor() as cursor:
        # Pending deferred foreign-key checks (from an earlier load in this transaction) block TRUNCATE.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            "TRUNCATE " + ", ".join(connection.ops.quote_name(t) for t in tables) + " RESTART IDENTITY CASCADE"
        )
