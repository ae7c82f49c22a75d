"""CSV import pages (marketers, admins): upload → map columns (with the first rows) and set the
file's source / channel / campaign → dry run → run, with an htmx-polled progress partial and the
error report. Every step calls ``leads.imports``, the same service as the API and the command."""

import csv

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from leadfunnel.errors import ValidationFailed
from leadfunnel.roles import role_required

from .. import imports
from ..models import Channel, ImportJob

IGNORE = ""
FIELD_LABELS = {
    "email": "Email",
    "first_name": "First name",
    "last_name": "Last name",
    "title": "Title",
    "phone": "Phone",
    "company_name": "Company",
    "company_size": "Company size",
    "industry": "Industry",
    "country": "Country",
    "city": "City",
    "linkedin": "LinkedIn",
    "twitter": "Twitter",
    "utm_source": "UTM source",
    "utm_medium": "UTM medium",
    "utm_campaign": "UTM campaign",
}


class UploadForm(forms.Form):
    file = forms.FileField(label="CSV file", help_text="UTF-8, with a header row. One lead per row.")


def _custom_name(column: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in column.strip().lower()).strip("_")[:60] or "column"


class MappingForm(forms.Form):
    """A select per CSV column (lead field / custom field / ignore) and the file-wide options."""

    source = forms.CharField(
        required=False,
        max_length=100,
        help_text="Where these people came from, e.g. “Trade show Berlin 2026”. Default: import.",
    )
    channel = forms.ChoiceField(
        choices=Channel.choices, initial=Channel.IMPORT, help_text="A trade-show or webinar list is an event."
    )
    campaign = forms.CharField(
        required=False, max_length=200, help_text="Stored as the campaign (UTM campaign) of every lead."
    )

    def __init__(self, *args, header: list[str], mapping: dict[str, str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.header = header
        chosen = {column: target for target, column in mapping.items()}
        lead_fields = [(name, FIELD_LABELS.get(name, name)) for name in imports.IMPORT_FIELDS]
        for index, column in enumerate(header):
            custom = f"{imports.CUSTOM_PREFIX}{_custom_name(column)}"
            choices = [
                (IGNORE, "— ignore —"),
                ("Lead fields", lead_fields),
                ("Custom field", [(custom, f"Custom field “{_custom_name(column)}”")]),
            ]
            target = chosen.get(column, IGNORE)
            if target.startswith(imports.CUSTOM_PREFIX) and target != custom:
                choices[2][1].append((target, f"Custom field “{target[len(imports.CUSTOM_PREFIX) :]}”"))
            self.fields[f"col_{index}"] = forms.ChoiceField(
                choices=choices, required=False, initial=target, label=column or f"Column {index + 1}"
            )

    def column_fields(self):
        return [self[f"col_{index}"] for index in range(len(self.header))]

    def clean(self):
        cleaned = super().clean()
        mapping: dict[str, str] = {}
        for index, column in enumerate(self.header):
            target = cleaned.get(f"col_{index}") or IGNORE
            if target == IGNORE:
                continue
            if target in mapping:
                label = FIELD_LABELS.get(target, target)
                self.add_error(
                    f"col_{index}", f"“{mapping[target]}” is already mapped to {label}; choose one column for it."
                )
                continue
            mapping[target] = column
        if "email" not in mapping and not self.errors:
            raise forms.ValidationError("Map one column to Email: leads are matched by their email address.")
        cleaned["mapping"] = mapping
        return cleaned


def _mapping_page(request: HttpRequest, job: ImportJob, form: MappingForm, dry: dict | None = None, status=200):
    header, sample = imports.import_columns(job=job)
    columns = [
        {"field": field, "samples": [row[index] for row in sample if index < len(row)]}
        for index, field in enumerate(form.column_fields())
    ]
    return render(
        request,
        "imports/map.html",
        {"nav": "imports", "job": job, "form": form, "columns": columns, "dry": dry},
        status=status,
    )


@require_http_methods(["GET", "POST"])
@role_required(marketer=True)
def imports_list(request: HttpRequest) -> HttpResponse:
    """Upload a file (→ the mapping step) and the imports made so far, newest first."""
    form = UploadForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                job = imports.import_upload(actor=request.user, content=upload.read(), filename=upload.name)
            except ValidationFailed as exc:
                form.add_error("file", exc.message)
            else:
                return redirect("dashboard:import-map", job_id=job.pk)
        status = 400
    jobs = Paginator(ImportJob.objects.select_related("created_by").order_by("-created_at", "-id"), 25)
    page = jobs.get_page(request.GET.get("page"))
    return render(request, "imports/list.html", {"nav": "imports", "form": form, "page": page}, status=status)


@require_http_methods(["GET", "POST"])
@role_required(marketer=True)
def import_map(request: HttpRequest, job_id: int) -> HttpResponse:
    """The mapping step; ``action=dry_run`` validates the whole file and shows what would happen,
    ``action=run`` saves the mapping and starts the import."""
    job = get_object_or_404(ImportJob, pk=job_id)
    if job.status != ImportJob.Status.DRAFT:
        return redirect("dashboard:import", job_id=job.pk)
    header, _ = imports.import_columns(job=job)
    initial = {"source": "" if job.source == imports.IMPORT_SOURCE else job.source, "channel": job.channel}
    initial["campaign"] = job.campaign
    form = MappingForm(request.POST or None, header=header, mapping=job.mapping, initial=initial)
    if request.method == "GET":
        return _mapping_page(request, job, form)
    if not form.is_valid():
        return _mapping_page(request, job, form, status=400)
    try:
        options = imports.import_options_clean(
            source=form.cleaned_data["source"],
            channel=form.cleaned_data["channel"],
            campaign=form.cleaned_data["campaign"],
        )
        job = imports.import_configure(job_id=job.pk, mapping=form.cleaned_data["mapping"], options=options)
        if request.POST.get("action") == "run":
            imports.import_start(job_id=job.pk)
            messages.success(request, f"Import of “{job.original_name}” started.")
            return redirect("dashboard:import", job_id=job.pk)
        dry = imports.import_job_preview(job=job)
        dry["columns"] = list(dry["mapping"])
        dry["rows"] = [(row["row"], [row.get(target, "") for target in dry["columns"]]) for row in dry["preview"]]
    except ValidationFailed as exc:
        form.add_error(None, exc.message)
        return _mapping_page(request, job, form, status=400)
    return _mapping_page(request, job, form, dry=dry)


def _progress(job: ImportJob) -> dict:
    running = job.status in (ImportJob.Status.PENDING, ImportJob.Status.RUNNING)
    if job.status == ImportJob.Status.DONE:
        percent = 100
    else:
        percent = int(100 * job.processed_rows / job.total_rows) if job.total_rows else 0
    return {"job": job, "running": running, "percent": percent}


@require_GET
@role_required(marketer=True)
def import_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(ImportJob.objects.select_related("created_by"), pk=job_id)
    if job.status == ImportJob.Status.DRAFT:
        return redirect("dashboard:import-map", job_id=job.pk)
    return render(request, "imports/detail.html", {"nav": "imports", **_progress(job)})


@require_GET
@role_required(marketer=True)
def import_status(request: HttpRequest, job_id: int) -> HttpResponse:
    """The progress partial htmx polls every second while the job runs (the ImportJob's counts)."""
    job = get_object_or_404(ImportJob, pk=job_id)
    return render(request, "imports/_status.html", _progress(job))


class _Echo:
    def write(self, value):
        return value


@require_GET
@role_required(marketer=True)
def import_errors(request: HttpRequest, job_id: int) -> StreamingHttpResponse:
    """The per-row error report (row, line, email, error) as a CSV download."""
    job = get_object_or_404(ImportJob, pk=job_id)
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in imports.import_errors_csv_rows(job)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
    return response
