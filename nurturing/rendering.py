"""Safe message templates: merge fields only, HTML sanitised by nh3, links tracked on send.

Templates know one construct, ``{{ lead.first_name }}`` (optionally
``{{ lead.first_name|default:"there" }}``), and only the merge fields in
:data:`MERGE_FIELDS`. There are no tags, no attribute access beyond the
whitelist and no filters beyond ``default``, so a template cannot read
anything else or run code. Merge values are HTML-escaped in email bodies.

HTML is judged by nh3 (the ammonia sanitiser) with the allow-list below: a body from which
the sanitiser would remove anything (script and friends, ``on*`` attributes, ``javascript:``
URLs, unknown elements) is refused when it is saved, with a message naming what it would
remove, so what a marketer saved is what goes out. Rendering sanitises again (cached per
template), so a row stored before this check still goes out clean.

A body without HTML tags is plain text: blank lines become paragraphs, line breaks ``<br>``,
and every bare http(s) URL a link, tracked like the links of HTML bodies. Its text part keeps
the original URLs (readable and copyable; clicks from text-only mail clients are not counted).
Compiling is cached; rendering is a join.
"""

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from html.parser import HTMLParser
from typing import Any

import nh3

MERGE_FIELDS: dict[str, str] = {
    "lead.first_name": "First name",
    "lead.last_name": "Last name",
    "lead.full_name": "Full name",
    "lead.email": "Email",
    "lead.title": "Title",
    "lead.phone": "Phone",
    "lead.company_name": "Company name as entered",
    "lead.city": "City",
    "lead.country": "Country",
    "lead.industry": "Industry",
    "company.name": "Company name",
    "company.industry": "Company industry",
    "company.city": "Company city",
    "company.country": "Company country",
    "owner.first_name": "Sales rep's first name",
    "owner.full_name": "Sales rep's full name",
    "owner.email": "Sales rep's email",
}

_TAG = re.compile(r"\{\{(.*?)\}\}", re.S)
_FIELD = re.compile(r'^\s*([a-z_]+\.[a-z_]+)\s*(?:\|\s*default\s*:\s*"([^"]*)"\s*)?$')
_HREF = re.compile(r"""(\bhref\s*=\s*)(["'])(.*?)\2""", re.I | re.S)
_ANCHOR = re.compile(r"<a\b[^>]*?\bhref\s*=\s*([\"'])(.*?)\1[^>]*>(.*?)</a\s*>", re.I | re.S)
_BREAKS = re.compile(r"<\s*(br|/p|/div|/h[1-6]|/li|/tr)\b[^>]*>", re.I)
_TAGS = re.compile(r"<[^>]+>")
_SPACES = re.compile(r"[ \t]+")
_BLANK_LINES = re.compile(r"\n\s*\n\s*\n+")

# What the sanitiser keeps: nh3's defaults plus the layout attributes email HTML relies on.
ALLOWED_TAGS = frozenset(nh3.ALLOWED_TAGS)
_LAYOUT = {"align", "valign", "width", "height", "bgcolor", "border", "cellpadding", "cellspacing", "colspan"}
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    **{tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()},
    "*": {"style", "class", "title", "dir", "lang"},
    "a": {"href", "hreflang", "title", "target"},
    "img": {"src", "alt", "width", "height", "align", "border"},
    "table": _LAYOUT | {"summary"},
    "td": _LAYOUT | {"rowspan", "headers"},
    "th": _LAYOUT | {"rowspan", "headers", "scope"},
    "tr": _LAYOUT,
}
URL_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
STYLE_PROPERTIES = frozenset(
    {
        "color",
        "background-color",
        "font-family",
        "font-size",
        "font-style",
        "font-weight",
        "line-height",
        "text-align",
        "text-decoration",
        "text-transform",
        "vertical-align",
        "letter-spacing",
        "white-space",
        "width",
        "max-width",
        "height",
        "display",
        "margin",
        "margin-top",
        "margin-right",
        "margin-bottom",
        "margin-left",
        "padding",
        "padding-top",
        "padding-right",
        "padding-bottom",
        "padding-left",
        "border",
        "border-top",
        "border-right",
        "border-bottom",
        "border-left",
        "border-color",
        "border-radius",
        "border-collapse",
    }
)
URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "background", "xlink:href", "poster", "srcset"})
_HTML_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9-]*(?:\s[^<>]*)?/?>|<!--")
_BARE_URL = re.compile(r"\bhttps?://[^\s<>\"']+", re.I)
_URL_TRAILING = ".,;:!?)]}'\""
TRACKABLE_SCHEMES = ("http://", "https://")


class TemplateError(ValueError):
    """A template a marketer wrote is not acceptable; the message says why."""


@dataclass(frozen=True)
class Compiled:
    parts: tuple  # str | tuple[field, default]
    fields: frozenset[str]

    def render(self, context: dict[str, str], *, escape: bool) -> str:
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            field, default = part
            value = context.get(field) or default
            out.append(html.escape(value) if escape else value)
        return "".join(out)


