"""CSV import (API, command, resumable job) and streamed CSV export."""

import csv
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from leadfunnel.models import OutboxMessage
from leads import imports
from leads.models import ImportJob, Lead
from tests.factories import LeadFactory

CSV = (
    "Email,First,Last,Job,Company,Plan\n"
    "ann@acme.example,Ann,Lee,CTO,Acme,pro\n"
    "bad-email,Bob,X,,,\n"
    ",NoEmail,Y,,,\n"
    "BEN@Beta.example,Ben,,,Beta,\n"
    "ben@beta.example,,Berg,Head of IT,,free\n"
    "existing@acme.example,Eve,,Director,NewCo,\n"
)
MAPPING = {
    "email": "Email",
    "first_name": "First",
    "last_name": "Last",
    "title": "Job",
    "company": "Company",
    "custom:plan": "Plan",
}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.IMPORT_BATCH_SIZE = 2


@pytest.fixture
def existing(db):
    return LeadFactory(email="existing@acme.example", first_name="Evelyn", title="", company_name="", source="website")


@pytest.fixture
def scored(monkeypatch):
    """The emails of the leads whose profile the import had scored, one entry per scoring."""
    calls: list[str] = []
    from leads.models import Lead
    from leads.services import qualification

    original = qualification.score_leads

    def spy(*, interactions, profile_lead_ids, caller_leads):
        calls.extend(Lead.objects.filter(pk__in=profile_lead_ids).values_list("email", flat=True))
        return original(interactions=interactions, profile_lead_ids=profile_lead_ids, caller_leads=caller_leads)

    monkeypatch.setattr(qualification, "score_leads", spy)
    return calls


def upload(client, content: str = CSV, **fields):
    data = {"file": io.BytesIO(content.encode()), "mapping": json.dumps(MAPPING), **fields}
    data["file"].name = "leads.csv"
    return client.post("/api/v1/imports/", data, format="multipart")


@pytest.mark.django_db
def test_import_creates_updates_fills_blanks_and_reports_bad_rows(
    marketer_client, existing, scored, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(marketer_client)
    assert response.status_code == 201, response.content
    job = ImportJob.objects.get(pk=response.json()["id"])
    assert (job.status, job.total_rows, job.processed_rows) == ("done", 6, 6)
    assert (job.created_count, job.updated_count, job.error_count) == (2, 2, 2)

    ann = Lead.objects.get(email="ann@acme.example")
    assert (ann.first_name, ann.last_name, ann.title, ann.company_name) == ("Ann", "Lee", "CTO", "Acme")
    assert (ann.source, ann.channel, ann.custom_fields) == ("import", "import", {"plan": "pro"})
    ben = Lead.objects.get(email="ben@beta.example")  # two rows, one lead, lower-cased
    assert (ben.first_name, ben.last_name, ben.title, ben.company_name) == ("Ben", "Berg", "Head of IT", "Beta")
    assert ben.custom_fields == {"plan": "free"}
    existing.refresh_from_db()
    assert existing.first_name == "Evelyn"  # known values are never overwritten
    assert (existing.title, existing.company_name, existing.source) == ("Director", "NewCo", "website")
    assert Lead.objects.count() == 3
    entry = ann.transitions.get()
    assert (entry.from_stage, entry.to_stage, entry.cause, entry.cause_ref) == (
        "",
        "visitor",
        "system",
        f"import:{job.pk}",
    )
    assert ben.transitions.count() == 1 and not existing.transitions.exists()

    created = OutboxMessage.objects.filter(topic="lead.created").order_by("id")
    assert [m.payload for m in created] == [
        {"lead_id": ann.pk, "source": "import", "form_slug": None},
        {"lead_id": ben.pk, "source": "import", "form_slug": None},
    ]
    assert sorted(scored) == ["ann@acme.example", "ben@beta.example", "ben@beta.example", "existing@acme.example"]

    progress = marketer_client.get(f"/api/v1/imports/{job.pk}/").json()
    assert (progress["status"], progress["progress"], progress["error_count"]) == ("done", 1.0, 2)
    report = marketer_client.get(f"/api/v1/imports/{job.pk}/errors.csv")
    assert report.status_code == 200 and report["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode())))
    assert rows[0] == ["row", "line", "email", "error"]
    assert [(r[0], r[2]) for r in rows[1:]] == [("2", "bad-email"), ("3", "")]
    assert "not a valid address" in rows[1][3] and "email is empty" in rows[2][3]


@pytest.mark.django_db
def test_dry_run_previews_and_writes_nothing(marketer_client, existing):
    response = upload(marketer_client, dry_run="true")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["dry_run"] is True
    assert (body["total_rows"], body["valid_rows"], body["error_count"]) == (6, 4, 2)
    assert (body["would_create"], body["would_update"], body["duplicates_in_file"]) == (2, 1, 1)
    assert body["preview"][0] == {
        "row": 1,
        "email": "ann@acme.example",
        "first_name": "Ann",
        "last_name": "Lee",
        "title": "CTO",
        "company_name": "Acme",
        "custom:plan": "pro",
    }
    assert [e["row"] for e in body["errors"]] == [2, 3]
    assert not ImportJob.objects.exists()
    assert list(Lead.objects.values_list("email", flat=True)) == ["existing@acme.example"]
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "mapping", "message"),
    [
        (CSV, {"email": "E-mail"}, "not in the file"),
        (CSV, {"first_name": "First"}, "Map a column to email"),
        (CSV, {"email": "Email", "shoe_size": "Plan"}, "Unknown lead field"),
        ("\n", MAPPING, "no header"),
    ],
)
def test_bad_uploads_are_refused_with_400_and_nothing_stored(marketer_client, content, mapping, message):
    data = {"file": io.BytesIO(content.encode()), "mapping": json.dumps(mapping)}
    data["file"].name = "x.csv"
    response = marketer_client.post("/api/v1/imports/", data, format="multipart")
    assert response.status_code == 400, response.content
    assert message in response.json()["message"]
    assert not ImportJob.objects.exists()


