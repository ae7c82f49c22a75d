"""Interactions, the bulk of the data set: spread over the interaction types, over time and over
leads (a few very active leads, a long tail of quiet ones), with the properties the scoring rules
look at. They are streamed, so a million of them never sit in memory at once.
"""

import random
from datetime import timedelta

from leads.models import Interaction

from .pgcopy import Copier
from .run import Run
from .vocabulary import ASSETS, CAMPAIGNS, EVENTS, FEATURES, INTERACTION_TYPES, PAGES, SITE, WEBINARS, weighted


def interactions_write(run: Run, leads: list[dict], total: int) -> int:
    """Stream interactions: a form_submit for each lead that came through a form, the rest spread."""
    rng = run.rng
    copier = Copier(
        run.cursor,
        Interaction,
        ["lead_id", "type", "occurred_at", "received_at", "properties", "source"],
        run.batch_size,
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
    types, type_cum = weighted(INTERACTION_TYPES)
    pages, page_cum = weighted(PAGES)
    now = run.now
    chunk = 100_000
    while remaining > 0:
        k = min(chunk, remaining)
        picks = rng.choices(range(len(leads)), cum_weights=cum, k=k)
        kinds = rng.choices(types, cum_weights=type_cum, k=k)
        for index, kind in zip(picks, kinds, strict=True):
            lead = leads[index]
            span = (now - lead["created_at"]).total_seconds()
            at = lead["created_at"] + timedelta(seconds=span * rng.random() ** 0.7)
            properties, source = _properties(kind, rng, pages, page_cum)
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
