"""Parsing and normalising what web forms and integrations send us. Pure Python, no ORM.

The public intake accepts anything a browser or a backend may post; this module
turns it into a clean :class:`ParsedSubmission` (or a :class:`ValidationFailed`
naming every bad field) before any row is touched.
"""

import functools
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email

from leadfunnel.errors import ValidationFailed
from leadfunnel.validation import InvalidInput, parse_datetime
from scoring.defaults import FREE_MAIL_DOMAINS as SCORING_FREE_MAIL_DOMAINS

# Profile fields a form may fill, with the longest value each column stores.
PROFILE_FIELDS: dict[str, int] = {
    "first_name": 100,
    "last_name": 100,
    "title": 150,
    "phone": 40,
    "company_name": 200,
    "company_size": 20,
    "industry": 100,
    "country": 100,
    "city": 100,
    "linkedin": 200,
    "twitter": 100,
}
# Form field names accepted as aliases of a profile field.
ALIASES = {"company": "company_name", "job_title": "title", "firstname": "first_name", "lastname": "last_name"}
FIRST_TOUCH_FIELDS: dict[str, int] = {"utm_source": 200, "utm_medium": 200, "utm_campaign": 200}
PAGE_URL_MAX = 2000
# Never taken from a caller: the funnel, the scores and the owner belong to LeadFunnel.
PROTECTED_FIELDS = frozenset(
    {
        "id",
        "lead",
        "lead_id",
        "stage",
        "score",
        "fit_score",
        "engagement_score",
        "fit_points",
        "engagement_points",
        "predicted_probability",
        "mql_blocked",
        "owner",
        "owner_id",
        "cycle",
        "sla_due_at",
        "stage_changed_at",
        "assigned_at",
        "created_at",
        "updated_at",
        "source",
        "channel",
        "custom_fields",
        "tags",
        "unsubscribed_at",
        "email_bounced_at",
        "consent_at",
        "consent_source",
    }
)
# Browser plumbing that is never lead data.
IGNORED_FIELDS = frozenset({"csrfmiddlewaretoken", "g-recaptcha-response", "h-captcha-response", "submit"})
# Filled by the tracking script (static/js/lf-track.js): who this browser was before the form.
TRACKING_FIELDS = frozenset({"lf_visitor", "lf_site"})

MAX_CUSTOM_FIELDS = 50
MAX_CUSTOM_KEY_LENGTH = 64
MAX_CUSTOM_VALUE_LENGTH = 2000
# A lead keeps at most this many custom keys in total; later ones stay in the raw submission only.
MAX_CUSTOM_FIELDS_PER_LEAD = 200

TRUE_VALUES = frozenset({"1", "true", "yes", "on", "y", "checked", "accepted"})
FALSE_VALUES = frozenset({"", "0", "false", "no", "off", "n"})

# Free-mail providers: a lead with one of these domains is not linked to a company by domain.
# The scoring app may keep the authoritative list (its "free-mail down" rule); we use it when present.
FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "yahoo.co.uk",
        "yahoo.fr",
        "ymail.com",
        "hotmail.com",
        "hotmail.co.uk",
        "hotmail.fr",
        "outlook.com",
        "live.com",
        "msn.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.com",
        "mail.ru",
        "yandex.ru",
        "yandex.com",
        "proton.me",
        "protonmail.com",
        "zoho.com",
        "qq.com",
        "163.com",
        "126.com",
        "free.fr",
        "orange.fr",
        "t-online.de",
        "libero.it",
        "seznam.cz",
        "naver.com",
        "rediffmail.com",
        "fastmail.com",
        "hey.com",
        "tutanota.com",
    }
)


@functools.cache
def free_mail_domains() -> frozenset[str]:
    return frozenset(SCORING_FREE_MAIL_DOMAINS) | FREE_MAIL_DOMAINS


def email_domain(email: str) -> str:
    return email.rpartition("@")[2].lower()


