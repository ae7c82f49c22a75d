"""Small builders shared by the nurturing tests."""

from django.core import mail

from nurturing import services
from nurturing.models import Sequence

WELCOME_STEPS = [
    {
        "kind": "email",
        "subject": "Welcome, {{ lead.first_name }}",
        "body": '<p>Hi {{ lead.first_name|default:"there" }} from {{ company.name }}!</p>'
        '<p><a href="https://leadfunnel.example/guide">Read the guide</a></p>',
    },
    {"kind": "wait", "days": 2},
    {
        "kind": "email",
        "subject": "Pricing for {{ company.name }}",
        "body": '<p>See <a href="https://leadfunnel.example/pricing?src=nurture&amp;x=1">pricing</a>.</p>',
    },
]


def make_sequence(*, steps=None, actor=None, **fields) -> Sequence:
    data = {"name": fields.pop("name", "Welcome"), "steps": WELCOME_STEPS if steps is None else steps, **fields}
    return services.sequence_create(data=data, actor=actor)


def sent_to(address: str) -> list:
    return [m for m in mail.outbox if address in m.to]
