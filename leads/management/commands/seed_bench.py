"""Load a realistic, reproducible benchmark data set fast (PostgreSQL COPY, in batches).

    python manage.py seed_bench --leads 100000 --interactions 1000000 [--seed 42] [--reset]

What it loads: sales reps and a marketer, companies, a handful of forms, leads
spread over every funnel stage with stage histories that agree with their
current stage (including recycled leads that came back in a second cycle),
opportunities for SQLs and their outcomes, form submissions for inbound leads,
and interactions spread over the interaction types, over time and over leads
(a few very active leads, a long tail of quiet ones) with the properties the
scoring rules look at (pricing page views, webinar minutes, trade-show
follow-ups, ...).

The same ``--seed`` and ``--as-of`` give the same data (ids included, after
``--reset``). Scores are seeded with plausible values that agree with the
stage; the scoring engine's full recompute replaces them with real ones.

It refuses to write into a database that already holds leads unless
``--reset`` is given, which empties the leads tables (and what references them).
"""

import io
import json
import math
import random
import time
import unicodedata
from datetime import UTC, date, datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, models, transaction

from leads.demo import FIRST, FIRST_INTL, LAST
from leads.models import (
    Company,
    Form,
    FormSubmission,
    Interaction,
    Lead,
    Opportunity,
    SalesRepProfile,
    StageTransition,
)

# --- vocabulary -------------------------------------------------------------------