@pytest.mark.django_db
def test_non_utf8_and_bad_mapping_json_are_400(marketer_client):
    data = {"file": io.BytesIO("Email\nj\xe9r\xf4me@acme.example\n".encode("latin-1")), "mapping": ""}
    data["file"].name = "latin.csv"
    response = marketer_client.post("/api/v1/imports/", data, format="multipart")
    assert response.status_code == 400 and "UTF-8" in response.json()["message"]
    assert not ImportJob.objects.exists()
    response = upload(marketer_client, mapping="{not json")
    assert response.status_code == 400 and "JSON" in response.json()["message"]


@pytest.mark.django_db
def test_imports_are_for_marketers(sales_client, anon_client):
    assert upload(sales_client).status_code == 403
    assert upload(anon_client).status_code in (401, 403)
    assert not ImportJob.objects.exists()


@pytest.mark.django_db
def test_a_crash_mid_import_keeps_whole_batches_and_the_job_resumes(existing, monkeypatch):
    job = imports.import_create(actor=None, content=CSV.encode(), filename="leads.csv", mapping=MAPPING, queue=False)
    original = imports.leads_score
    batches = {"n": 0}

    def crash_in_second_batch(**kwargs):
        batches["n"] += 1
        if batches["n"] == 2:
            raise RuntimeError("worker lost")
        return original(**kwargs)

    monkeypatch.setattr(imports, "leads_score", crash_in_second_batch)
    with pytest.raises(RuntimeError):
        imports.import_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.created_count, job.error_count) == ("failed", 2, 1, 1)
    # Batch 1 (ann + a bad row) is in; batch 2 (BEN) rolled back entirely.
    assert set(Lead.objects.values_list("email", flat=True)) == {"existing@acme.example", "ann@acme.example"}
    assert OutboxMessage.objects.filter(topic="lead.created").count() == 1

    monkeypatch.setattr(imports, "leads_score", original)
    job = imports.import_run(job_id=job.pk)
    assert (job.status, job.processed_rows, job.total_rows) == ("done", 6, 6)
    assert (job.created_count, job.updated_count, job.error_count) == (2, 2, 2)
    assert Lead.objects.count() == 3
    assert [e["row"] for e in job.errors] == [2, 3]  # each bad row reported once
    assert OutboxMessage.objects.filter(topic="lead.created").count() == 2
    # Running a finished job again changes nothing.
    assert imports.import_run(job_id=job.pk).processed_rows == 6


