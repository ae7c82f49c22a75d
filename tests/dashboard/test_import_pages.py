"""The CSV import pages: upload → map columns → dry run (writes nothing) → run → progress → error report."""

import csv
import io

import pytest

from leads.models import Company, ImportJob, Lead, StageTransition
from tests.factories import CompanyFactory, LeadFactory

pytestmark = pytest.mark.django_db

CSV = (
    "E-mail,First Name,Surname,Job,Organisation,Plan\n"
    "ann@northwind.example,Ann,Lee,CTO,Northwind,pro\n"
    "not-an-email,Bob,X,,,\n"
    "carl@gmail.com,Carl,Diaz,Student,,\n"
    "dora@globex.example,Dora,Ek,VP Sales,Globex,free\n"
    "known@globex.example,Kim,,Head of IT,,\n"
)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.IMPORT_BATCH_SIZE = 2


def upload(client, content: str = CSV, name: str = "berlin-expo.csv"):
    file = io.BytesIO(content.encode())
    file.name = name
    return client.post("/imports/", {"file": file})


def mapping_body(job, **choices) -> dict:
    """The mapping form as posted: the defaults shown on the page, overridden by ``choices``
    (column name → target)."""
    header = ["E-mail", "First Name", "Surname", "Job", "Organisation", "Plan"]
    shown = {column: target for target, column in job.mapping.items()}
    body = {f"col_{i}": choices.get(column, shown.get(column, "")) for i, column in enumerate(header)}
    body.update(source="Berlin Expo 2026", channel="event", campaign="expo-2026")
    return body


@pytest.mark.parametrize(("who", "status"), [("marketer", 200), ("admin_user", 200), ("sales_rep", 403), (None, 302)])
def test_only_marketers_and_admins_open_the_import_pages(request, browser_for, client, who, status):
    web = browser_for(request.getfixturevalue(who)) if who else client
    job = ImportJob.objects.create(file="imports/x.csv", original_name="x.csv", status="done")
    for url in ("/imports/", f"/imports/{job.pk}/", f"/imports/{job.pk}/status/", f"/imports/{job.pk}/errors.csv"):
        response = web.get(url)
        assert response.status_code == status, url
        if who is None:
            assert response["Location"].startswith("/accounts/login/")
    if who == "sales_rep" or who is None:
        file = io.BytesIO(CSV.encode())
        file.name = "x.csv"
        assert web.post("/imports/", {"file": file}).status_code == status
        assert ImportJob.objects.count() == 1


