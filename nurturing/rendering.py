"""Safe message templates: merge fields only, HTML checked on save, links tracked on send.

Templates know one construct, ``{{ lead.first_name }}`` (optionally
``{{ lead.first_name|default:"there" }}``), and only the merge fields in
:data:`MERGE_FIELDS`. There are no tags, no attribute access beyond the
whitelist and no filters beyond ``default``, so a template cannot read
anything else or run code. Merge values are HTML-escaped in email bodies.
Unsafe HTML (script and friends, ``on*`` attributes, ``javascript:`` URLs) is
rejected when the sequence is saved. Compiling is cached; rendering is a join.
"""

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from html.parser import HTMLParser
from typing import Any

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

UNSAFE_TAGS = frozenset(
    {"script", "iframe", "frame", "frameset", "object", "embed", "applet", "form", "input", "button", "base", "meta"}
)
URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "background", "xlink:href", "poster", "srcset"})
UNSAFE_SCHEMES = ("javascript:", "vbscript:", "data:text", "data:application")
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


class _SafetyChecker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in UNSAFE_TAGS:
            self.problems.append(f"<{tag}> elements are not allowed in messages.")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"Event-handler attributes like {name}= are not allowed (on <{tag}>).")
            elif name in URL_ATTRIBUTES and value:
                compact = re.sub(r"[\s\x00-\x1f]", "", html.unescape(value)).lower()
                if compact.startswith(UNSAFE_SCHEMES):
                    self.problems.append(f"{compact.split(':', 1)[0]}: URLs are not allowed (in {name}= on <{tag}>).")
            elif name == "style" and value and ("expression(" in value.lower() or "javascript:" in value.lower()):
                self.problems.append(f"Scripted styles are not allowed (on <{tag}>).")

    handle_startendtag = handle_starttag


def html_problems(source: str) -> list[str]:
    checker = _SafetyChecker()
    checker.feed(source)
    checker.close()
    return list(dict.fromkeys(checker.problems))


def template_validate(source: str, *, is_html: bool) -> Compiled:
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
    unsubscribe footer and the open pixel. ``links`` keeps the original URLs by index."""
    subject_text = compile_template(subject).render(context, escape=False).replace("\n", " ").strip()
    merged = compile_template(body).render(context, escape=True)
    links: list[str] = []

    def rewrite(match: re.Match) -> str:
        url = html.unescape(match.group(3)).strip()
        lowered = url.lower()
        if lowered.startswith(TRACKABLE_SCHEMES):
            links.append(url)
            return f"{match.group(1)}{match.group(2)}{html.escape(click_url(len(links) - 1))}{match.group(2)}"
        if lowered.startswith(("mailto:", "tel:", "#")):
            return match.group(0)
        # Anything else (a merge value that is not a web address, say) is neutralised.
        return f"{match.group(1)}{match.group(2)}#{match.group(2)}"

    tracked = _HREF.sub(rewrite, merged)
    footer = (
        '<p style="font-size:12px;color:#666">You receive this email because you are in touch with us. '
        f'<a href="{html.escape(unsubscribe_url)}">Unsubscribe</a>.</p>'
    )
    pixel = f'<img src="{html.escape(open_url)}" width="1" height="1" alt="" style="display:none">'
    html_body = f"{tracked}\n{footer}\n{pixel}"
    return RenderedEmail(subject=subject_text, html=html_body, text=html_to_text(tracked, unsubscribe_url), links=links)


def html_to_text(source: str, unsubscribe_url: str) -> str:
    text = _ANCHOR.sub(lambda m: f"{_TAGS.sub('', m.group(3)).strip()} <{html.unescape(m.group(2))}>", source)
    text = _BREAKS.sub("\n", text)
    text = html.unescape(_TAGS.sub("", text))
    text = _SPACES.sub(" ", text)
    text = _BLANK_LINES.sub("\n\n", "\n".join(line.strip() for line in text.splitlines())).strip()
    return f"{text}\n\n--\nUnsubscribe: {unsubscribe_url}\n"


def render_sms(*, body: str, context: dict[str, str]) -> str:
    return compile_template(body).render(context, escape=False).strip()
