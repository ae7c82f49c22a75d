"""Erasing and exporting a person: every table, through the normal paths."""

import io
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leadfunnel.models import AuditEvent, Notification, OutboxMessage, WebhookDelivery, WebhookSubscription
from leadfunnel.outbox import outbox_dispatch
from leads.imports import import_run
from leads.models import FormSubmission, ImportJob, Interaction, Lead, StageTransition, Suppression, TrackedSite
from leads.services import lead_erase, suppression_hash
from nurturing import services as nurturing
from nurturing.models import Enrollment, Message
from scoring.models import ScoreContribution
from tests.factories import FormFactory, InteractionFactory, LeadFactory

pytestmark = pytest.mark.django_db

EMAIL = "Zephyrine.Quixotewright@Example.ORG"
FIRST, LAST = "Zephyrine", "Quixotewright"
PHONE = "+1 555 0199 321"
TRACES = (EMAIL.lower(), FIRST.lower(), LAST.lower(), PHONE)


class EchoReceiver:
    """A webhook receiver on 127.0.0.1 that answers with the body it got."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOKS_TIMEOUT_SECONDS = 2
    server = EchoReceiver()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def text_columns() -> dict[str, list[str]]:
    """Every text-like and JSON column of every table in the database, found by introspection
    (so tables other apps add later are scanned too)."""
    kinds = {"CharField", "TextField", "JSONField", "GenericIPAddressField", "EmailField", "SlugField", "URLField"}
    found: dict[str, list[str]] = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            columns = [
                column.name
                for column in connection.introspection.get_table_description(cursor, table)
                if connection.introspection.get_field_type(column.type_code, column) in kinds
            ]
            if columns:
                found[table] = columns
    return found


def traces_in_database(needles=TRACES) -> dict[str, list[str]]:
    """{table: [needles found]} over every text and JSON column of every table (any case)."""
    quote = connection.ops.quote_name
    found: dict[str, list[str]] = {}
    with connection.cursor() as cursor:
        for table, columns in text_columns().items():
            for needle in needles:
                where = " OR ".join(f"strpos(lower({quote(c)}::text), %s) > 0" for c in columns)
                cursor.execute(f"SELECT count(*) FROM {quote(table)} WHERE {where}", [needle.lower()] * len(columns))
                if cursor.fetchone()[0]:
                    found.setdefault(table, []).append(needle)
    return found


def traces_in_files(needles=TRACES) -> dict[str, list[str]]:
    """{stored file: [needles found]} over every file under MEDIA_ROOT (any case)."""
    found: dict[str, list[str]] = {}
    for path in Path(settings.MEDIA_ROOT).rglob("*"):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", "replace").lower()
            hits = [needle for needle in needles if needle.lower() in text]
            if hits:
                found[str(path.relative_to(settings.MEDIA_ROOT))] = hits
    return found


def fill_every_table(client, marketer_client, sales_rep, receiver, capture) -> Lead:
    """The person reaches every table the normal way: a form, events, a nurture email, a rep's
    notification, webhooks, a CSV import that stumbles on their row, a profile edit."""
    form = FormFactory(slug="demo-request", name="Demo request")
    WebhookSubscription.objects.create(
        url=receiver.url,
        secret="s" * 20,
        events=["lead.created", "lead.stage_changed", "lead.form_submitted", "lead.mql", "lead.erased"],
    )
    nurturing.sequence_create(
        data={
            "name": "Welcome",
            "enroll_on": {"kind": "form_submitted", "form": form.slug},
            "stop_on_handoff": False,
            "steps": [
                {
                    "kind": "email",
                    "subject": "Welcome, {{ lead.first_name }} {{ lead.last_name }}",
                    "body": "<p>Hi {{ lead.first_name }}, we have {{ lead.phone }} on file.</p>"
                    '<p><a href="https://leadfunnel.example/guide?who={{ lead.email }}">Guide</a></p>',
                },
                {"kind": "wait", "days": 2},
                {"kind": "email", "subject": "Pricing", "body": "<p>Pricing for {{ lead.first_name }}</p>"},
            ],
        },
        actor=None,
    )
    # Before they give their email, they browse the website with the tracking script on.
    site = TrackedSite.objects.create(
        name="Site", public_key="lf_privacytest1", allowed_origins=["https://site.example"]
    )
    visitor = "0123456789abcdef0123456789abcdef"
    response = client.post(
        "/api/v1/track/",
        data=json.dumps(
            {
                "key": site.public_key,
                "visitor": visitor,
                "url": f"https://site.example/pricing?who={EMAIL}",
                "title": f"Pricing for {FIRST} {LAST}",
                "referrer": f"https://mail.example/?to={EMAIL}",
            }
        ),
        content_type="text/plain",
        HTTP_ORIGIN="https://site.example",
        HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0",
    )
    assert response.status_code == 204, response.content
    with capture(execute=True):
        response = client.post(
            f"/api/v1/forms/{form.slug}/submit/",
            {
                "lf_visitor": visitor,
                "lf_site": site.public_key,
                "email": EMAIL,
                "first_name": FIRST,
                "last_name": LAST,
                "phone": PHONE,
                "title": "VP Marketing",
                "company": f"{LAST} Consulting",
                "nickname": f"{FIRST} Q.",
                "page_url": f"https://site.example/pricing?email={EMAIL}",
                "consent": True,
            },
            format="json",
            HTTP_USER_AGENT=f"Mozilla/5.0 (mail {EMAIL})",
            REMOTE_ADDR="203.0.113.9",
        )
        assert response.status_code == 201, response.content
    lead = Lead.objects.get(email=EMAIL.lower())
    with capture(execute=True):
        response = marketer_client.post(
            "/api/v1/interactions/",
            {
                "email": EMAIL.upper(),
                "type": "page_view",
                "properties": {"url": f"https://site.example/docs?utm_term={EMAIL}", "name": f"{FIRST} {LAST}"},
                "external_id": f"pv-{EMAIL}",
            },
            format="json",
        )
        assert response.status_code == 201, response.content
        response = marketer_client.post(
            f"/api/v1/leads/{lead.pk}/mark-mql/", {"reason": "Asked for a demo"}, format="json"
        )
        assert response.status_code == 200, response.content
    for _ in range(3):
        with capture(execute=True):
            outbox_dispatch()
    assert nurturing.process_due_steps(batch_size=100) >= 1
    csv_text = f"Email,First,Last,Phone,Job\n{EMAIL},{FIRST},{LAST},{PHONE},{'x' * 200}\nother@acme.example,Otto,,,\n"
    upload = io.BytesIO(csv_text.encode())
    upload.name = "people.csv"
    mapping = {"email": "Email", "first_name": "First", "last_name": "Last", "phone": "Phone", "title": "Job"}
    with capture(execute=True):
        response = marketer_client.post(
            "/api/v1/imports/", {"file": upload, "mapping": json.dumps(mapping)}, format="multipart"
        )
        assert response.status_code == 201, response.content
    for _ in range(2):
        with capture(execute=True):
            outbox_dispatch()
    return lead


def test_erasing_a_person_leaves_no_trace_in_any_table_and_keeps_the_funnel(
    client, marketer_client, marketer, sales_rep, receiver, django_capture_on_commit_callbacks
):
    lead = fill_every_table(client, marketer_client, sales_rep, receiver, django_capture_on_commit_callbacks)
    # The paths really did spread the person around (else the scan below would prove nothing).
    before = traces_in_database()
    for table in (
        "leads_lead",
        "leads_formsubmission",
        "leads_interaction",
        "leads_importjob",
        "nurturing_message",
        "leadfunnel_notification",
    ):
        assert EMAIL.lower() in before.get(table, []), (table, before)
    assert FIRST.lower() in before["nurturing_message"] and PHONE in before["nurturing_message"]
    # The uploaded CSV holds the person's row too.
    [stored] = traces_in_files()
    assert set(traces_in_files()[stored]) == set(TRACES)
    assert mail.outbox and any(lead.email in m.to for m in mail.outbox)
    assert WebhookDelivery.objects.filter(status="succeeded").exists() and receiver.bodies
    assert FormSubmission.objects.get(lead=lead).ip == "203.0.113.9"
    history = list(StageTransition.objects.filter(lead=lead).values_list("from_stage", "to_stage", "at", "cause"))
    assert [t[1] for t in history] == ["visitor", "mql"]
    score = Lead.objects.values_list("score", "fit_score", "engagement_score").get(pk=lead.pk)
    interactions = Interaction.objects.filter(lead=lead).count()
    contributions = ScoreContribution.objects.filter(lead=lead).count()

    with django_capture_on_commit_callbacks(execute=True), CaptureQueriesContext(connection) as queries:
        response = marketer_client.post(f"/api/v1/leads/{lead.pk}/erase/")
    assert response.status_code == 200, response.content
    erased = response.json()["erased"]
    assert erased["profile"] == 1 and erased["import_files"] == 1
    assert erased["submissions"] == 1 and erased["interactions"] == interactions
    assert erased["messages"] >= 1 and erased["notifications"] >= 1 and erased["import_error_reports"] == 1
    assert erased["webhook_deliveries"] >= 1 and erased["stage_history"] == 2
    # One statement per table whatever the history (auth, lock, and a fixed set of statements).
    assert len(queries) <= 40, [q["sql"][:120] for q in queries]

    after = traces_in_database()
    assert after == {}, after
    assert traces_in_files() == {}, traces_in_files()
    # The import's file keeps its header and everyone else's row, byte for byte.
    job = ImportJob.objects.get()
    with job.file.open("rb") as handle:
        assert handle.read() == b"Email,First,Last,Phone,Job\nother@acme.example,Otto,,,\n"
    lead.refresh_from_db()
    assert lead.email == f"erased-{lead.pk}@erased.invalid"
    assert (lead.first_name, lead.last_name, lead.phone, lead.title) == ("", "", "", "")
    assert lead.erased_at is not None
    # The funnel's numbers stay: the same stage history, scores and events, on the anonymised row.
    assert (
        list(StageTransition.objects.filter(lead=lead).values_list("from_stage", "to_stage", "at", "cause")) == history
    )
    assert Lead.objects.values_list("score", "fit_score", "engagement_score").get(pk=lead.pk) == score
    assert Interaction.objects.filter(lead=lead).count() == interactions
    assert ScoreContribution.objects.filter(lead=lead).count() == contributions
    submission = FormSubmission.objects.get(lead=lead)
    assert (submission.payload, submission.ip, submission.user_agent) == ({}, None, "")
    # The erasure is audited, with counts and no personal data; the address is suppressed as a hash.
    audit = AuditEvent.objects.get(action="lead.erased")
    assert (audit.actor, audit.object_id, audit.changes) == (marketer, str(lead.pk), erased)
    entry = Suppression.objects.get(email_hash=suppression_hash(EMAIL))
    assert (entry.reason, entry.hint) == ("erased", "")
    # Its enrolments end (the lead.erased message, after commit).
    outbox_dispatch()
    assert not Enrollment.objects.filter(lead=lead, status="active").exists()
    assert Enrollment.objects.filter(lead=lead, exit_reason="erased").exists()
    assert OutboxMessage.objects.filter(topic="lead.erased", dispatched_at__isnull=False).exists()
    # Integrations hear of it, with the lead id only.
    told = WebhookDelivery.objects.get(event="lead.erased")
    assert told.payload["data"] == {"lead_id": lead.pk}


def test_an_erased_lead_takes_no_events_stage_changes_or_enrolments(
    marketer_client, marketer, sales_rep, sales_client, django_capture_on_commit_callbacks
):
    lead = LeadFactory(email="gone@acme.example")
    with django_capture_on_commit_callbacks(execute=True):
        assert marketer_client.post(f"/api/v1/leads/{lead.pk}/erase/").status_code == 200
    events_before = Interaction.objects.filter(lead=lead).count()
    response = marketer_client.post("/api/v1/interactions/", {"lead": lead.pk, "type": "demo_request"}, format="json")
    assert response.status_code == 409
    response = marketer_client.post(
        "/api/v1/interactions/bulk/", [{"lead": lead.pk, "type": "demo_request"}], format="json"
    )
    assert response.json()["accepted"] == 0
    assert Interaction.objects.filter(lead=lead).count() == events_before
    response = marketer_client.post(f"/api/v1/leads/{lead.pk}/mark-mql/", {"reason": "Hot"}, format="json")
    assert response.status_code == 409
    assert Lead.objects.get(pk=lead.pk).stage == "visitor"
    sequence = nurturing.sequence_create(
        data={"name": "S", "steps": [{"kind": "email", "subject": "x", "body": "y"}]}, actor=None
    )
    response = marketer_client.post(f"/api/v1/sequences/{sequence.pk}/enrollments/", {"lead": lead.pk}, format="json")
    assert response.status_code == 409
    assert not Message.objects.filter(lead=lead).exists()
    response = marketer_client.patch(f"/api/v1/leads/{lead.pk}/", {"first_name": "Back"}, format="json")
    assert response.status_code == 409
    assert Lead.objects.get(pk=lead.pk).first_name == ""
    # Erasing twice is refused; the row stays as the first erasure left it.
    assert marketer_client.post(f"/api/v1/leads/{lead.pk}/erase/").status_code == 409


def test_erase_is_for_marketers_and_admins(
    sales_client, anon_client, admin_client_api, marketer_client, django_capture_on_commit_callbacks
):
    lead = LeadFactory(email="keep@acme.example", first_name="Kim")
    assert sales_client.post(f"/api/v1/leads/{lead.pk}/erase/").status_code == 403
    assert anon_client.post(f"/api/v1/leads/{lead.pk}/erase/").status_code in (401, 403)
    assert sales_client.get(f"/api/v1/leads/{lead.pk}/export/").status_code == 403
    assert anon_client.get(f"/api/v1/leads/{lead.pk}/export/").status_code in (401, 403)
    lead.refresh_from_db()
    assert (lead.email, lead.first_name, lead.erased_at) == ("keep@acme.example", "Kim", None)
    assert not Suppression.objects.exists() and not AuditEvent.objects.filter(action="lead.erased").exists()
    assert marketer_client.post("/api/v1/leads/999999/erase/").status_code == 404
    assert marketer_client.get("/api/v1/leads/999999/export/").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        assert admin_client_api.post(f"/api/v1/leads/{lead.pk}/erase/").status_code == 200
    assert Lead.objects.get(pk=lead.pk).erased_at is not None


def test_the_export_holds_every_kind_of_data_as_a_download(
    client, marketer_client, sales_rep, receiver, django_capture_on_commit_callbacks
):
    lead = fill_every_table(client, marketer_client, sales_rep, receiver, django_capture_on_commit_callbacks)
    with CaptureQueriesContext(connection) as queries:
        response = marketer_client.get(f"/api/v1/leads/{lead.pk}/export/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="lead-{lead.pk}-export.json"'
    # Auth, the lead, the suppression check, and one per kind of data (not per row): every table that
    # declares personal data (consent requests, aliases, segment memberships, tracked visitors…).
    assert len(queries) <= 18, [q["sql"][:100] for q in queries]
    document = json.loads(response.content)
    assert document["profile"]["email"] == EMAIL.lower()
    assert (document["profile"]["first_name"], document["profile"]["phone"]) == (FIRST, PHONE)
    assert document["profile"]["custom_fields"] == {"nickname": f"{FIRST} Q."}
    assert document["consents"]["consent"] is True and document["consents"]["suppressed"] is False
    assert document["score"]["score"] == Lead.objects.get(pk=lead.pk).score
    [submission] = document["submissions"]
    assert submission["payload"]["email"] == EMAIL and submission["ip"] == "203.0.113.9"
    assert {i["type"] for i in document["interactions"]} >= {"form_submit", "page_view", "email_sent"}
    assert [m["subject"] for m in document["messages"] if m["purpose"] == "nurture"] == [f"Welcome, {FIRST} {LAST}"]
    assert [(t["from_stage"], t["to_stage"]) for t in document["stage_history"]] == [
        ("", "visitor"),
        ("visitor", "mql"),
    ]
    assert document["score_contributions"] and all(
        {"rule__name", "points", "reason"} <= set(c) for c in document["score_contributions"]
    )
    assert sum(c["points"] for c in document["score_contributions"]) > 0
    [enrollment] = document["enrollments"]
    assert enrollment["sequence__name"] == "Welcome"
    assert document["profile"]["company_name"] == f"{LAST} Consulting"
    assert document["owner"] == sales_rep.username


def test_an_erased_person_exports_only_the_anonymised_record(marketer_client, django_capture_on_commit_callbacks):
    lead = LeadFactory(email="ex@acme.example", first_name="Exa", phone="123")
    with django_capture_on_commit_callbacks(execute=True):
        marketer_client.post(f"/api/v1/leads/{lead.pk}/erase/")
    document = marketer_client.get(f"/api/v1/leads/{lead.pk}/export/").json()
    assert document["profile"]["email"] == f"erased-{lead.pk}@erased.invalid"
    assert "ex@acme.example" not in json.dumps(document) and "Exa" not in json.dumps(document)
    assert document["consents"]["suppressed"] is True and document["consents"]["suppression_reason"] == "erased"


def test_notifications_and_stage_history_of_other_leads_are_untouched(
    marketer_client, sales_rep, django_capture_on_commit_callbacks
):
    keep = LeadFactory(email="stay@acme.example", first_name="Stay", last_name="Here", title="CTO")
    gone = LeadFactory(email="leave@acme.example", first_name="Leave", last_name="Now", title="CTO")
    with django_capture_on_commit_callbacks(execute=True):
        for lead in (keep, gone):
            marketer_client.post(f"/api/v1/leads/{lead.pk}/mark-mql/", {"reason": "Hot"}, format="json")
        outbox_dispatch()
    assert Notification.objects.count() == 2
    with django_capture_on_commit_callbacks(execute=True):
        marketer_client.post(f"/api/v1/leads/{gone.pk}/erase/")
    kept = Notification.objects.get(body__contains="stay@acme.example")
    assert "Stay Here" in kept.subject
    assert not Notification.objects.filter(body__contains="leave@acme.example").exists()
    assert ImportJob.objects.count() == 0
    keep.refresh_from_db()
    assert (keep.email, keep.first_name, keep.erased_at) == ("stay@acme.example", "Stay", None)


def _history(lead, events: int) -> None:
    for n in range(events):
        InteractionFactory(lead=lead, properties={"url": f"https://site.example/{n}?e={lead.email}"})
    FormSubmission.objects.bulk_create(
        [FormSubmission(form=FormFactory(), lead=lead, payload={"email": lead.email}) for _ in range(events)]
    )


def test_erase_and_export_cost_the_same_number_of_queries_for_a_short_or_long_history(marketer_client):
    short, long = LeadFactory(email="short@acme.example"), LeadFactory(email="long@acme.example")
    _history(short, 2)
    _history(long, 25)
    counts = {}
    for lead in (short, long):
        with CaptureQueriesContext(connection) as exported:
            assert marketer_client.get(f"/api/v1/leads/{lead.pk}/export/").status_code == 200
        with CaptureQueriesContext(connection) as erased:
            assert marketer_client.post(f"/api/v1/leads/{lead.pk}/erase/").status_code == 200
        counts[lead.email] = (len(exported), len(erased))
    assert counts["short@acme.example"] == counts["long@acme.example"], counts


def test_the_erasure_is_a_fixed_set_of_statements(marketer):
    lead = LeadFactory(email="fixed@acme.example")
    _history(lead, 3)
    with CaptureQueriesContext(connection) as queries:
        lead_erase(lead=lead.pk, actor=marketer)
    # lock the lead; suppression insert, hint blank and its audit row; interaction keys; one UPDATE
    # per declared table (assignments, interactions, double opt-in requests, messages, merge aliases
    # and provider events and tracked visitors (deleted: keyed by the address or the cookie), opportunities, stage history, step
    # executions, submissions); score reasons; notifications; webhook deliveries; outbox; audit;
    # import errors; the imports with a stored file; a company that was only this person; the lead; the audit row; the lead.erased
    # message. Savepoints aside.
    statements = [q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    assert len(statements) == 27, statements


def test_a_table_that_declares_nothing_is_still_erased_and_exported_by_default():
    from leads.privacy import _default_declaration

    # Free text, JSON and IPs are blanked; unique text that may be NULL becomes NULL …
    default = _default_declaration(FormSubmission, "lead")
    assert dict(default.erase) == {"payload": {}, "ip": None, "user_agent": "", "idempotency_key": None}
    assert not default.delete and "payload" in default.export and "lead" not in default.export
    # … and a row keyed by text that may not be blank (an alias, a token) goes whole.
    keyed = _default_declaration(Message, "lead")
    assert keyed.delete and not keyed.erase


def test_a_company_of_one_goes_with_the_person_and_a_shared_one_stays(marketer_client):
    from tests.factories import CompanyFactory

    solo = CompanyFactory(name="Kit Marlowe Ltd", domain="kitmarlowe.example")
    shared = CompanyFactory(name="Initech", domain="initech.example")
    kit = LeadFactory(email="kit@kitmarlowe.example", company=solo)
    leaving = LeadFactory(email="leaving@initech.example", company=shared)
    LeadFactory(email="staying@initech.example", company=shared)
    for lead in (kit, leaving):
        assert marketer_client.post(f"/api/v1/leads/{lead.pk}/erase/").json()["erased"]["companies"] == (
            1 if lead is kit else 0
        )
    solo.refresh_from_db()
    shared.refresh_from_db()
    assert (solo.name, solo.domain) == ("Erased company", None)
    assert (shared.name, shared.domain) == ("Initech", "initech.example")
    assert Lead.objects.get(pk=kit.pk).company_id == solo.pk  # account figures keep their rows


def _stored(content: bytes, **fields) -> ImportJob:
    job = ImportJob(original_name="people.csv", mapping={"email": "Email", "first_name": "First"}, **fields)
    job.file.save("people.csv", ContentFile(content), save=True)
    return job


def _content(job: ImportJob) -> bytes:
    job.refresh_from_db()
    with job.file.open("rb") as handle:
        return handle.read()


def test_erasure_rewrites_every_import_file_naming_the_person_byte_for_byte_after_commit(
    marketer_client, django_capture_on_commit_callbacks
):
    lead = LeadFactory(email="ada@acme.example", first_name="Ada")
    # A BOM, CRLF endings, a quoted cell over two lines, a byte that is not UTF-8, the person's
    # row in another letter case, and someone else's row that names her in a note.
    done = _stored(
        b"\xef\xbb\xbfEmail,First,Note\r\n"
        b'bob@acme.example,Bob,"two\r\nlines"\r\n'
        b"ADA@Acme.Example,Ada,caf\xe9\r\n"
        b'carl@acme.example,Carl,"referred by ada@acme.example, ""quoted"""\r\n'
        b"dora@acme.example,Dora,\xff\r\n",
        status="done",
        processed_rows=4,
        total_rows=4,
    )
    elsewhere = _stored(b"Email,First\nbob@acme.example,Bob\n", status="done")
    untouched = _content(elsewhere)
    old_name = done.file.name

    with django_capture_on_commit_callbacks() as callbacks:
        response = marketer_client.post(f"/api/v1/leads/{lead.pk}/erase/")
    assert response.status_code == 200, response.content
    assert response.json()["erased"]["import_files"] == 1
    # Nothing on disk changes before the commit (a rollback leaves the files as they were).
    assert b"ADA@Acme.Example" in _content(done)
    for callback in callbacks:
        callback()

    assert _content(done) == (
        b"\xef\xbb\xbfEmail,First,Note\r\n"
        b'bob@acme.example,Bob,"two\r\nlines"\r\n'
        b"carl@acme.example,Carl,\r\n"
        b"dora@acme.example,Dora,\xff\r\n"
    )
    assert done.file.name != old_name and not done.file.storage.exists(old_name)
    assert (done.status, done.processed_rows, done.total_rows) == ("done", 4, 4)
    assert _content(elsewhere) == untouched and elsewhere.file.name == ImportJob.objects.get(pk=elsewhere.pk).file.name
    assert traces_in_files(("ada@acme.example",)) == {}


