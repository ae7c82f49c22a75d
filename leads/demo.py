"""Demo data for leads: a few hundred people spread over every stage, with realistic histories.

Everything is built through the services a real install uses (form intake, interaction
recording, the sales workflow), each step run "at" its moment in the past, so the
timelines, stage history, SLA figures and funnel analytics look like a live funnel.
Idempotent: a second run finds the demo forms and changes nothing.
"""

import random
import unicodedata
from contextlib import contextmanager, nullcontext
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from . import services
from .models import Form, Lead, SalesRepProfile, Stage

SEED = 20261127
SENTINEL_FORM = "demo-contact"

FORMS = (
    # slug, name, kind, channel, channel weight
    ("demo-contact", "Contact sales", "contact", "inbound", 15),
    ("demo-ebook", "Ebook: The B2B funnel playbook", "content_download", "inbound", 5),
    ("demo-request", "Book a demo", "demo_request", "inbound", 20),
    ("demo-webinar", "Webinar: Scoring that sales trusts", "webinar", "event", 8),
    ("demo-tradeshow", "SaaStock booth card drop", "event", "event", 6),
)
FIRST = [
    "Anna",
    "Ben",
    "Clara",
    "David",
    "Emma",
    "Felix",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Kara",
    "Liam",
    "Mia",
    "Noah",
    "Olivia",
    "Paul",
    "Rosa",
    "Sam",
    "Tara",
    "Vera",
    "Will",
    "Yusuf",
    "Zoe",
    "Ahmet",
    "Elif",
    "Sofia",
    "Mateo",
    "Lucia",
    "Chen",
    "Yuki",
    "Priya",
    "Arjun",
    "Kwame",
    "Amara",
    "Lars",
    "Ingrid",
    "Camille",
]
FIRST_INTL = ("Zeynep", "Çağla", "İsmail", "สมชาย", "ณัฐ", "فاطمة", "محمد", "Jürgen", "Søren", "Łukasz")
LAST = [
    "Smith",
    "Müller",
    "Garcia",
    "Rossi",
    "Dubois",
    "Kowalski",
    "Jensen",
    "Nakamura",
    "Patel",
    "Okafor",
    "Silva",
    "Novak",
    "Yılmaz",
    "Kaya",
    "Johansson",
    "Hansen",
    "Schmidt",
    "Lopez",
    "Martin",
    "Brown",
    "Wilson",
    "Taylor",
    "Clark",
    "Walker",
    "Young",
    "King",
    "Wright",
    "Green",
    "Baker",
    "Adams",
]
COMPANIES = (
    # domain, name, size band, industry, country
    ("northwind.example", "Northwind Traders", "201-1000", "Retail", "US"),
    ("globex.example", "Globex", "1001-5000", "Manufacturing", "US"),
    ("initech.example", "Initech", "51-200", "Software", "US"),
    ("umbrella.example", "Umbrella Health", "5000+", "Healthcare", "GB"),
    ("acme-logistics.example", "Acme Logistics", "201-1000", "Logistics", "DE"),
    ("stark.example", "Stark Industries", "5000+", "Manufacturing", "US"),
    ("wayne.example", "Wayne Enterprises", "1001-5000", "Finance", "US"),
    ("hooli.example", "Hooli", "1001-5000", "Software", "US"),
    ("piedpiper.example", "Pied Piper", "11-50", "Software", "US"),
    ("vandelay.example", "Vandelay Industries", "51-200", "Import/Export", "US"),
    ("soylent.example", "Soylent Foods", "201-1000", "Food", "NL"),
    ("tyrell.example", "Tyrell Corp", "1001-5000", "Biotech", "JP"),
    ("cyberdyne.example", "Cyberdyne Systems", "201-1000", "Robotics", "US"),
    ("oscorp.example", "Oscorp", "1001-5000", "Chemicals", "US"),
    ("duff.example", "Duff Brewing", "51-200", "Beverages", "US"),
    ("monarch.example", "Monarch Solutions", "11-50", "Consulting", "FR"),
    ("bosphorus.example", "Boğaziçi Yazılım", "51-200", "Software", "TR"),
    ("siam-digital.example", "สยาม ดิจิทัล", "11-50", "Marketing", "TH"),
    ("nile-data.example", "نيل للبيانات", "51-200", "Data", "EG"),
    ("fjord.example", "Fjord Analytics", "11-50", "Software", "NO"),
)
FREE_MAIL = ("gmail.com", "outlook.com", "yahoo.com")
TITLES_SENIOR = ("CEO", "VP Marketing", "Head of Growth", "Director of Demand Generation", "CMO", "Founder")
TITLES_OTHER = ("Marketing Manager", "Sales Operations Manager", "Marketing Specialist", "Developer", "Analyst")
TITLES_NEGATIVE = ("Student", "Procurement Officer")
PAGES = ("/blog/lead-scoring-101", "/features/scoring", "/features/nurturing", "/customers", "/integrations")