@lru_cache(maxsize=1024)
def compile_template(source: str) -> Compiled:
    """Parse a template once. Raises TemplateError naming the first problem."""
    if "{%" in source or "{#" in source:
        raise TemplateError(
            "Templates take merge fields like {{ lead.first_name }} only; tags ({% … %}) are not allowed."
        )
    parts: list = []
    fields: set[str] = set()
    pos = 0
    for match in _TAG.finditer(source):
        parts.append(source[pos : match.start()])
        inner = match.group(1)
        parsed = _FIELD.match(inner)
        if not parsed:
            raise TemplateError(
                f"Cannot read the merge field {{{{{inner}}}}}; write it like {{{{ lead.first_name }}}} "
                'or {{ lead.first_name|default:"there" }}.'
            )
        field, default = parsed.group(1), parsed.group(2) or ""
        if field not in MERGE_FIELDS:
            raise TemplateError(
                f"Unknown merge field {{{{ {field} }}}}; available fields: {', '.join(sorted(MERGE_FIELDS))}."
            )
        parts.append((field, default))
        fields.add(field)
        pos = match.end()
    rest = source[pos:]
    if "{{" in rest or "}}" in rest:
        raise TemplateError("A merge field is not closed: every {{ needs a matching }}.")
    parts.append(rest)
    return Compiled(parts=tuple(p for p in parts if p != ""), fields=frozenset(fields))


def is_html(source: str) -> bool:
    """Whether a body is HTML (it has an element or a comment) rather than plain text."""
    return bool(_HTML_TAG.search(source))


_STASHED = re.compile(r"lfmergefield(\d+)x")


@lru_cache(maxsize=1024)
def sanitize_html(source: str) -> str:
    """The HTML nh3 keeps of ``source``. Merge fields pass through untouched: they are set aside
    as plain tokens first, since the sanitiser would re-encode the quotes of a ``default:"…"``
    inside an attribute (and the merged value is escaped when rendered anyway)."""
    fields: list[str] = []

    def stash(match: re.Match) -> str:
        fields.append(match.group(0))
        return f"lfmergefield{len(fields) - 1}x"

    cleaned = _clean(_TAG.sub(stash, source))
    return _STASHED.sub(lambda m: fields[int(m.group(1))] if int(m.group(1)) < len(fields) else m.group(0), cleaned)


def _clean(source: str) -> str:
    return nh3.clean(
        source,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        filter_style_properties=set(STYLE_PROPERTIES),
        link_rel=None,
        strip_comments=True,
    )