def test_an_unfinished_import_loses_the_persons_rows_and_resumes_without_skipping_or_repeating(
    marketer, django_capture_on_commit_callbacks
):
    lead = LeadFactory(email="ada@acme.example")
    rows = b"Email,First\nann@acme.example,Ann\nada@acme.example,Ada\n\nben@acme.example,Ben\nada@acme.example,A\n"
    # Ann and Ada were imported by a worker that stopped; Ben and Ada's second row are left.
    stopped = _stored(rows, status="failed", processed_rows=2, total_rows=4)
    running = _stored(rows, status="running", processed_rows=1, total_rows=4)

    with django_capture_on_commit_callbacks(execute=True):
        assert lead_erase(lead=lead.pk, actor=marketer)["import_files"] == 2

    expected = b"Email,First\nann@acme.example,Ann\n\nben@acme.example,Ben\n"
    assert _content(stopped) == expected and _content(running) == expected
    assert (stopped.status, stopped.processed_rows, stopped.total_rows) == ("failed", 1, 2)
    # A running job goes back to pending and is queued again (the worker reading the old file
    # stops at its next batch): here the queued run resumes the new file where it was at once.
    message = OutboxMessage.objects.get(topic="import.requested", payload={"job_id": running.pk})
    assert message.dispatched_at is not None
    assert (running.status, running.processed_rows, running.created_count) == ("done", 2, 1)

    # Ann (row 1, never in the database here) is not run again, Ben is, and Ada is not.
    import_run(job_id=stopped.pk)
    stopped.refresh_from_db()
    assert (stopped.status, stopped.processed_rows, stopped.error_count) == ("done", 2, 0)
    assert set(Lead.objects.values_list("email", flat=True)) == {f"erased-{lead.pk}@erased.invalid", "ben@acme.example"}
    assert not Lead.objects.filter(email="ada@acme.example").exists()


def test_a_file_that_cannot_be_rewritten_is_logged_and_the_erasure_stands(
    marketer_client, django_capture_on_commit_callbacks, monkeypatch, caplog
):
    lead = LeadFactory(email="ada@acme.example")
    job = _stored(b"Email,First\nada@acme.example,Ada\n", status="done")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(FileSystemStorage, "_save", broken)
    with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(f"/api/v1/leads/{lead.pk}/erase/")
    assert response.status_code == 200, response.content
    assert Lead.objects.get(pk=lead.pk).erased_at is not None
    assert f"import {job.pk}: its file could not be rewritten" in caplog.text
    assert _content(job) == b"Email,First\nada@acme.example,Ada\n"  # left whole, not half written
