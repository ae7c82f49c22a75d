"""``{% load conditions %}`` then ``{{ goal|condition_text }}``: a stored condition, readable."""

from django import template

from leadfunnel.widgets import condition_text as _condition_text

register = template.Library()


@register.filter
def condition_text(condition) -> str:
    return _condition_text(condition)
