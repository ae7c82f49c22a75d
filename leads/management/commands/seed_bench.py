"""Load a realistic, reproducible benchmark data set fast (PostgreSQL COPY, in batches).

    python manage.py seed_bench --leads 100000 --interactions 1000000 [--seed 42] [--reset]

What it loads and how is :mod:`leads.benchdata`'s. The same ``--seed`` and ``--as-of`` give the
same data (ids included, after ``--reset``).

It refuses to write into a database that already holds leads unless ``--reset`` is given, which
empties the leads tables (and what references them).
"""

import time
from datetime import UTC, date, datetime

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from leads.benchdata import load


class Command(BaseCommand):
    help = "Load a realistic benchmark data set fast (COPY): --leads N --interactions M [--seed S] [--reset]."

    def add_arguments(self, parser):
        parser.add_argument("--leads", type=int, required=True)
        parser.add_argument("--interactions", type=int, required=True)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument(
            "--as-of",
            default=None,
            help="Reference day YYYY-MM-DD that all times are relative to (default: today, UTC).",
        )
        parser.add_argument("--reps", type=int, default=10, help="How many sales reps own the sales-stage leads.")
        parser.add_argument("--batch-size", type=int, default=50_000)
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Empty the leads tables (and what references them) first. Destroys data.",
        )

    def handle(self, *args, **opts):
        if connection.vendor != "postgresql":
            raise CommandError("seed_bench loads with PostgreSQL COPY; point DATABASE_URL at PostgreSQL.")
        if opts["leads"] < 1 or opts["interactions"] < 0:
            raise CommandError("--leads must be at least 1 and --interactions at least 0.")
        if opts["as_of"]:
            try:
                day = date.fromisoformat(opts["as_of"])
            except ValueError:
                raise CommandError("--as-of must be a date like 2026-11-27") from None
        else:
            day = datetime.now(UTC).date()
        started = time.monotonic()
        loaded = load(
            leads=opts["leads"],
            interactions=opts["interactions"],
            seed=opts["seed"],
            now=datetime(day.year, day.month, day.day, tzinfo=UTC),
            reps=opts["reps"],
            batch_size=opts["batch_size"],
            reset=opts["reset"],
        )
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"seed_bench: {loaded.leads} leads, {loaded.companies} companies, {loaded.interactions} interactions, "
            f"{loaded.transitions} stage transitions, {loaded.submissions} form submissions, "
            f"{loaded.opportunities} opportunities, {loaded.reps} reps in {elapsed:.1f}s "
            f"(seed {opts['seed']}, as of {day.isoformat()})"
        )