# Where the demo leads end up (target stage, how many of LEAD_COUNT).
PLAN = (
    ("visitor", 90),
    ("mql", 18),
    ("pql", 5),
    ("sal", 15),
    ("sql", 14),
    ("customer", 15),
    ("lost", 9),
    ("recycled", 14),
    ("recycled_again", 6),  # recycled, back as MQL in cycle 2, accepted
    ("disqualified", 10),
)
LOST_REASONS = (("price", "Chose the cheaper plan of a competitor"), ("no_decision", "Project shelved"))
REJECT_REASONS = (
    ("not_ready", "Interested, but budget opens next quarter"),
    ("wrong_person", "Intern doing research; forwarded to their manager"),
    ("no_budget_yet", "No budget this year"),
)


@contextmanager
def _at(moment: datetime):
    """Run the services as if it were ``moment`` (so every timestamp of the history lines up)."""
    try:
        import time_machine
    except ImportError:  # pragma: no cover - time-machine is in requirements.txt
        with nullcontext():
            yield
        return
    with time_machine.travel(moment, tick=False):
        yield


# Letters NFKD does not split into a base letter and a mark.
_FOLD = str.maketrans({"ı": "i", "Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "ß": "ss", "Æ": "AE", "æ": "ae"})


def _ascii(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name.translate(_FOLD))
    return "".join(ch for ch in folded if ch.isascii() and ch.isalnum()).lower()


def _people(rng: random.Random):
    used: set[str] = set()
    while True:
        first = rng.choice(FIRST_INTL) if rng.random() < 0.12 else rng.choice(FIRST)
        last = rng.choice(LAST)
        company = rng.choice(COMPANIES)
        domain = rng.choice(FREE_MAIL) if rng.random() < 0.15 else company[0]
        # The address is the person's own name (ASCII-folded: Jürgen Müller -> jurgen.muller),
        # so a demo lead looks like the real thing; scripts with no Latin form keep the last name.
        local = ".".join(part for part in (_ascii(first), _ascii(last)) if part) or "contact"
        email = f"{local}{rng.randrange(10, 99)}@{domain}"
        if email in used:
            continue
        used.add(email)
        yield first, last, company, email


def seed_demo() -> str:
    if Form.objects.filter(slug=SENTINEL_FORM).exists():
        return f"demo leads already loaded ({Lead.objects.count()} leads)"
    users = get_user_model().objects
    marketer = users.filter(groups__name="marketer").order_by("pk").first()
    admin = users.filter(is_superuser=True).order_by("pk").first()
    reps = list(users.filter(groups__name="sales", is_active=True).order_by("pk"))
    if marketer is None or admin is None:
        return "demo leads skipped: create the demo users first"
    for rep in reps:
        SalesRepProfile.objects.get_or_create(user=rep, defaults={"capacity": 100})

    rng = random.Random(SEED)
    now = timezone.now()
    with transaction.atomic():
        forms = {
            slug: Form.objects.create(
                slug=slug,
                name=name,
                kind=kind,
                channel=channel,
                channel_weight=weight,
                allowed_origins=["http://127.0.0.1:8000", "http://localhost:8000"],
                created_by=marketer,
            )
            for slug, name, kind, channel, weight in FORMS
        }
        targets = [stage for stage, count in PLAN for _ in range(count)]
        rng.shuffle(targets)
        people = _people(rng)
        # Visitors' light engagement is recorded in one set-based batch at the end (it moves no stage).
        later_events: list[dict] = []
        lead_ids = [
            _one_lead(rng, now, target, next(people), forms, marketer=marketer, admin=admin, later_events=later_events)
            for target in targets
        ]
        services.interactions_record_bulk(events=later_events, source="demo")
        _demo_segments(marketer=marketer, lead_ids=lead_ids[:12])
    counts = dict(Lead.objects.filter(pk__in=lead_ids).values_list("stage").annotate(n=Count("id")))
    summary = ", ".join(f"{stage} {counts.get(stage, 0)}" for stage in Stage.values)
    return f"{len(targets)} demo leads over {len(FORMS)} forms ({summary})"


DEMO_SEGMENTS = (
    (
        "Pricing page, twice this month",
        "Leads looking at prices: ready for a sales-style nurture.",
        {
            "match": "all",
            "conditions": [
                {
                    "behaviour": "page_view",
                    "property": "url",
                    "operator": "contains",
                    "value": "/pricing",
                    "at_least": 2,
                    "within_days": 30,
                }
            ],
        },
    ),
    (
        "Senior titles, good fit",
        "",
        {
            "match": "all",
            "conditions": [
                {"field": "title", "operator": "regex", "value": "\\b(vp|head|chief|director)\\b"},
                {"field": "fit_score", "operator": "gte", "value": 40},
            ],
        },
    ),
    ("Never opened an email", "", {"match": "all", "conditions": [{"behaviour": "email_open", "never": True}]}),
)


def _demo_segments(*, marketer, lead_ids: list[int]) -> None:
    """A few saved segments and a static list, so the Segments page shows what they do."""
    for name, description, definition in DEMO_SEGMENTS:
        services.segment_create(
            data={"name": name, "description": description, "definition": definition}, actor=marketer
        )
    booth = services.segment_create(
        data={"name": "Trade show booth", "kind": "static", "description": "Met at the autumn trade show."},
        actor=marketer,
    )
    services.segment_members_add(segment=booth, lead_ids=lead_ids, actor=marketer)


def _one_lead(rng, now, target, person, forms, *, marketer, admin, later_events: list[dict]) -> int:
    first, last, company, email = person
    sales_bound = target not in ("visitor", "disqualified")
    # Older leads went further down the funnel; open MQLs are recent (their SLA clock still runs).
    days_ago = {"mql": rng.uniform(0.2, 4), "visitor": rng.uniform(0.5, 120)}.get(target, rng.uniform(20, 150))
    created = now - timedelta(days=days_ago)
    span = now - created
    step = [created]

    def later(fraction_low: float, fraction_high: float) -> datetime:
        moment = step[-1] + span * rng.uniform(fraction_low, fraction_high)
        moment = min(moment, now - timedelta(minutes=5))
        step.append(moment)
        return moment

    if sales_bound:
        title = rng.choice(TITLES_SENIOR)
    elif target == "disqualified":
        title = rng.choice(TITLES_NEGATIVE + TITLES_OTHER)
    else:
        title = rng.choice(TITLES_SENIOR + TITLES_OTHER + TITLES_OTHER + TITLES_NEGATIVE)
    data = {
        "email": email,
        "first_name": first,
        "last_name": last,
        "title": title,
        "company": company[1],
        "company_size": company[2],
        "industry": company[3],
        "country": company[4],
        "consent": rng.random() < 0.8,
        "utm_source": rng.choice(("google", "linkedin", "newsletter", "partner", "")),
        "utm_medium": rng.choice(("cpc", "social", "email", "")),
        "utm_campaign": rng.choice(("q4-playbook", "scoring-webinar", "brand", "")),
        "page_url": "https://www.leadfunnel.example" + rng.choice(PAGES),
    }
    if rng.random() < 0.5:
        data["phone"] = f"+1 555 {rng.randrange(1000, 9999)}"
    if rng.random() < 0.3:
        data["team_size"] = str(rng.choice((3, 8, 15, 40)))

    with _at(created):
        if target == "pql":
            lead = services.lead_create(
                data={k: v for k, v in data.items() if k not in ("page_url",)},
                source="product-signup",
                channel="product",
                actor=None,
            )
        elif rng.random() < 0.12:
            lead = services.lead_create(data=data, source="tradeshow-2026", channel="event", actor=marketer)
        else:
            slug = "demo-request" if sales_bound and rng.random() < 0.4 else rng.choice(list(forms))
            result = services.lead_submit_form(
                form=forms[slug], data=data, ip=f"203.0.113.{rng.randrange(1, 250)}", user_agent="Mozilla/5.0 (demo)"
            )
            lead = result.lead

    # Engagement before anything else happens.
    events = _events(rng, lead, created, later(0.02, 0.15), strong=sales_bound and target != "pql")
    if target in ("visitor", "disqualified"):
        later_events.extend(events)
        events = []
    if target == "pql":
        events += [
            {"lead": lead.pk, "type": kind, "occurred_at": step[-1].isoformat(), "properties": {"feature": feature}}
            for kind, feature in (
                ("trial_started", "trial"),
                ("product_usage", "scoring"),
                ("product_usage", "sequences"),
            )
        ]
    if events:
        with _at(step[-1]):
            services.interactions_record_bulk(events=events, source="demo")

    def ensure_mql(reason: str) -> None:
        lead.refresh_from_db()
        if lead.stage in (Stage.VISITOR, Stage.RECYCLED, Stage.LOST):
            services.lead_mark_mql(lead=lead, actor=marketer, reason=reason)

    def owner_or_admin():
        lead.refresh_from_db()
        return lead.owner or admin

    if target == "visitor":
        return lead.pk
    if target == "disqualified":
        with _at(later(0.1, 0.4)):
            services.lead_disqualify(lead=lead, actor=marketer, reason_code="spam", reason="Fake details in the form")
        return lead.pk
    if target == "pql":
        lead.refresh_from_db()
        if lead.stage in (Stage.VISITOR, Stage.RECYCLED):
            with _at(step[-1]):
                services.lead_change_stage(
                    lead=lead.pk, to_stage=Stage.PQL, cause="rule", cause_ref="demo:pql", reason="Trial usage"
                )
        return lead.pk

    with _at(step[-1]):
        ensure_mql("Talked at the booth; asked for a call")
    if target == "mql":
        return lead.pk
    if target in ("recycled", "recycled_again"):
        code, text = rng.choice(REJECT_REASONS)
        with _at(later(0.05, 0.2)):
            services.lead_reject(lead=lead, actor=owner_or_admin(), reason_code=code, reason=text)
        if target == "recycled":
            return lead.pk
        with _at(later(0.2, 0.4)):
            services.interactions_record_bulk(
                events=[
                    {
                        "lead": lead.pk,
                        "type": "webinar_attended",
                        "occurred_at": step[-1].isoformat(),
                        "properties": {"webinar": "scoring-webinar", "minutes": 52},
                    },
                    {
                        "lead": lead.pk,
                        "type": "page_view",
                        "occurred_at": step[-1].isoformat(),
                        "properties": {"url": "https://www.leadfunnel.example/pricing"},
                    },
                ],  # fmt: skip
                source="demo",
            )
            ensure_mql("Back after the webinar; budget approved")
    with _at(later(0.02, 0.1)):
        services.lead_accept(lead=lead, actor=owner_or_admin())
    if target in ("sal", "recycled_again"):
        return lead.pk
    with _at(later(0.05, 0.2)):
        services.lead_qualify(
            lead=lead,
            actor=owner_or_admin(),
            buying_cycle=rng.choice(("Replacing spreadsheets this quarter", "Consolidating three tools by Q2")),
            influencer=rng.choice(("Head of Marketing, reports to the CMO", "The CMO herself")),
            timeframe=rng.choice(("30 days", "This quarter", "Next quarter")),
            opportunity_size=rng.choice((6000, 12000, 24000, 48000, 90000)),
            next_step=rng.choice(("Demo with the team", "Security review", "Proposal call")),
            budget=rng.choice((None, 10000, 50000)),
        )
    if target == "sql":
        return lead.pk
    with _at(later(0.1, 0.4)):
        if target == "customer":
            services.lead_close(lead=lead, actor=owner_or_admin(), won=True)
        else:
            code, text = rng.choice(LOST_REASONS)
            services.lead_close(lead=lead, actor=owner_or_admin(), won=False, reason_code=code, reason=text)
    return lead.pk


def _events(rng, lead: Lead, start: datetime, end: datetime, *, strong: bool) -> list[dict]:
    def at() -> str:
        return (start + (end - start) * rng.random()).isoformat()

    events = [
        {"lead": lead.pk, "type": "email_sent", "occurred_at": at(), "properties": {"campaign": "welcome"}},
        {"lead": lead.pk, "type": "page_view", "occurred_at": at(),
         "properties": {"url": "https://www.leadfunnel.example" + rng.choice(PAGES)}},
    ]  # fmt: skip
    for _ in range(rng.randrange(0, 3)):
        events.append(
            {"lead": lead.pk, "type": "email_open", "occurred_at": at(), "properties": {"campaign": "welcome"}}
        )
    if rng.random() < 0.3:
        events.append(
            {"lead": lead.pk, "type": "content_download", "occurred_at": at(), "properties": {"asset": "playbook"}}
        )
    if strong:
        events += [
            {"lead": lead.pk, "type": "page_view", "occurred_at": at(),
             "properties": {"url": "https://www.leadfunnel.example/pricing"}},
            {"lead": lead.pk, "type": "demo_request", "occurred_at": at(), "properties": {}},
            {"lead": lead.pk, "type": "email_click", "occurred_at": at(),
             "properties": {"campaign": "welcome", "url": "https://www.leadfunnel.example/features/scoring"}},
        ]  # fmt: skip
    elif rng.random() < 0.05:
        events.append({"lead": lead.pk, "type": "unsubscribe", "occurred_at": at(), "properties": {}})
    elif rng.random() < 0.03:
        events.append({"lead": lead.pk, "type": "email_bounce", "occurred_at": at(), "properties": {"kind": "hard"}})
    return events