# Sample names are shared with the demo data set (leads/demo.py).
FIRST_NAMES = FIRST
UNICODE_FIRST_NAMES = FIRST_INTL
LAST_NAMES = LAST
TITLES = (
    ("CEO", 3),
    ("CTO", 2),
    ("VP Marketing", 4),
    ("VP Sales", 3),
    ("Head of Growth", 4),
    ("Head of Marketing", 5),
    ("Director of Demand Generation", 4),
    ("Marketing Manager", 12),
    ("Marketing Operations Manager", 5),
    ("Sales Manager", 6),
    ("Product Manager", 6),
    ("Software Engineer", 10),
    ("Consultant", 6),
    ("Analyst", 8),
    ("Marketing Specialist", 8),
    ("Student", 5),
    ("Intern", 3),
    ("", 6),
)
COMPANY_A = [
    "North",
    "Blue",
    "Bright",
    "Swift",
    "Iron",
    "Silver",
    "Green",
    "Red",
    "Clear",
    "Deep",
    "High",
    "True",
    "Open",
    "Prime",
    "Core",
    "Next",
    "Alpha",
    "Delta",
    "Nova",
    "Terra",
    "Urban",
    "Polar",
    "Solar",
    "Lunar",
    "Rapid",
    "Smart",
    "Bold",
    "Quiet",
    "Grand",
    "Little",
    "Stone",
    "Cedar",
    "Maple",
    "Oak",
    "River",
    "Lake",
    "Summit",
    "Harbor",
    "Vertex",
]
COMPANY_B = [
    "wind",
    "field",
    "stone",
    "ware",
    "works",
    "labs",
    "logic",
    "systems",
    "data",
    "cloud",
    "soft",
    "metrics",
    "point",
    "path",
    "bridge",
    "gate",
    "forge",
    "scale",
    "stack",
    "flow",
    "mind",
    "wave",
    "line",
    "base",
    "craft",
    "hub",
    "net",
    "sense",
    "grid",
    "shift",
    "lane",
    "loop",
    "mark",
    "peak",
    "spark",
    "trail",
    "vista",
    "yard",
    "zone",
]
SIZE_BANDS = (("1-10", 8), ("11-50", 20), ("51-200", 25), ("201-1000", 25), ("1001-5000", 15), ("5000+", 7))
SIZE_EMPLOYEES = {"1-10": 6, "11-50": 30, "51-200": 120, "201-1000": 500, "1001-5000": 2500, "5000+": 12000}
INDUSTRIES = ("Software", "Manufacturing", "Retail", "Finance", "Healthcare", "Education", "Logistics", "Media")
PLACES = (
    ("DE", "Berlin"),
    ("DE", "Munich"),
    ("US", "New York"),
    ("US", "Austin"),
    ("GB", "London"),
    ("FR", "Paris"),
    ("NL", "Amsterdam"),
    ("TR", "Istanbul"),
    ("TH", "Bangkok"),
    ("AE", "Dubai"),
    ("IN", "Bengaluru"),
    ("BR", "São Paulo"),
)
TIME_ZONES = {
    "DE": "Europe/Berlin",
    "US": "America/New_York",
    "GB": "Europe/London",
    "FR": "Europe/Paris",
    "NL": "Europe/Amsterdam",
    "TR": "Europe/Istanbul",
    "TH": "Asia/Bangkok",
    "AE": "Asia/Dubai",
    "IN": "Asia/Kolkata",
    "BR": "America/Sao_Paulo",
}
FREE_MAIL = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "gmx.de", "web.de", "icloud.com", "proton.me")
# source, channel, weight
SOURCES = (
    ("website", "inbound", 40),
    ("google_ads", "inbound", 12),
    ("linkedin", "inbound", 10),
    ("webinar", "event", 8),
    ("trade_show", "event", 6),
    ("import", "import", 8),
    ("referral", "manual", 4),
    ("partner", "api", 5),
    ("product", "product", 7),
)
# slug, name, kind, channel, channel weight
FORMS = (
    ("contact-us", "Contact us", "contact", "inbound", 10),
    ("demo-request", "Request a demo", "demo_request", "inbound", 25),
    ("ebook-funnel-metrics", "E-book: funnel metrics that matter", "content_download", "inbound", 5),
    ("webinar-scoring-101", "Webinar: lead scoring 101", "webinar", "event", 8),
    ("pricing-quote", "Pricing quote", "contact", "inbound", 15),
    ("newsletter", "Newsletter sign-up", "newsletter", "inbound", 1),
    ("trial-signup", "Start a free trial", "trial", "product", 20),
    ("expo-badge-scan", "Expo badge scan", "event", "event", 6),
)
# (stage, weight)
# Open MQLs/PQLs are few: reps answer them within the SLA, so only the last day or two's wait
# in a queue (about 70 per rep at 100k leads); everything older moved on.
STAGES = (
    ("visitor", 62),
    ("mql", 0.5),
    ("pql", 0.2),
    ("sal", 6),
    ("sql", 4.5),
    ("customer", 4),
    ("lost", 5),
    ("recycled", 11),
    ("disqualified", 6.8),
)
REJECTIONS = ("wrong_person", "no_budget_yet", "not_ready", "bad_data", "student", "no_response")
LOSSES = ("price", "competitor", "no_decision", "timing", "features")
# interaction type, weight
INTERACTION_TYPES = (
    ("page_view", 45),
    ("email_sent", 14),
    ("email_open", 10),
    ("email_click", 4),
    ("content_download", 4),
    ("webinar_registered", 2),
    ("webinar_attended", 1.5),
    ("event_attended", 0.5),
    ("trade_show_visit", 0.5),
    ("demo_request", 0.5),
    ("trial_started", 0.3),
    ("product_usage", 5),
    ("social_follow", 1),
    ("sms_sent", 0.5),
    ("sms_click", 0.2),
    ("email_bounce", 0.1),
    ("unsubscribe", 0.2),
)
PAGES = (
    ("/", 20),
    ("/pricing", 9),
    ("/features/scoring", 8),
    ("/features/nurturing", 6),
    ("/customers", 5),
    ("/blog/what-is-an-mql", 8),
    ("/blog/sla-between-marketing-and-sales", 6),
    ("/blog/lead-scoring-models", 7),
    ("/docs/api", 4),
    ("/careers", 3),
    ("/about", 4),
    ("/integrations", 5),
)
ASSETS = ("ebook-funnel-metrics", "whitepaper-scoring", "checklist-sla", "report-benchmarks-2026", "case-study-acme")
CAMPAIGNS = ("welcome", "re-nurture", "trial-to-paid", "newsletter-weekly", "webinar-invite", "product-update")
WEBINARS = ("scoring-101", "funnel-analytics", "nurture-that-works")
EVENTS = ("SaaS Expo Berlin", "MarTech London", "Growth Summit Austin")
FEATURES = ("dashboard", "rules", "sequences", "import", "api", "reports")