def test_the_import_flow_end_to_end(marketer_web, django_capture_on_commit_callbacks):
    known = LeadFactory(email="known@globex.example", first_name="", title="", source="website", utm_campaign="")
    globex = CompanyFactory(domain="globex.example", name="Globex Corp", country="US", size_band="1001-5000")

    # Upload: the file is stored as a draft and the mapping step opens.
    response = upload(marketer_web)
    assert response.status_code == 302
    job = ImportJob.objects.get()
    assert response["Location"] == f"/imports/{job.pk}/map/"
    assert job.status == "draft"

    # Mapping: a select per column, the first rows shown, pre-filled by the auto-mapping.
    page = marketer_web.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert "Organisation" in html and "ann@northwind.example" in html and "VP Sales" in html
    assert '<option value="first_name" selected>' in html  # "First Name" was recognised
    assert '<option value="custom:plan">' in html

    body = mapping_body(
        job, **{"E-mail": "email", "Surname": "last_name", "Job": "title", "Organisation": "company_name"}
    )
    body["col_5"] = "custom:plan"

    # Dry run: counts and errors, nothing written.
    leads_before = Lead.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        dry = marketer_web.post(f"/imports/{job.pk}/map/", {**body, "action": "dry_run"})
    html = dry.content.decode()
    assert dry.status_code == 200
    assert 'data-count="total">5<' in html
    assert 'data-count="create">3<' in html
    assert 'data-count="update">1<' in html
    assert 'data-count="errors">1<' in html
    assert "&#x27;not-an-email&#x27; is not a valid address" in html
    assert Lead.objects.count() == leads_before
    assert not Company.objects.filter(domain="northwind.example").exists()
    job.refresh_from_db()
    assert job.status == "draft" and job.processed_rows == 0

    # Run: the worker (eager here) imports every row.
    with django_capture_on_commit_callbacks(execute=True):
        run = marketer_web.post(f"/imports/{job.pk}/map/", {**body, "action": "run"})
    assert run.status_code == 302 and run["Location"] == f"/imports/{job.pk}/"
    job.refresh_from_db()
    assert (job.status, job.created_count, job.updated_count, job.error_count) == ("done", 3, 1, 1)

    ann = Lead.objects.get(email="ann@northwind.example")
    assert (ann.first_name, ann.last_name, ann.title, ann.custom_fields) == ("Ann", "Lee", "CTO", {"plan": "pro"})
    assert (ann.source, ann.channel, ann.utm_campaign) == ("Berlin Expo 2026", "event", "expo-2026")
    assert ann.company.domain == "northwind.example" and ann.company.name == "Northwind"
    dora = Lead.objects.get(email="dora@globex.example")
    assert dora.company_id == globex.pk  # linked to the existing company by domain
    carl = Lead.objects.get(email="carl@gmail.com")
    assert carl.company_id is None  # free mail: no company
    known.refresh_from_db()
    # An existing lead keeps its source; blanks are filled, and it is linked to its company.
    assert (known.source, known.first_name, known.title, known.utm_campaign) == (
        "website",
        "Kim",
        "Head of IT",
        "expo-2026",
    )
    assert known.company_id == globex.pk
    first = StageTransition.objects.get(lead=ann)
    assert (first.to_stage, first.cause_ref) == ("visitor", f"import:{job.pk}")

    # Progress page and its partial read the job's counts; finished, it stops polling.
    detail = marketer_web.get(f"/imports/{job.pk}/").content.decode()
    assert "Import finished" in detail and 'data-count="created">3<' in detail
    partial = marketer_web.get(f"/imports/{job.pk}/status/", HTTP_HX_REQUEST="true").content.decode()
    assert 'data-status="done"' in partial and "hx-trigger" not in partial

    # The error report.
    report = marketer_web.get(f"/imports/{job.pk}/errors.csv")
    assert report["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode())))
    assert rows[0] == ["row", "line", "email", "error"]
    assert rows[1][2:] == ["not-an-email", "email 'not-an-email' is not a valid address"]

    # A started import cannot be mapped or run again.
    assert marketer_web.get(f"/imports/{job.pk}/map/")["Location"] == f"/imports/{job.pk}/"


def test_a_running_import_polls_its_status(marketer_web):
    job = ImportJob.objects.create(
        file="imports/x.csv", original_name="x.csv", status="running", total_rows=200, processed_rows=50
    )
    partial = marketer_web.get(f"/imports/{job.pk}/status/").content.decode()
    assert f'hx-get="/imports/{job.pk}/status/"' in partial and 'hx-trigger="every 1s"' in partial
    assert 'aria-valuenow="25"' in partial


def test_mapping_without_email_or_twice_the_same_field_is_refused(marketer_web):
    upload(marketer_web)
    job = ImportJob.objects.get()
    no_email = mapping_body(job, **{"E-mail": ""})
    response = marketer_web.post(f"/imports/{job.pk}/map/", {**no_email, "action": "run"})
    assert response.status_code == 400
    assert "Map one column to Email" in response.content.decode()
    twice = mapping_body(job, **{"E-mail": "email", "Surname": "first_name"})
    response = marketer_web.post(f"/imports/{job.pk}/map/", {**twice, "action": "dry_run"})
    assert response.status_code == 400
    assert "is already mapped to First name" in response.content.decode()
    job.refresh_from_db()
    assert job.status == "draft" and not Lead.objects.exists()


def test_a_bad_channel_is_refused(marketer_web):
    upload(marketer_web)
    job = ImportJob.objects.get()
    body = {**mapping_body(job, **{"E-mail": "email"}), "channel": "telepathy", "action": "run"}
    response = marketer_web.post(f"/imports/{job.pk}/map/", body)
    assert response.status_code == 400 and "telepathy" in response.content.decode()
    assert ImportJob.objects.get().status == "draft"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The submitted file is empty."),
        (b"\xff\xfeE\x00m\x00", "not UTF-8"),
        (b"\n\n", "no header row"),
    ],
)
def test_a_bad_file_is_refused_with_a_message(marketer_web, content, message):
    file = io.BytesIO(content)
    file.name = "bad.csv"
    response = marketer_web.post("/imports/", {"file": file})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ImportJob.objects.exists()


def test_the_api_takes_source_channel_and_campaign(marketer_client, django_capture_on_commit_callbacks):
    file = io.BytesIO(b"email\nzoe@fjord.example\n")
    file.name = "list.csv"
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(
            "/api/v1/imports/",
            {"file": file, "source": "Webinar list", "channel": "event", "campaign": "q4-webinar"},
            format="multipart",
        )
    assert response.status_code == 201, response.content
    assert (response.json()["channel"], response.json()["campaign"]) == ("event", "q4-webinar")
    zoe = Lead.objects.get(email="zoe@fjord.example")
    assert (zoe.source, zoe.channel, zoe.utm_campaign) == ("Webinar list", "event", "q4-webinar")
    assert zoe.company.domain == "fjord.example"
    bad = io.BytesIO(b"email\nx@y.example\n")
    bad.name = "list.csv"
    response = marketer_client.post("/api/v1/imports/", {"file": bad, "channel": "nope"}, format="multipart")
    assert response.status_code == 400 and "channel" in response.json()["errors"]
