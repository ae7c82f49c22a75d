"""Website tracking, the pure part: what a page view from ``static/js/lf-track.js`` may look like,
which callers are bots, which origins a site accepts, and the signed link that identifies a
visitor who follows a tracked email link. No ORM here; the writes are in
:mod:`leads.services.tracking`.
"""

import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.core import signing

from leadfunnel.errors import ValidationFailed

# A page view body is a few hundred bytes; anything near this is not our script.
MAX_BODY_BYTES = 8 * 1024
URL_MAX = 2000
TITLE_MAX = 300
UTM_MAX = 200
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
# The script's visitor id: 32 hex characters from crypto.getRandomValues; we accept a little more.
VISITOR_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
SITE_KEY = re.compile(r"^[A-Za-z0-9_-]{8,40}$")
# The query parameter a tracked email link adds to a tracked site's URL (see identify_link).
IDENTIFY_PARAM = "lf_id"
IDENTIFY_SALT = "leadfunnel.leads.tracking.identify"
IDENTIFY_MAX_AGE_SECONDS = 30 * 24 * 3600

# User agents of crawlers, link previews, monitors, headless browsers and HTTP libraries. A page
# view from one is answered 204 and dropped: nothing tells the bot it was recognised.
BOT_USER_AGENT = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|scrape|headless|phantomjs|puppeteer|playwright|selenium|lighthouse"
    r"|pingdom|uptime|monitor|statuscake|facebookexternalhit|embedly|bingpreview|preview|whatsapp"
    r"|python-|python/|curl/|wget/|httpclient|java/|go-http|okhttp|axios|node-fetch|undici|libwww|perl"
    r"|ruby|scrapy|feedfetcher|mediapartners|apis-google|google-read-aloud",
    re.IGNORECASE,
)


def is_bot(user_agent: str) -> bool:
    """True for a missing user agent or one matching :data:`BOT_USER_AGENT`."""
    user_agent = (user_agent or "").strip()
    return not user_agent or bool(BOT_USER_AGENT.search(user_agent))


def new_site_key() -> str:
    """A public site key: unguessable enough that a typo never hits another site."""
    return "lf_" + secrets.token_urlsafe(15)


def normalise_origin(value: str) -> str:
    return value.strip().rstrip("/").lower()


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of an http(s) URL, lower-cased; "" for anything else."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return ""
    return f"{parts.scheme}://{parts.netloc}".lower()


def clean_origins(value: Any) -> list[str]:
    """A site's allowed origins: a non-empty list of ``scheme://host[:port]`` (no ``*``: the page
    URL of every view must belong to the site). Raises ValueError with a message."""
    if not isinstance(value, list) or not value:
        raise ValueError("A list of one or more origins such as https://www.example.com.")
    cleaned: list[str] = []
    for origin in value:
        if not isinstance(origin, str):
            raise ValueError("Each origin must be a string.")
        origin = normalise_origin(origin)
        if origin_of(origin) != origin or len(origin) > 300:
            raise ValueError(f"{origin!r} is not an origin (http(s)://host[:port], no path).")
        if origin not in cleaned:
            cleaned.append(origin)
    if len(cleaned) > 50:
        raise ValueError("At most 50 origins per site.")
    return cleaned


@dataclass
class PageView:
    """One cleaned page view as the script sends it."""

    site_key: str
    visitor: str
    url: str
    title: str = ""
    referrer: str = ""
    utm: dict[str, str] = field(default_factory=dict)
    identify: str = ""

    def properties(self) -> dict[str, Any]:
        """The ``page_view`` interaction's properties (the default pricing rule reads ``url``)."""
        return {
            "url": self.url,
            "path": urlsplit(self.url).path or "/",
            "title": self.title,
            "referrer": self.referrer,
            **self.utm,
            "site": self.site_key,
            "visitor": self.visitor,
        }