def is_business_domain(domain: str) -> bool:
    return bool(domain) and domain not in free_mail_domains() and "." in domain


def company_name_from_domain(domain: str) -> str:
    """'north-wind.co.uk' -> 'North Wind' (a placeholder until someone types the real name)."""
    label = domain.split(".")[0] if domain else ""
    return label.replace("-", " ").replace("_", " ").title()[:200] or domain[:200]


def is_valid_email(email: str) -> bool:
    """Django's validator, plus internationalised local parts (``çağla@firma.example``, RFC 6531)."""
    try:
        validate_email(email)
        return True
    except DjangoValidationError:
        pass
    local, at, domain = email.rpartition("@")
    if not at or not local or len(local) > 64 or local.isascii():
        return False
    if any(ch.isspace() or ord(ch) < 32 or ch in '"(),:;<>[]\\@' for ch in local):
        return False
    try:
        validate_email(f"x@{domain}")
    except DjangoValidationError:
        return False
    return True


def normalise_email(value: Any) -> str:
    """Trim and lower-case an address, or raise ValidationFailed with a field message."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValidationFailed("email: This field is required.", fields={"email": ["This field is required."]})
    if not isinstance(value, str):
        raise ValidationFailed("email: Enter a valid email address.", fields={"email": ["Must be a string."]})
    email = value.strip().lower()
    if not is_valid_email(email):
        raise ValidationFailed(
            "email: Enter a valid email address.", fields={"email": ["Enter a valid email address."]}
        )
    if len(email) > 254:
        raise ValidationFailed("email: The address is too long.", fields={"email": ["At most 254 characters."]})
    return email


def clean_text(value: Any) -> str:
    """Scalars become trimmed strings; NUL characters (which PostgreSQL cannot store) go."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list) and len(value) == 1:
        return clean_text(value[0])
    if not isinstance(value, str):
        raise TypeError("not text")
    return value.replace("\x00", "").strip()


