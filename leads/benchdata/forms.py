"""The forms leads came in through and the submissions they left: the form set is fixed (reused
when a previous run created it), a submission is written for every lead whose first touch was a
form, carrying what that lead typed in.
"""

from datetime import timedelta

from leads.models import Form, FormSubmission

from .pgcopy import Copier
from .run import Run
from .vocabulary import FORMS


def forms_write(run: Run, marketer_id: int) -> dict[str, int]:
    existing = dict(Form.objects.values_list("slug", "id"))
    next_id = max(existing.values(), default=0) + 1
    copier = Copier(
        run.cursor,
        Form,
        ["id", "slug", "name", "kind", "channel", "channel_weight", "created_by_id", "created_at", "updated_at"],
        run.batch_size,
    )
    ids = {}
    for slug, name, kind, channel, weight in FORMS:
        if slug in existing:
            ids[slug] = existing[slug]
            continue
        at = run.now - timedelta(days=400)
        copier.add((next_id, slug, name, kind, channel, weight, marketer_id, at, at))
        ids[slug] = next_id
        next_id += 1
    copier.flush()
    return ids


def submissions_write(run: Run, leads: list[dict], forms: dict[str, int]) -> int:
    rng = run.rng
    copier = Copier(
        run.cursor,
        FormSubmission,
        ["form_id", "lead_id", "payload", "ip", "user_agent", "received_at"],
        run.batch_size,
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