def _text(data: dict, name: str, *, limit: int, required: bool = False, truncate: bool = False) -> str:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise ValidationFailed(f"{name}: This field is required.", fields={name: ["This field is required."]})
        return ""
    if not isinstance(value, str):
        raise ValidationFailed(f"{name}: Must be text.", fields={name: ["Must be text."]})
    value = value.replace("\x00", "").strip()
    if len(value) > limit:
        if truncate:
            return value[:limit]
        message = f"At most {limit} characters (got {len(value)})."
        raise ValidationFailed(f"{name}: {message}", fields={name: [message]})
    return value


def site_key_clean(data: dict) -> str:
    key = _text(data, "key", limit=40, required=True)
    if not SITE_KEY.match(key):
        raise ValidationFailed("key: Not a site key.", fields={"key": ["Not a site key."]})
    return key


def pageview_clean(data: dict, *, site_key: str, allowed_origins: list[str]) -> PageView:
    """Validate the rest of a page view for its site; ValidationFailed names the bad field."""
    visitor = _text(data, "visitor", limit=64, required=True)
    if not VISITOR_ID.match(visitor):
        raise ValidationFailed("visitor: Not a visitor id.", fields={"visitor": ["Not a visitor id."]})
    url = _text(data, "url", limit=URL_MAX, required=True)
    origin = origin_of(url)
    if not origin:
        raise ValidationFailed("url: Must be an http(s) URL.", fields={"url": ["Must be an http(s) URL."]})
    if origin not in allowed_origins:
        message = f"{origin} is not one of this site's origins."
        raise ValidationFailed(f"url: {message}", fields={"url": [message]})
    referrer = _text(data, "referrer", limit=URL_MAX)
    if referrer and not origin_of(referrer):
        referrer = ""  # android-app:// and the like: not a web page, not worth a refusal
    utm_data = data.get("utm")
    if utm_data is None:
        utm_data = dict(parse_qsl(urlsplit(url).query))
    if not isinstance(utm_data, dict):
        raise ValidationFailed("utm: Must be an object.", fields={"utm": ["Must be an object."]})
    utm = {key: _text(utm_data, key, limit=UTM_MAX) for key in UTM_KEYS}
    return PageView(
        site_key=site_key,
        visitor=visitor,
        url=url,
        title=_text(data, "title", limit=TITLE_MAX, truncate=True),
        referrer=referrer,
        utm={key: value for key, value in utm.items() if value},
        identify=_text(data, "identify", limit=300),
    )


# --- identification by a tracked email link ----------------------------------------------------


def identify_token(lead_id: int) -> str:
    return signing.TimestampSigner(salt=IDENTIFY_SALT).sign(str(lead_id))


def identify_token_parse(token: str) -> int | None:
    """The lead id of a token we signed in the last 30 days; None for anything else."""
    try:
        value = signing.TimestampSigner(salt=IDENTIFY_SALT).unsign(token, max_age=IDENTIFY_MAX_AGE_SECONDS)
    except signing.BadSignature:
        return None
    return int(value) if value.isdigit() else None


def identify_link(url: str, *, lead_id: int, origins: set[str]) -> str:
    """``url`` with the lead's identify token added when it points at one of ``origins`` (a tracked
    site, whose script reads it); any other URL is returned unchanged so no token leaves for a
    site that is not ours."""
    if origin_of(url) not in origins:
        return url
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != IDENTIFY_PARAM]
    query.append((IDENTIFY_PARAM, identify_token(lead_id)))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def script_url() -> str:
    """Where websites load the script from: our static files, at a stable (unhashed) name."""
    from_settings = f"{settings.SITE_URL}{settings.STATIC_URL}"
    return f"{from_settings.rstrip('/')}/js/lf-track.js"


def site_snippet(site_key: str) -> str:
    """The two lines a marketer pastes into every page of a tracked site (before ``</head>``)."""
    return (
        "<script>window.lfTrack=window.lfTrack||function(){(lfTrack.q=lfTrack.q||[]).push(arguments)};</script>\n"
        f'<script async src="{script_url()}" data-site="{site_key}"></script>'
    )
