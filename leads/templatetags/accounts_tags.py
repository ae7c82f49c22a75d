"""The lead page's accounts card: its company (linked to the company page), its tags (editable
by marketers) and the "Merge a duplicate" button. No query: the lead carries all of it."""

from django import template

from leadfunnel.roles import is_marketer

register = template.Library()


@register.inclusion_tag("leads/_lead_accounts_panel.html", takes_context=True)
def lead_accounts_panel(context, lead) -> dict:
    request = context.get("request")
    return {
        "lead": lead,
        "can_edit": is_marketer(getattr(request, "user", None)),
        "csrf_token": context.get("csrf_token"),
        "next": request.get_full_path() if request is not None else "",
    }