class _Elements(HTMLParser):
    """The start tags of a document, in order, with their attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {name: value or "" for name, value in attrs}))

    handle_startendtag = handle_starttag


def _elements(source: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Elements()
    parser.feed(source)
    parser.close()
    return parser.elements


def html_problems(source: str) -> list[str]:
    """What the sanitiser would remove from ``source``, one readable sentence each (empty: safe).

    The sanitiser keeps allowed elements in order (adding some, like ``<tbody>``) and drops the
    others, so each element of the source is matched with the next kept element of its tag;
    one without a match was removed, and a matched one may have lost attributes."""
    kept = _elements(sanitize_html(source))
    problems: list[str] = []
    position = 0
    for tag, attributes in _elements(source):
        match = next((i for i in range(position, len(kept)) if kept[i][0] == tag), None)
        if match is None:
            problems.append(f"<{tag}> elements are not allowed in messages.")
            continue
        position = match + 1
        for name, value in attributes.items():
            if name in kept[match][1]:
                continue
            if name.startswith("on"):
                problems.append(f"Event-handler attributes like {name}= are not allowed (on <{tag}>).")
            elif name in URL_ATTRIBUTES and ":" in value:
                scheme = re.sub(r"[\s\x00-\x1f]", "", value).split(":", 1)[0].lower()
                problems.append(f"{scheme}: URLs are not allowed (in {name}= on <{tag}>).")
            else:
                problems.append(f"The attribute {name}= is not allowed on <{tag}>.")
    return list(dict.fromkeys(problems))


def template_validate(source: str, *, is_html: bool) -> Compiled:
    """Compile a template; for an email body also refuse HTML the sanitiser would change."""
    compiled = compile_template(source)
    if is_html:
        problems = html_problems(source)
        if problems:
            raise TemplateError("Unsafe HTML: " + " ".join(problems))
    return compiled


# --- context ------------------------------------------------------------------


def merge_context(lead: Any) -> dict[str, str]:
    """Merge values for one lead; ``lead.company`` and ``lead.owner`` should be preloaded."""
    company = getattr(lead, "company", None)
    owner = getattr(lead, "owner", None)
    first, last = lead.first_name or "", lead.last_name or ""
    context = {
        "lead.first_name": first,
        "lead.last_name": last,
        "lead.full_name": f"{first} {last}".strip(),
        "lead.email": lead.email or "",
        "lead.title": lead.title or "",
        "lead.phone": lead.phone or "",
        "lead.company_name": lead.company_name or "",
        "lead.city": lead.city or "",
        "lead.country": lead.country or "",
        "lead.industry": lead.industry or "",
        "company.name": (company.name if company else "") or lead.company_name or "",
        "company.industry": (company.industry if company else "") or lead.industry or "",
        "company.city": (company.city if company else "") or lead.city or "",
        "company.country": (company.country if company else "") or lead.country or "",
        "owner.first_name": owner.first_name if owner else "",
        "owner.full_name": owner.get_full_name() if owner else "",
        "owner.email": owner.email if owner else "",
    }
    return context


# --- emails -------------------------------------------------------------------


@dataclass
class RenderedEmail:
    subject: str
    html: str
    text: str
    links: list[str]


def render_email(
    *,
    subject: str,
    body: str,
    context: dict[str, str],
    click_url: Callable[[int], str],
    open_url: str,
    unsubscribe_url: str,
) -> RenderedEmail:
    """Render an email: merge, rewrite every http(s) link to its tracked click URL, add the
    unsubscribe footer and the open pixel. ``links`` keeps the original URLs by index.

    A plain-text body (no HTML tags) becomes paragraphs and line breaks with its bare URLs
    linked; an HTML body goes through the sanitiser first."""
    subject_text = render_subject(subject=subject, context=context)
    links: list[str] = []

    def track(url: str) -> str:
        links.append(url)
        return click_url(len(links) - 1)

    if is_html(body):
        merged = compile_template(sanitize_html(body)).render(context, escape=True)
        tracked = _track_links(merged, track)
        text = html_to_text(tracked, unsubscribe_url)
    else:
        plain = compile_template(body).render(context, escape=False)
        tracked = text_to_html(plain, track)
        text = _text_part(plain, unsubscribe_url)
    footer = (
        '<p style="font-size:12px;color:#666">You receive this email because you are in touch with us. '
        f'<a href="{html.escape(unsubscribe_url)}">Unsubscribe</a>.</p>'
    )
    pixel = f'<img src="{html.escape(open_url)}" width="1" height="1" alt="" style="display:none">'
    html_body = f"{tracked}\n{footer}\n{pixel}"
    return RenderedEmail(subject=subject_text, html=html_body, text=text, links=links)


def render_subject(*, subject: str, context: dict[str, str]) -> str:
    return compile_template(subject).render(context, escape=False).replace("\n", " ").strip()


def _track_links(merged: str, track: Callable[[str], str]) -> str:
    def rewrite(match: re.Match) -> str:
        url = html.unescape(match.group(3)).strip()
        lowered = url.lower()
        if lowered.startswith(TRACKABLE_SCHEMES):
            return f"{match.group(1)}{match.group(2)}{html.escape(track(url))}{match.group(2)}"
        if lowered.startswith(("mailto:", "tel:", "#")):
            return match.group(0)
        # Anything else (a merge value that is not a web address, say) is neutralised.
        return f"{match.group(1)}{match.group(2)}#{match.group(2)}"

    return _HREF.sub(rewrite, merged)


def _split_url(raw: str) -> tuple[str, str]:
    """A bare URL without the punctuation that ends the sentence around it."""
    url = raw.rstrip(_URL_TRAILING)
    # Keep a closing parenthesis that belongs to the URL (…/Lead_(marketing)).
    while raw[len(url) : len(url) + 1] == ")" and url.count("(") > url.count(")"):
        url += ")"
    return url, raw[len(url) :]


def text_to_html(text: str, track: Callable[[str], str]) -> str:
    """Plain text → HTML: escaped, blank lines → paragraphs, newlines → ``<br>``, bare http(s)
    URLs → links whose href ``track`` gives (the tracked click URL)."""

    def line_html(line: str) -> str:
        out, pos = [], 0
        for match in _BARE_URL.finditer(line):
            url, trailing = _split_url(match.group(0))
            out.append(html.escape(line[pos : match.start()]))
            out.append(f'<a href="{html.escape(track(url))}">{html.escape(url)}</a>{html.escape(trailing)}')
            pos = match.end()
        out.append(html.escape(line[pos:]))
        return "".join(out)

    paragraphs = re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip())
    return "\n".join(
        "<p>" + "<br>\n".join(line_html(line) for line in paragraph.split("\n")) + "</p>"
        for paragraph in paragraphs
        if paragraph.strip()
    )


def _text_part(text: str, unsubscribe_url: str) -> str:
    text = _BLANK_LINES.sub("\n\n", "\n".join(line.rstrip() for line in text.strip().splitlines()))
    return f"{text}\n\n--\nUnsubscribe: {unsubscribe_url}\n"


def html_to_text(source: str, unsubscribe_url: str) -> str:
    text = _ANCHOR.sub(lambda m: f"{_TAGS.sub('', m.group(3)).strip()} <{html.unescape(m.group(2))}>", source)
    text = _BREAKS.sub("\n", text)
    text = html.unescape(_TAGS.sub("", text))
    text = _SPACES.sub(" ", text)
    text = _BLANK_LINES.sub("\n\n", "\n".join(line.strip() for line in text.splitlines())).strip()
    return f"{text}\n\n--\nUnsubscribe: {unsubscribe_url}\n"


def render_sms(*, body: str, context: dict[str, str]) -> str:
    return compile_template(body).render(context, escape=False).strip()
