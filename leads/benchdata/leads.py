"""The leads themselves: planned in memory first (the other loaders fill in their histories,
activity and flags), written last with scores that agree with their stage until the scoring
engine's full recompute replaces them.
"""

import math
import unicodedata
from datetime import timedelta

from leads.models import Lead

from .pgcopy import Copier
from .run import Run
from .vocabulary import (
    FIRST_NAMES,
    FORMS,
    FREE_MAIL,
    LAST_NAMES,
    PAGES,
    PLACES,
    SITE,
    SOURCES,
    STAGES,
    TIME_ZONES,
    TITLES,
    UNICODE_FIRST_NAMES,
    weighted,
)


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower() or "x"


def leads_plan(run: Run, n: int, companies, forms: dict[str, int]) -> list[dict]:
    rng = run.rng
    titles, title_cum = weighted(TITLES)
    stages, stage_cum = weighted(STAGES)
    sources, source_cum = weighted([(s[:2], s[2]) for s in SOURCES])
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
        created = run.now - timedelta(days=age_days, seconds=rng.randrange(86400))
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


def leads_write(run: Run, leads: list[dict]) -> None:
    rng = run.rng
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
        "consent_status",
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
    copier = Copier(run.cursor, Lead, columns, run.batch_size)
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
                "opt_in" if lead["consent"] else "none",
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
                run.now,
                run.now,
                lead["last_activity_at"],
                lead["created_at"],
                lead["stage_changed_at"],
            )
        )
    copier.flush()