SITE = "https://www.leadfunnel.example"


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower() or "x"


def _weighted(pairs):
    values = [p[0] for p in pairs]
    cum = []
    total = 0.0
    for p in pairs:
        total += p[-1]
        cum.append(total)
    return values, cum


# --- COPY ------------------------------------------------------------------------

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value) -> str:
    """One value in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False).translate(_ESCAPES)
    return str(value)


class Copier:
    """COPY rows of one model: the caller gives values for some columns, model defaults fill the rest."""

    def __init__(self, cursor, model: type[models.Model], columns: list[str], batch_size: int) -> None:
        self.cursor = cursor
        self.batch_size = batch_size
        fields = {f.column: f for f in model._meta.concrete_fields}
        unknown = set(columns) - set(fields)
        if unknown:
            raise CommandError(f"{model.__name__} has no column(s) {sorted(unknown)}")
        extra = []
        for column, field in fields.items():
            if column in columns or (field.primary_key and isinstance(field, models.AutoField)):
                continue
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                default = datetime.now(UTC)
            elif field.has_default():
                default = field.get_default()
            elif field.null:
                default = None
            else:
                raise CommandError(f"{model.__name__}.{field.name} has no default; seed_bench must fill it")
            extra.append((column, _text(default)))
        self.suffix = "".join("\t" + text for _, text in extra)
        all_columns = [*columns, *(c for c, _ in extra)]
        quoted = ", ".join(connection.ops.quote_name(c) for c in all_columns)
        self.sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({quoted}) FROM STDIN"
        self.buffer = io.StringIO()
        self.pending = 0
        self.count = 0

    def add(self, values) -> None:
        self.buffer.write("\t".join(map(_text, values)))
        self.buffer.write(self.suffix)
        self.buffer.write("\n")
        self.pending += 1
        if self.pending >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        self.buffer.seek(0)
        self.cursor.copy_expert(self.sql, self.buffer)
        self.count += self.pending
        self.buffer = io.StringIO()
        self.pending = 0


def _reset_sequence(cursor, model: type[models.Model]) -> None:
    table = model._meta.db_table
    cursor.execute(
        f"SELECT setval(pg_get_serial_sequence(%s, 'id'), COALESCE((SELECT MAX(id) FROM {connection.ops.quote_name(table)}), 0) + 1, false)",  # noqa: S608 - table name from the model
        [table],
    )


# --- the command -------------------------------------------------------------------


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
        self.now = datetime(day.year, day.month, day.day, tzinfo=UTC)
        self.rng = random.Random(opts["seed"])
        self.batch_size = max(1000, opts["batch_size"])
        started = time.monotonic()
        with transaction.atomic():
            if opts["reset"]:
                self.reset()
            elif Lead.objects.exists():
                raise CommandError("This database already holds leads; pass --reset to empty it first.")
            reps, marketer = self.users(opts["reps"])
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            with connection.cursor() as django_cursor:
                cursor = django_cursor.cursor
                self.cursor = cursor
                forms = self.forms(marketer)
                companies = self.companies(max(1, opts["leads"] // 6))
                leads = self.plan_leads(opts["leads"], companies, forms, reps)
                n_interactions = self.interactions(leads, opts["interactions"])
                n_transitions, n_opportunities = self.histories(leads, reps)
                n_submissions = self.submissions(leads, forms)
                self.write_leads(leads, companies)
                # Interactions went in before their leads (deferred foreign keys): check them all now.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                for model in (Company, Form, Lead, StageTransition, Interaction, FormSubmission, Opportunity):
                    _reset_sequence(cursor, model)
        with connection.cursor() as cursor:
            for model in (Company, Lead, StageTransition, Interaction, FormSubmission, Opportunity):
                cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"seed_bench: {len(leads)} leads, {len(companies)} companies, {n_interactions} interactions, "
            f"{n_transitions} stage transitions, {n_submissions} form submissions, {n_opportunities} opportunities, "
            f"{len(reps)} reps in {elapsed:.1f}s (seed {opts['seed']}, as of {day.isoformat()})"
        )

    # --- pieces -------------------------------------------------------------------

    def reset(self) -> None:
        tables = [
            m._meta.db_table for m in (Interaction, StageTransition, FormSubmission, Opportunity, Lead, Company, Form)
        ]
        with connection.cursor() as cursor:
            # Pending deferred foreign-key checks (from an earlier load in this transaction) block TRUNCATE.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(
                "TRUNCATE " + ", ".join(connection.ops.quote_name(t) for t in tables) + " RESTART IDENTITY CASCADE"
            )

    def users(self, n_reps: int):
        user_model = get_user_model()
        sales = Group.objects.get_or_create(name="sales")[0]
        marketing = Group.objects.get_or_create(name="marketer")[0]
        reps = []
        for i in range(1, max(1, n_reps) + 1):
            user, created = user_model.objects.get_or_create(
                username=f"bench-rep-{i:02d}",
                defaults={
                    "email": f"bench-rep-{i:02d}@leadfunnel.example",
                    "first_name": "Rep",
                    "last_name": f"{i:02d}",
                },
            )
            if created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
            user.groups.add(sales)
            SalesRepProfile.objects.get_or_create(user=user)
            reps.append(user.pk)
        marketer, created = user_model.objects.get_or_create(
            username="bench-marketer", defaults={"email": "bench-marketer@leadfunnel.example"}
        )
        if created:
            marketer.set_unusable_password()
            marketer.save(update_fields=["password"])
        marketer.groups.add(marketing)
        return reps, marketer.pk

    def forms(self, marketer_id: int) -> dict[str, int]:
        existing = dict(Form.objects.values_list("slug", "id"))
        next_id = max(existing.values(), default=0) + 1
        copier = Copier(
            self.cursor,
            Form,
            ["id", "slug", "name", "kind", "channel", "channel_weight", "created_by_id", "created_at", "updated_at"],
            self.batch_size,
        )
        ids = {}
        for slug, name, kind, channel, weight in FORMS:
            if slug in existing:
                ids[slug] = existing[slug]
                continue
            at = self.now - timedelta(days=400)
            copier.add((next_id, slug, name, kind, channel, weight, marketer_id, at, at))
            ids[slug] = next_id
            next_id += 1
        copier.flush()
        return ids

    def companies(self, n: int) -> list[tuple]:
        rng = self.rng
        sizes, size_cum = _weighted(SIZE_BANDS)
        combos = len(COMPANY_A) * len(COMPANY_B)
        copier = Copier(
            self.cursor,
            Company,
            [
                "id",
                "name",
                "domain",
                "size_band",
                "employees",
                "industry",
                "country",
                "city",
                "created_at",
                "updated_at",
            ],
            self.batch_size,
        )
        companies = []
        for i in range(n):
            a = COMPANY_A[(i % combos) // len(COMPANY_B)]
            b = COMPANY_B[i % len(COMPANY_B)]
            generation = i // combos
            name = f"{a}{b}" + (f" {generation + 1}" if generation else "")
            domain = f"{a}{b}{generation + 1 if generation else ''}.example".lower()
            size = rng.choices(sizes, cum_weights=size_cum)[0]
            country, city = rng.choice(PLACES)
            industry = rng.choice(INDUSTRIES)
            at = self.now - timedelta(days=rng.uniform(200, 800))
            row = (i + 1, name, domain, size, SIZE_EMPLOYEES[size], industry, country, city, at, at)
            copier.add(row)
            companies.append(row)
        copier.flush()
        return companies

    def plan_leads(self, n: int, companies, forms: dict[str, int], reps: list[int]) -> list[dict]:
        rng = self.rng
        titles, title_cum = _weighted(TITLES)
        stages, stage_cum = _weighted(STAGES)
        sources, source_cum = _weighted([(s[:2], s[2]) for s in SOURCES])
        inbound_forms = [slug for slug, *_rest in FORMS if slug not in ("trial-signup", "expo-badge-scan")]
        leads = []
        for i in range(n):
            lead_id = i + 1
            first = rng.choice(UNICODE_FIRST_NAMES) if rng.random() < 0.04 else rng.choice(FIRST_NAMES)
            last = rng.choice(LAST_NAMES)
            # Addresses stay ASCII (what email validators accept); names keep their letters.
            local = f"{rng.choice(FIRST_NAMES).lower()}.{_ascii(last)}.{lead_id}"
            company = None
            if rng.random() < 0.72:
                company = companies[int(rng.paretovariate(1.2) * 7) % len(companies)]
                domain = company[2]
            else:
                domain = rng.choice(FREE_MAIL)
            (source, channel) = rng.choices(sources, cum_weights=source_cum)[0]
            # Recent months hold more leads than old ones.
            age_days = min(720.0, rng.expovariate(1 / 150))
            created = self.now - timedelta(days=age_days, seconds=rng.randrange(86400))
            form_slug = None
            if channel == "inbound":
                form_slug = rng.choice(inbound_forms)
            elif channel == "product":
                form_slug = "trial-signup"
            elif source == "trade_show":
                form_slug = "expo-badge-scan"
            elif source == "webinar":
                form_slug = "webinar-scoring-101"
            title = rng.choices(titles, cum_weights=title_cum)[0]
            stage = rng.choices(stages, cum_weights=stage_cum)[0]
            if title in ("Student", "Intern") and stage not in ("visitor", "disqualified", "recycled"):
                stage = "visitor" if rng.random() < 0.6 else "disqualified"
            country, city = (company[6], company[7]) if company else rng.choice(PLACES)
            leads.append(
                {
                    "id": lead_id,
                    "email": f"{local}@{domain}",
                    "first_name": first,
                    "last_name": last,
                    "title": title,
                    "phone": f"+{rng.randrange(10, 99)} {rng.randrange(100, 999)} {rng.randrange(100000, 9999999)}"
                    if rng.random() < 0.5
                    else "",
                    "company_id": company[0] if company else None,
                    "company_name": company[1] if company else ("" if rng.random() < 0.7 else "Freelance"),
                    "company_size": company[3] if company else "",
                    "industry": company[5] if company else "",
                    "country": country,
                    "city": city,
                    "time_zone": TIME_ZONES.get(country, ""),
                    "source": source,
                    "channel": channel,
                    "first_form_id": forms[form_slug] if form_slug else None,
                    "form_slug": form_slug,
                    "utm_source": {"google_ads": "google", "linkedin": "linkedin"}.get(source, ""),
                    "utm_medium": "cpc" if source in ("google_ads", "linkedin") else "",
                    "utm_campaign": rng.choice(("spring-launch", "scoring-guide", "brand", "retargeting"))
                    if source in ("google_ads", "linkedin")
                    else "",
                    "first_page_url": SITE + rng.choice(PAGES)[0] if channel == "inbound" else "",
                    "consent": rng.random() < 0.7,
                    "created_at": created,
                    "stage": stage,
                    "last_activity_at": created,
                    "unsubscribed_at": None,
                    "email_bounced_at": None,
                    "n_interactions": 0,
                }
            )
        return leads

    def interactions(self, leads: list[dict], total: int) -> int:
        """Stream interactions: a form_submit for each lead that came through a form, the rest spread."""
        rng = self.rng
        copier = Copier(
            self.cursor,
            Interaction,
            ["lead_id", "type", "occurred_at", "received_at", "properties", "source"],
            self.batch_size,
        )
        written = 0
        for lead in leads:
            if written >= total:
                break
            if lead["form_slug"]:
                at = lead["created_at"]
                copier.add((lead["id"], "form_submit", at, at, {"form": lead["form_slug"]}, "form"))
                lead["n_interactions"] += 1
                written += 1
        remaining = total - written
        if remaining <= 0 or not leads:
            copier.flush()
            return written
        boost = {"visitor": 1.0, "recycled": 1.5, "disqualified": 0.7, "mql": 3.0, "pql": 3.0}
        cum = []
        acc = 0.0
        for lead in leads:
            acc += rng.lognormvariate(0, 1.0) * boost.get(lead["stage"], 2.5)
            cum.append(acc)
        types, type_cum = _weighted(INTERACTION_TYPES)
        pages, page_cum = _weighted(PAGES)
        now = self.now
        chunk = 100_000
        while remaining > 0:
            k = min(chunk, remaining)
            picks = rng.choices(range(len(leads)), cum_weights=cum, k=k)
            kinds = rng.choices(types, cum_weights=type_cum, k=k)
            for index, kind in zip(picks, kinds, strict=True):
                lead = leads[index]
                span = (now - lead["created_at"]).total_seconds()
                at = lead["created_at"] + timedelta(seconds=span * rng.random() ** 0.7)
                properties, source = self._properties(kind, rng, pages, page_cum)
                copier.add((lead["id"], kind, at, at + timedelta(seconds=rng.randrange(1, 90)), properties, source))
                lead["n_interactions"] += 1
                if at > lead["last_activity_at"] and not kind.endswith("_sent"):
                    lead["last_activity_at"] = at
                if kind == "unsubscribe" and (lead["unsubscribed_at"] is None or at < lead["unsubscribed_at"]):
                    lead["unsubscribed_at"] = at
                if kind == "email_bounce" and (lead["email_bounced_at"] is None or at < lead["email_bounced_at"]):
                    lead["email_bounced_at"] = at
            remaining -= k
        copier.flush()
        return copier.count

    @staticmethod
    def _properties(kind: str, rng: random.Random, pages, page_cum) -> tuple[dict, str]:
        if kind == "page_view":
            path = rng.choices(pages, cum_weights=page_cum)[0]
            return {"url": SITE + path, "referrer": rng.choice(("", "https://www.google.com/", "newsletter"))}, "web"
        if kind in ("email_sent", "email_open"):
            return {"campaign": rng.choice(CAMPAIGNS)}, "email"
        if kind == "email_click":
            return {"campaign": rng.choice(CAMPAIGNS), "url": SITE + rng.choice(PAGES)[0]}, "email"
        if kind == "email_bounce":
            return {"kind": "hard" if rng.random() < 0.5 else "soft"}, "email"
        if kind == "unsubscribe":
            return {"campaign": rng.choice(CAMPAIGNS)}, "email"
        if kind == "content_download":
            return {"asset": rng.choice(ASSETS)}, "web"
        if kind == "webinar_registered":
            return {"webinar": rng.choice(WEBINARS)}, "webinar"
        if kind == "webinar_attended":
            return {"webinar": rng.choice(WEBINARS), "minutes": rng.randrange(3, 61)}, "webinar"
        if kind == "event_attended":
            return {"event": rng.choice(EVENTS)}, "event"
        if kind == "trade_show_visit":
            return {"event": rng.choice(EVENTS), "follow_up_requested": rng.random() < 0.3}, "event"
        if kind == "demo_request":
            return {"form": "demo-request"}, "web"
        if kind == "trial_started":
            return {"plan": rng.choice(("starter", "pro"))}, "product"
        if kind == "product_usage":
            return {"feature": rng.choice(FEATURES), "count": rng.randrange(1, 20)}, "product"
        if kind == "social_follow":
            return {"network": rng.choice(("linkedin", "x", "youtube"))}, "social"
        if kind == "sms_sent":
            return {"campaign": rng.choice(CAMPAIGNS)}, "sms"
        if kind == "sms_click":
            return {"campaign": rng.choice(CAMPAIGNS), "url": SITE + "/pricing"}, "sms"
        return {}, "web"

    def histories(self, leads: list[dict], reps: list[int]) -> tuple[int, int]:
        """Stage transitions that lead to each lead's current stage, plus owner, SLA and opportunities."""
        rng = self.rng
        now = self.now
        tcopier = Copier(
            self.cursor,
            StageTransition,
            [
                "lead_id",
                "from_stage",
                "to_stage",
                "at",
                "actor_id",
                "cause",
                "cause_ref",
                "reason_code",
                "reason",
                "cycle",
                "owner_id",
                "details",
            ],
            self.batch_size,
        )
        ocopier = Copier(
            self.cursor,
            Opportunity,
            [
                "lead_id",
                "cycle",
                "buying_cycle",
                "influencer",
                "timeframe",
                "opportunity_size",
                "next_step",
                "budget",
                "status",
                "close_reason_code",
                "close_reason",
                "closed_at",
                "created_by_id",
                "created_at",
                "updated_at",
            ],
            self.batch_size,
        )
        to_sal = ("mql", "sal")
        paths = {
            "visitor": [],
            "mql": ["mql"],
            "pql": ["pql"],
            "sal": [*to_sal],
            "sql": [*to_sal, "sql"],
            "customer": [*to_sal, "sql", "customer"],
            "lost": [*to_sal, "sql", "lost"],
            "recycled": ["mql", "recycled"],
            "disqualified": ["disqualified"],
        }
        for lead in leads:
            stage = lead["stage"]
            path = list(paths[stage])
            if stage == "disqualified" and rng.random() < 0.4:
                path = ["mql", "disqualified"]
            if stage in ("mql", "sal", "sql", "customer") and rng.random() < 0.12:
                path = ["mql", "recycled", *path]  # came back in a second cycle
            times = []
            at = lead["created_at"]
            for _step in path:
                remaining = (now - at).total_seconds()
                at = at + timedelta(seconds=remaining * rng.uniform(0.05, 0.5))
                times.append(at)
            if path and path[-1] in ("mql", "pql"):
                # Open MQLs are recent: most are inside their SLA, some breached it.
                times[-1] = max(
                    times[-2] if len(times) > 1 else lead["created_at"], now - timedelta(hours=rng.uniform(0.5, 60))
                )
            cycle = 1
            owner = None
            assigned_at = sla_due = first_response = None
            tcopier.add(
                (
                    lead["id"],
                    "",
                    "visitor",
                    lead["created_at"],
                    None,
                    "api" if lead["channel"] == "api" else "system",
                    "",
                    "",
                    "",
                    1,
                    None,
                    {},
                )
            )
            previous = "visitor"
            for to_stage, at in zip(path, times, strict=True):
                actor = None
                cause, cause_ref, reason_code, reason, details = "user", "", "", "", {}
                if to_stage in ("mql", "pql"):
                    if previous in ("recycled", "lost"):
                        cycle += 1
                    owner = rng.choice(reps)
                    assigned_at = at
                    sla_due = at + timedelta(hours=24)
                    first_response = None
                    cause, cause_ref = "rule", "threshold"
                    score = rng.randrange(60, 100)
                    details = {"score": score, "threshold": 60, "rules": ["Demo request", "Pricing page"]}
                elif to_stage == "sal":
                    actor = owner
                    first_response, sla_due = at, None
                elif to_stage == "recycled":
                    actor = owner
                    reason_code = rng.choice(REJECTIONS)
                    reason = "Not ready to talk this quarter." if reason_code == "not_ready" else ""
                    first_response = at
                    owner = sla_due = None
                elif to_stage == "disqualified":
                    actor = owner
                    reason_code = rng.choice(("bad_data", "student", "competitor", "spam"))
                    owner = sla_due = None
                elif to_stage == "sql":
                    actor = owner
                    details = {"opportunity_size": rng.randrange(5, 200) * 1000}
                elif to_stage == "lost":
                    actor = owner
                    reason_code = rng.choice(LOSSES)
                elif to_stage == "customer":
                    actor = owner
                tcopier.add(
                    (
                        lead["id"],
                        previous,
                        to_stage,
                        at,
                        actor,
                        cause,
                        cause_ref,
                        reason_code,
                        reason,
                        cycle,
                        owner,
                        details,
                    )
                )
                if to_stage == "sql":
                    final = path[-1]
                    closed = times[-1] if final in ("customer", "lost") else None
                    status = {"customer": "won", "lost": "lost"}.get(final, "open")
                    size = details["opportunity_size"]
                    ocopier.add(
                        (
                            lead["id"],
                            cycle,
                            rng.choice(("Quarterly budget review", "Annual planning", "Ad hoc")),
                            rng.choice(("VP Marketing", "CFO", "Head of Sales")),
                            rng.choice(("this quarter", "next quarter", "within 6 months")),
                            size,
                            "Technical call with the team",
                            size if rng.random() < 0.5 else None,
                            status,
                            {"won": "", "lost": rng.choice(LOSSES)}.get(status, ""),
                            "",
                            closed,
                            owner,
                            at,
                            at,
                        )
                    )
                if to_stage == "lost":
                    owner = None
                previous = to_stage
            lead["stage_changed_at"] = times[-1] if times else lead["created_at"]
            lead["cycle"] = cycle
            lead["owner_id"] = owner
            lead["assigned_at"] = assigned_at if owner else None
            lead["sla_due_at"] = sla_due if stage in ("mql", "pql") else None
            lead["sla_breached_at"] = sla_due if lead["sla_due_at"] and sla_due < now else None
            lead["first_response_at"] = first_response if owner else None
        tcopier.flush()
        ocopier.flush()
        return tcopier.count, ocopier.count

    def submissions(self, leads: list[dict], forms: dict[str, int]) -> int:
        rng = self.rng
        copier = Copier(
            self.cursor,
            FormSubmission,
            ["form_id", "lead_id", "payload", "ip", "user_agent", "received_at"],
            self.batch_size,
        )
        for lead in leads:
            if not lead["form_slug"]:
                continue
            payload = {
                "email": lead["email"],
                "first_name": lead["first_name"],
                "last_name": lead["last_name"],
                "title": lead["title"],
                "company": lead["company_name"],
                "consent": lead["consent"],
            }
            ip = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            copier.add((lead["first_form_id"], lead["id"], payload, ip, "Mozilla/5.0 (bench)", lead["created_at"]))
        copier.flush()
        return copier.count

    def write_leads(self, leads: list[dict], companies) -> None:
        rng = self.rng
        columns = [
            "id",
            "email",
            "first_name",
            "last_name",
            "title",
            "phone",
            "company_id",
            "company_name",
            "company_size",
            "industry",
            "country",
            "city",
            "time_zone",
            "source",
            "channel",
            "first_form_id",
            "utm_source",
            "utm_medium",
            "utm_campaign",
            "first_page_url",
            "consent",
            "consent_at",
            "consent_source",
            "unsubscribed_at",
            "email_bounced_at",
            "stage",
            "stage_changed_at",
            "cycle",
            "owner_id",
            "assigned_at",
            "sla_due_at",
            "sla_breached_at",
            "first_response_at",
            "score",
            "fit_score",
            "engagement_score",
            "fit_points",
            "engagement_points",
            "engagement_points_at",
            "score_updated_at",
            "last_activity_at",
            "created_at",
            "updated_at",
        ]
        copier = Copier(self.cursor, Lead, columns, self.batch_size)
        sales_stages = {"mql", "pql", "sal", "sql", "customer", "lost"}
        for lead in leads:
            # Plausible scores until the scoring engine recomputes them: sales stages crossed the threshold.
            engagement = min(100, int(18 * math.log1p(lead["n_interactions"])) + rng.randrange(0, 10))
            fit = rng.randrange(10, 95) if lead["company_id"] else rng.randrange(0, 40)
            score = (fit + engagement) // 2
            score = max(score, rng.randrange(60, 95)) if lead["stage"] in sales_stages else min(score, 59)
            copier.add(
                (
                    lead["id"],
                    lead["email"],
                    lead["first_name"],
                    lead["last_name"],
                    lead["title"],
                    lead["phone"],
                    lead["company_id"],
                    lead["company_name"],
                    lead["company_size"],
                    lead["industry"],
                    lead["country"],
                    lead["city"],
                    lead["time_zone"],
                    lead["source"],
                    lead["channel"],
                    lead["first_form_id"],
                    lead["utm_source"],
                    lead["utm_medium"],
                    lead["utm_campaign"],
                    lead["first_page_url"],
                    lead["consent"],
                    lead["created_at"] if lead["consent"] else None,
                    (lead["form_slug"] or "") if lead["consent"] else "",
                    lead["unsubscribed_at"],
                    lead["email_bounced_at"] if lead["email_bounced_at"] and rng.random() < 0.5 else None,
                    lead["stage"],
                    lead["stage_changed_at"],
                    lead["cycle"],
                    lead["owner_id"],
                    lead["assigned_at"],
                    lead["sla_due_at"],
                    lead["sla_breached_at"],
                    lead["first_response_at"],
                    score,
                    fit,
                    engagement,
                    float(fit),
                    float(engagement),
                    self.now,
                    self.now,
                    lead["last_activity_at"],
                    lead["created_at"],
                    lead["stage_changed_at"],
                )
            )
        copier.flush()