def scrub(value: Any) -> Any:
    """A JSON-safe copy for storage: no NUL characters (PostgreSQL's jsonb refuses them), no NaN."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {scrub(str(k)): scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def parse_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    if isinstance(value, list) and value:
        return parse_bool(value[-1])
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in TRUE_VALUES:
            return True
        if lowered in FALSE_VALUES:
            return False
    return None


@dataclass
class ParsedSubmission:
    email: str
    profile: dict[str, str] = field(default_factory=dict)
    first_touch: dict[str, str] = field(default_factory=dict)
    page_url: str = ""
    consent: bool | None = None
    custom: dict[str, Any] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    # The tracking script's visitor id and site key, when the page runs it (never lead data).
    visitor: str = ""
    site_key: str = ""


def parse_submission(data: dict[str, Any], *, honeypot_field: str = "") -> ParsedSubmission:
    """Split a form payload into profile, first-touch, consent and custom fields; validate all of it.

    Protected fields (stage, score, owner, …) are dropped, never applied. Raises
    ValidationFailed naming every bad field at once.
    """
    errors: dict[str, list[str]] = {}
    email = ""
    email_key = "email" if "email" in data else next((k for k in data if str(k).strip().lower() == "email"), "email")
    try:
        email = normalise_email(data.get(email_key))
    except ValidationFailed as exc:
        errors.update(exc.fields)

    parsed = ParsedSubmission(email=email)
    custom: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = str(raw_key).strip()
        if raw_key == email_key or key in IGNORED_FIELDS or (honeypot_field and key == honeypot_field):
            continue
        name = ALIASES.get(key.lower(), key.lower())
        if name in TRACKING_FIELDS:
            # Malformed ids are dropped: a tracking hiccup must not cost the lead.
            text = value.replace("\x00", "").strip()[:64] if isinstance(value, str) else ""
            setattr(parsed, "visitor" if name == "lf_visitor" else "site_key", text)
            continue
        if name in PROTECTED_FIELDS:
            parsed.ignored.append(key)
            continue
        if name in PROFILE_FIELDS or name in FIRST_TOUCH_FIELDS or name == "page_url":
            limit = PROFILE_FIELDS.get(name) or FIRST_TOUCH_FIELDS.get(name) or PAGE_URL_MAX
            try:
                text = clean_text(value)
            except TypeError:
                errors[key] = ["Must be text, not a list or an object."]
                continue
            if len(text) > limit:
                errors[key] = [f"At most {limit} characters (got {len(text)})."]
                continue
            if not text:
                continue
            if name in PROFILE_FIELDS:
                parsed.profile[name] = text
            elif name == "page_url":
                parsed.page_url = text
            else:
                parsed.first_touch[name] = text
            continue
        if name == "consent":
            consent = parse_bool(value)
            if consent is None:
                errors[key] = ["Must be true or false."]
            else:
                parsed.consent = consent
            continue
        # Anything else is the form's own question: kept on the lead as custom data.
        if not key:
            continue
        if len(key) > MAX_CUSTOM_KEY_LENGTH:
            errors[key[:MAX_CUSTOM_KEY_LENGTH] + "…"] = [f"Field names are at most {MAX_CUSTOM_KEY_LENGTH} characters."]
            continue
        value = scrub(value)
        size = len(value) if isinstance(value, str) else len(json.dumps(value, ensure_ascii=False))
        if size > MAX_CUSTOM_VALUE_LENGTH:
            errors[key] = [f"At most {MAX_CUSTOM_VALUE_LENGTH} characters (got {size})."]
            continue
        custom[key] = value.strip() if isinstance(value, str) else value
    if len(custom) > MAX_CUSTOM_FIELDS:
        errors["custom_fields"] = [f"At most {MAX_CUSTOM_FIELDS} extra fields per submission (got {len(custom)})."]
    if errors:
        first_key = next(iter(errors))
        raise ValidationFailed(f"{first_key}: {errors[first_key][0]}", fields=errors)
    parsed.custom = custom
    return parsed


MAX_TAG_LENGTH = 50
MAX_TAGS_PER_LEAD = 50


def normalise_tag(value: Any, *, field_name: str = "tag") -> str:
    """One tag as stored: trimmed, inner whitespace collapsed, lower-cased, 1 to 50 characters.
    Raises ValidationFailed naming ``field_name``."""
    if not isinstance(value, str):
        raise ValidationFailed(f"{field_name}: A tag must be text.", fields={field_name: ["A tag must be text."]})
    tag = " ".join(value.replace("\x00", "").split()).lower()
    if not tag:
        raise ValidationFailed(f"{field_name}: A tag cannot be blank.", fields={field_name: ["A tag cannot be blank."]})
    if len(tag) > MAX_TAG_LENGTH:
        message = f"A tag is at most {MAX_TAG_LENGTH} characters (got {len(tag)})."
        raise ValidationFailed(f"{field_name}: {message}", fields={field_name: [message]})
    return tag


def normalise_tags(value: Any, *, field_name: str = "tags") -> list[str]:
    """A list of tags as stored: each normalised (:func:`normalise_tag`), unique, sorted, at most 50."""
    if not isinstance(value, list):
        raise ValidationFailed(
            f"{field_name}: Must be a list of tags.", fields={field_name: ["Must be a list of tags."]}
        )
    tags = sorted({normalise_tag(item, field_name=field_name) for item in value})
    if len(tags) > MAX_TAGS_PER_LEAD:
        message = f"At most {MAX_TAGS_PER_LEAD} tags per lead."
        raise ValidationFailed(f"{field_name}: {message}", fields={field_name: [message]})
    return tags


def parse_datetime_value(value: Any, *, field_name: str = "occurred_at") -> datetime:
    """ISO 8601 (with 'Z' or an offset; naive means UTC) or a Unix timestamp in seconds, as UTC;
    ValueError ("field: message") for anything the database could not store."""
    try:
        return parse_datetime(value, field=field_name)
    except InvalidInput as exc:
        raise ValueError(exc.message) from None
