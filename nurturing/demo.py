"""Demo sequences: welcome for new visitors, re-nurture for recycled leads, trial-to-paid for PQLs,
with enrolments in progress, and a few saved email templates. Idempotent: existing sequences and
templates (by name) are left alone."""

from django.core.mail import get_connection
from django.test.utils import override_settings

from leads.models import Form, Lead, Stage

from . import services
from .models import EmailTemplate, Enrollment, Message, Sequence

SITE = "https://leadfunnel.example"

SEQUENCES = [
    {
        "name": "Welcome: new visitors",
        "description": "Value first: the playbook, a customer story, then an invitation to talk.",
        "enroll_on": {"kind": "form_submitted", "form": "demo-ebook"},
        "stop_on_handoff": True,
        "reenroll": "never",
        "goals": [{"interaction_type": "demo_request"}, {"stage": "mql"}],
        "steps": [
            {
                "kind": "email",
                "subject": "Your playbook, {{ lead.first_name }}",
                "body": '<p>Hi {{ lead.first_name|default:"there" }},</p>'
                f'<p>Here is <a href="{SITE}/playbook.pdf">The B2B funnel playbook</a>. '
                "Chapter 3 is the one teams like {{ company.name }} read first.</p>",
            },
            {"kind": "wait", "days": 3},
            {
                "kind": "branch",
                "condition": {"interaction_type": "email_click"},
                "goto": 6,
            },
            {
                "kind": "email",
                "subject": "How Initech halved its time to first call",
                "body": f'<p>A 4-minute read: <a href="{SITE}/customers/initech">the Initech story</a>.</p>',
            },
            {"kind": "wait", "days": 4},
            {
                "kind": "email",
                "subject": "Worth a 20-minute call?",
                "body": "<p>{{ lead.first_name }}, would a short walkthrough help "
                f'{{{{ company.name }}}}? <a href="{SITE}/demo">Pick a time</a>.</p>',
            },
            {"kind": "action", "action": "tag", "add": ["welcome-done"]},
        ],
    },
    {
        "name": "Re-nurture: recycled leads",
        "description": "Sales said not now: stay useful for a quarter, then ask again.",
        "enroll_on": {"kind": "stage_entered", "stage": "recycled"},
        "stop_on_handoff": True,
        "reenroll": "after_exit",
        "send_window_start": "08:00",
        "send_window_end": "18:00",
        "send_days": [0, 1, 2, 3, 4],
        "goals": [{"interaction_type": "page_view", "property": "url", "operator": "contains", "value": "/pricing"}],
        "steps": [
            {"kind": "wait", "days": 14},
            {
                "kind": "email",
                "subject": "What changed in lead scoring this quarter",
                "body": f'<p>Three changes worth knowing: <a href="{SITE}/blog/scoring-q4">read the notes</a>.</p>',
            },
            {"kind": "wait", "days": 30},
            {
                "kind": "email",
                "subject": "Is now a better time, {{ lead.first_name }}?",
                "body": f'<p>Our <a href="{SITE}/pricing">new plans</a> start smaller.</p>',
            },
            {"kind": "action", "action": "webhook", "event": "renurture.finished"},
        ],
    },
    {
        "name": "Trial to paid: PQLs",
        "description": "Product-qualified leads: help them get value fast, and bring their rep in.",
        "enroll_on": {"kind": "stage_entered", "stage": "pql"},
        "stop_on_handoff": True,
        "goals": [{"stage": "sql"}],
        "steps": [
            {
                "kind": "email",
                "subject": "Three things to try in your first week",
                "body": f'<p>Start with <a href="{SITE}/docs/quickstart">the quickstart</a>.</p>',
            },
            {"kind": "action", "action": "notify_owner", "subject": "{{ lead.full_name }} is trialling"},
            {"kind": "wait", "days": 2},
            {
                "kind": "sms",
                "body": "Hi {{ lead.first_name }}, {{ owner.first_name }} here - need a hand with the trial?",
            },
        ],
    },
]

EMAIL_TEMPLATES = [
    {
        "name": "Pricing follow-up",
        "subject": "{{ lead.first_name }}, the prices you looked at",
        "body": 'Hi {{ lead.first_name|default:"there" }},\n\n'
        f"here are our plans and what each includes: {SITE}/pricing\n\n"
        "If {{ company.name }} needs something in between, just reply.\n\n{{ owner.first_name }}",
    },
    {
        "name": "Webinar invitation",
        "subject": "Join us live: building a B2B funnel that sales trusts",
        "body": '<p>Hi {{ lead.first_name|default:"there" }},</p>'
        f'<p>Our next webinar is on Thursday. <a href="{SITE}/webinars/funnel">Save your seat</a>.</p>',
    },
]


def seed_demo() -> str:
    created = []
    sequences = []
    for spec in SEQUENCES:
        sequence = Sequence.objects.filter(name=spec["name"]).first()
        if sequence is None:
            if spec["enroll_on"].get("form") and not Form.objects.filter(slug=spec["enroll_on"]["form"]).exists():
                spec = {**spec, "enroll_on": {"kind": "form_submitted"}}  # any form, when the demo form is absent
            sequence = services.sequence_create(data=spec)
            created.append(sequence.name)
        sequences.append(sequence)
    welcome, renurture, trial = sequences
    enrolled = 0
    for sequence, stage, limit in (
        (welcome, Stage.VISITOR, 40),
        (renurture, Stage.RECYCLED, 20),
        (trial, Stage.PQL, 10),
    ):
        if Enrollment.objects.filter(sequence=sequence).exists():
            continue
        lead_ids = list(Lead.objects.filter(stage=stage).order_by("pk").values_list("pk", flat=True)[:limit])
        enrolled += len(services.enrollments_create(sequence=sequence, lead_ids=lead_ids, source="demo"))
    if enrolled:
        _run_first_steps()
    new_templates = 0
    for spec in EMAIL_TEMPLATES:
        if not EmailTemplate.objects.filter(name__iexact=spec["name"]).exists():
            services.email_template_create(data=spec)
            new_templates += 1
    return (
        f"{len(sequences)} sequences ({len(created)} new), {enrolled} leads enrolled, "
        f"{len(EMAIL_TEMPLATES)} email templates ({new_templates} new)"
    )


def _run_first_steps() -> None:
    """Play the first steps now (mail kept in memory, nothing leaves the machine) so the
    sequences show sends, opens and clicks, and enrolments waiting at later steps."""
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        NURTURE_SMS_BACKEND="nurturing.channels.InMemorySMSBackend",
        NURTURE_MAX_MESSAGES_PER_DAY=0,
    ):
        get_connection()  # make sure the in-memory backend is importable before sending
        while services.process_due_steps(batch_size=200):
            pass
        messages = list(Message.objects.filter(sent_at__isnull=False, purpose="nurture").order_by("pk"))
        for index, message in enumerate(messages):
            if index % 2 == 0:
                services.message_record_open(message=message)
            if index % 5 == 0 and message.links:
                services.message_record_click(message=message, index=0)