@pytest.mark.django_db
def test_import_command_with_mapping_and_dry_run(tmp_path, existing):
    path = tmp_path / "leads.csv"
    path.write_text(CSV)
    out = io.StringIO()
    call_command("import_leads", str(path), "--map", "email=Email,first_name=First,title=Job", "--dry-run", stdout=out)
    assert json.loads(out.getvalue())["would_create"] == 2
    assert Lead.objects.count() == 1
    out = io.StringIO()
    call_command("import_leads", str(path), "--map", "email=Email,first_name=First,title=Job", stdout=out)
    assert "done; 6/6 rows, 2 created, 2 updated, 2 errors" in out.getvalue()
    assert Lead.objects.get(email="ann@acme.example").title == "CTO"
    with pytest.raises(CommandError, match="not in the file"):
        call_command("import_leads", str(path), "--map", "email=Mail")


# --- export -----------------------------------------------------------------------------------


def read_export(response) -> list[dict]:
    assert response.status_code == 200, getattr(response, "content", b"")
    assert response.streaming
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.django_db
def test_export_streams_the_filtered_list(marketer_client, sales_rep):
    LeadFactory(email="a@x.example", stage="mql", owner=sales_rep, score=70, first_name="=HYPERLINK(1)")
    LeadFactory(email="b@x.example", stage="mql", score=20)
    LeadFactory(email="c@x.example", stage="visitor", score=90)
    rows = read_export(marketer_client.get("/api/v1/leads/export.csv", {"stage": "mql"}))
    assert [r["email"] for r in rows] == ["b@x.example", "a@x.example"]
    assert rows[1]["owner"] == "sam" and rows[1]["score"] == "70"
    assert rows[1]["first_name"] == "'=HYPERLINK(1)"  # no formulas in spreadsheets
    rows = read_export(marketer_client.get("/api/v1/leads/export.csv", {"min_score": "50"}))
    assert {r["email"] for r in rows} == {"a@x.example", "c@x.example"}
    rows = read_export(marketer_client.get("/api/v1/leads/export.csv", {"owner": str(sales_rep.pk)}))
    assert [r["email"] for r in rows] == ["a@x.example"]
    assert len(read_export(marketer_client.get("/api/v1/leads/export.csv"))) == 3


@pytest.mark.django_db
def test_export_refuses_bad_filters_and_non_marketers(marketer_client, sales_client):
    assert marketer_client.get("/api/v1/leads/export.csv", {"min_score": "lots"}).status_code == 400
    assert marketer_client.get("/api/v1/leads/export.csv", {"stage": "famous"}).status_code == 400
    assert sales_client.get("/api/v1/leads/export.csv").status_code == 403


@pytest.mark.django_db
def test_import_keeps_the_custom_field_cap_on_new_and_existing_leads(monkeypatch):
    monkeypatch.setattr(imports.intake, "MAX_CUSTOM_FIELDS_PER_LEAD", 2)
    kept = LeadFactory(email="kept@acme.example", custom_fields={"region": "north"})
    content = "Email,Plan,Tier,Seats\nkept@acme.example,pro,gold,5\nnew@acme.example,free,silver,1\n"
    mapping = {"email": "Email", "custom:plan": "Plan", "custom:tier": "Tier", "custom:seats": "Seats"}
    job = imports.import_create(actor=None, content=content.encode(), filename="x.csv", mapping=mapping, queue=False)
    job = imports.import_run(job_id=job.pk)
    assert (job.status, job.created_count, job.updated_count) == ("done", 1, 1)
    kept.refresh_from_db()
    assert kept.custom_fields == {"region": "north", "plan": "pro"}  # fills a blank, never past the cap
    assert Lead.objects.get(email="new@acme.example").custom_fields == {"plan": "free", "tier": "silver"}
