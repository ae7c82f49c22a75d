"""Small helpers every dashboard page of the leads app (and nurturing's pages) shares: htmx
detection, the safe ``next`` redirect, a form's errors as one message line, and a score
contribution as a table row — so they behave the same on every page."""

from collections.abc import Mapping

from django import forms
from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

# role_required (login page for anonymous callers, 403 without the role) lives in leadfunnel.roles.


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def safe_next(request: HttpRequest, default: str) -> str:
    """The ``next`` URL the form carries, if it points back at this site; else ``default``."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default


def place_field_errors(
    form: forms.Form, fields: Mapping | None, *, message: str = "", renames: Mapping[str, str] | None = None
) -> None:
    """Errors by field (a serializer's, or a ``DomainError``'s ``fields``) on the page's form: each
    on its field (``renames`` maps the API's name to the page's), at the top when the page has no
    such field; ``message`` at the top when there were none by field."""
    placed = False
    for name, problems in (fields or {}).items():
        target = (renames or {}).get(name, name)
        text = " ".join(str(p) for p in problems) if isinstance(problems, (list, tuple)) else str(problems)
        form.add_error(target if target in form.fields else None, text)
        placed = True
    if not placed and message:
        form.add_error(None, message)


def form_error_text(form) -> str:
    """A form's errors as one message line, each prefixed with its field's label."""
    parts = []
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields and form.fields[name].label else name
        prefix = "" if name == "__all__" else f"{str(label).replace('_', ' ').capitalize()}: "
        parts.append(prefix + " ".join(errors))
    return " ".join(parts)


def _contribution_row(contribution) -> dict:
    def get(name, default=None):
        if isinstance(contribution, dict):
            return contribution.get(name, default)
        return getattr(contribution, name, default)

    rule = get("rule")
    return {
        "rule": get("rule_name") or get("name") or getattr(rule, "name", None) or rule or "",
        "dimension": get("dimension", ""),
        "points": get("current_points", get("points", 0)),
        "awarded": get("points", 0),
        "reason": get("reason", ""),
        "at": get("at"),
    }
