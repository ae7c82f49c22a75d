"""CSV import of leads: column mapping, dedupe by email, per-row errors, dry run, resumable jobs.

- :func:`import_prepare` checks an uploaded file and its mapping (header present, mapped
  columns exist, an email column) before anything is stored; bad input is a 400.
- :func:`import_preview` is the dry run: every row parsed and validated, the first rows
  shown, nothing written.
- :func:`import_create` stores the file in an :class:`ImportJob`; the Celery task
  ``leads.tasks.import_run_job`` calls :func:`import_run`.
- :func:`import_run` processes the file in batches of ``IMPORT_BATCH_SIZE`` rows, each in its
  own transaction that also advances ``processed_rows`` — so a crash leaves whole batches
  only, and running the job again resumes after the last committed batch.

From the dashboard the same job is made in steps: :func:`import_upload` stores the file as a
``draft`` (never run by a worker) with the suggested mapping, :func:`import_configure` saves the
mapping and the file-wide options, :func:`import_job_preview` is the dry run of the stored file and
:func:`import_start` queues it (``draft`` → ``pending``).

Dedupe: emails are lower-cased; an existing lead (or an earlier row of the same file) is
updated by filling its blank fields only, never overwriting what is known. Every lead of a file
gets the file's source, channel and campaign (``utm_campaign``; a row's own value wins) — on an
existing lead only where blank. New leads default to source and channel ``import``. Leads with a
business email domain are linked to that domain's company (made when first seen). New leads are
scored and publish ``lead.created``.
"""

import csv
import io
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.files.base import ContentFile
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from leadfunnel.errors import NotFound, ValidationFailed
from leadfunnel.outbox import outbox_publish

from . import intake
from .consent import consent_fields
from .intake import email_domain, is_business_domain
from .models import Channel, ConsentStatus, ImportJob, Lead, TransitionCause
from .services import Entry, companies_ensure, leads_enter_funnel, leads_score
from .services.profile import merge_custom

logger = logging.getLogger(__name__)

# Lead fields a CSV column may fill, with their longest value: the address, the profile fields a
# form fills and the first touch, as intake has them.
IMPORT_FIELDS: dict[str, int] = {
    "email": 254,
    **intake.PROFILE_FIELDS,
    **intake.FIRST_TOUCH_FIELDS,
    # yes/no, true/false, 1/0: "yes" records an opt-in from this import, "no" records none.
    "consent": 10,
}
ALIASES = intake.ALIASES
CUSTOM_PREFIX = "custom:"
PREVIEW_ROWS = 20
MAX_STORED_ERRORS = 10_000
IMPORT_SOURCE = "import"
# Profile values a new company takes from the first lead of its domain.
COMPANY_FIELDS = ("company_name", "company_size", "industry", "country", "city")


@dataclass(frozen=True)
class ImportOptions:
    """What every lead of a file gets: where it came from."""

    source: str = IMPORT_SOURCE
    channel: str = Channel.IMPORT
    campaign: str = ""


def import_options_clean(
    *, source: str | None = "", channel: str | None = "", campaign: str | None = ""
) -> ImportOptions:
    """Validate the file-wide source / channel / campaign (blank: ``import`` / ``import`` / none)."""
    source, channel, campaign = (source or "").strip(), (channel or "").strip(), (campaign or "").strip()
    errors = {}
    if len(source) > 100:
        errors["source"] = ["At most 100 characters."]
    if channel and channel not in Channel.values:
        errors["channel"] = [f"Unknown channel {channel!r}; use one of {', '.join(Channel.values)}."]
    if len(campaign) > 200:
        errors["campaign"] = ["At most 200 characters."]
    if errors:
        field_name, messages = next(iter(errors.items()))
        raise ValidationFailed(f"{field_name}: {messages[0]}", fields=errors)
    return ImportOptions(source=source or IMPORT_SOURCE, channel=channel or Channel.IMPORT, campaign=campaign)


@dataclass
class ParsedRow:
    line: int
    email: str
    values: dict[str, str] = field(default_factory=dict)
    custom: dict[str, str] = field(default_factory=dict)
    consent: bool | None = None


class RowError(Exception):
    pass


def _norm(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def mapping_parse_option(raw: str) -> dict[str, str]:
    """``email=Email,first_name=First Name`` (the management command's --map) → dict."""
    mapping: dict[str, str] = {}
    for part in raw.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise ValidationFailed(f"Mapping entries look like field=Column, got {part.strip()!r}.")
        target, column = part.split("=", 1)
        mapping[target.strip()] = column.strip()
    return mapping


def mapping_suggest(header: list[str]) -> dict[str, str]:
    """``{lead field: CSV column}`` for the columns named like a lead field (or an alias of one)."""
    mapping: dict[str, str] = {}
    for column in header:
        target = ALIASES.get(_norm(column), _norm(column))
        if target in IMPORT_FIELDS and target not in mapping:
            mapping[target] = column
    return mapping


def _check_mapping(mapping: dict, header: list[str]) -> dict[str, str]:
    """Validate ``{lead field: CSV column}``; with no mapping, map columns named like fields."""
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise ValidationFailed("mapping must be a JSON object of lead field → CSV column name.")
    if not mapping:
        mapping = mapping_suggest(header)
    mapping = {ALIASES.get(k, k): v for k, v in mapping.items()}
    errors = {}
    for target, column in mapping.items():
        if target not in IMPORT_FIELDS and not (target.startswith(CUSTOM_PREFIX) and len(target) > len(CUSTOM_PREFIX)):
            errors[target] = [f"Unknown lead field. Use one of {', '.join(IMPORT_FIELDS)} or custom:<name>."]
        elif column not in header:
            errors[target] = [f"Column {column!r} is not in the file (columns: {', '.join(header)})."]
    if "email" not in mapping and "email" not in errors:
        errors["email"] = ["Map a column to email: leads are matched by email."]
    if errors:
        raise ValidationFailed(next(iter(errors.values()))[0], fields={"mapping": errors})
    return mapping


def _open_text(raw: bytes | io.IOBase) -> io.TextIOBase:
    if isinstance(raw, bytes):
        raw = io.BytesIO(raw)
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def _read_header(text: io.TextIOBase) -> tuple[csv.reader, list[str]]:
    try:
        reader = csv.reader(text)
        header = next(reader, None)
    except UnicodeDecodeError:
        raise ValidationFailed("The file is not UTF-8 text; save the CSV as UTF-8 and try again.") from None
    except csv.Error as exc:
        raise ValidationFailed(f"The file is not a readable CSV: {exc}.") from None
    if not header or not any(h.strip() for h in header):
        raise ValidationFailed("The file has no header row.")
    return reader, [h.strip() for h in header]


def _parse_row(line: int, record: list[str], index: dict[str, int], mapping: dict[str, str]) -> ParsedRow:
    def cell(column: str) -> str:
        position = index[column]
        return record[position].strip() if position < len(record) else ""

    email = cell(mapping["email"]).lower()
    if not email:
        raise RowError("email is empty")
    try:
        validate_email(email)
    except DjangoValidationError:
        raise RowError(f"email {email!r} is not a valid address") from None
    row = ParsedRow(line=line, email=email)
    for target, column in mapping.items():
        if target == "email":
            continue
        value = cell(column)
        if not value:
            continue
        if target.startswith(CUSTOM_PREFIX):
            row.custom[target[len(CUSTOM_PREFIX) :]] = value[:2000]
            continue
        if len(value) > IMPORT_FIELDS[target]:
            raise RowError(f"{target} is longer than {IMPORT_FIELDS[target]} characters")
        if target == "consent":
            row.consent = intake.parse_bool(value)
            if row.consent is None:
                raise RowError(f"consent {value!r} is not yes/no (true/false, 1/0)")
            continue
        row.values[target] = value
    return row


def _iter_rows(text: io.TextIOBase, mapping: dict[str, str], *, skip: int = 0):
    """Yield ``(line, ParsedRow | None, error | None)`` for each data row after ``skip`` rows."""
    reader, header = _read_header(text)
    index = {name: i for i, name in enumerate(header)}
    number = 0
    try:
        for record in reader:
            if not any(c.strip() for c in record):
                continue  # blank lines are not rows
            number += 1
            if number <= skip:
                continue
            line = reader.line_num
            try:
                yield number, _parse_row(line, record, index, mapping), None
            except RowError as exc:
                email = record[index[mapping["email"]]].strip() if index[mapping["email"]] < len(record) else ""
                yield number, None, {"row": number, "line": line, "email": email, "error": str(exc)}
    except UnicodeDecodeError:
        raise ValidationFailed("The file is not UTF-8 text; save the CSV as UTF-8 and try again.") from None
    except csv.Error as exc:
        raise ValidationFailed(f"The CSV is malformed near row {number + 1}: {exc}.") from None


# --- checking and dry run ---------------------------------------------------------------


def import_prepare(*, content: bytes, mapping: dict | None) -> dict[str, str]:
    """Check the header and the mapping; returns the effective mapping. 400 on problems."""
    return _check_mapping(dict(mapping or {}), _header_of(content))


def import_preview(
    *, content: bytes, mapping: dict | None, rows: int = PREVIEW_ROWS, options: ImportOptions | None = None
) -> dict:
    """Dry run over the whole file: nothing is written. Shows the first ``rows`` parsed rows,
    the per-row errors and how many leads would be created or updated (one query per 1,000 rows).
    """
    options = options or ImportOptions()
    effective = import_prepare(content=content, mapping=mapping)
    preview, errors, seen = [], [], {}
    total = 0
    for number, row, error in _iter_rows(_open_text(content), effective):
        total += 1
        if error:
            if len(errors) < MAX_STORED_ERRORS:
                errors.append(error)
            continue
        if len(preview) < rows:
            preview.append(
                {"row": number, "email": row.email, **row.values, **{f"custom:{k}": v for k, v in row.custom.items()}}
            )
        seen.setdefault(row.email, number)
    existing = 0
    emails = list(seen)
    for start in range(0, len(emails), 1000):
        existing += Lead.objects.filter(email__in=emails[start : start + 1000]).count()
    valid = total - len(errors)
    return {
        "dry_run": True,
        "mapping": effective,
        "source": options.source,
        "channel": options.channel,
        "campaign": options.campaign,
        "total_rows": total,
        "valid_rows": valid,
        "error_count": len(errors),
        "would_create": len(emails) - existing,
        "would_update": existing,
        "duplicates_in_file": valid - len(emails),
        "preview": preview,
        "errors": errors[:100],
    }


# --- the job -------------------------------------------------------------------------------


def import_create(
    *,
    actor,
    content: bytes,
    filename: str,
    mapping: dict | None,
    queue: bool = True,
    options: ImportOptions | None = None,
) -> ImportJob:
    """Store the upload as a pending job and (``queue``) start it in a worker after commit."""
    effective = import_prepare(content=content, mapping=mapping)
    options = options or ImportOptions()
    with transaction.atomic():
        job = _job_store(actor=actor, content=content, filename=filename, mapping=effective, options=options)
        if queue:
            _job_queue(job)
    return job


def _job_store(
    *,
    actor,
    content: bytes,
    filename: str,
    mapping: dict,
    options: ImportOptions,
    status: str = ImportJob.Status.PENDING,
) -> ImportJob:
    job = ImportJob(
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
        original_name=filename[:300],
        mapping=mapping,
        source=options.source,
        channel=options.channel,
        campaign=options.campaign,
        dry_run=False,
        status=status,
    )
    job.file.save(f"{timezone.now():%Y%m%d%H%M%S}-{filename[-80:] or 'leads.csv'}", ContentFile(content), save=False)
    job.save()
    return job


def _job_queue(job: ImportJob) -> None:
    # A worker starts it after commit (``leads.tasks`` handles the message); if the broker
    # is down, the beat sweep of stalled imports starts it later.
    outbox_publish(topic="import.requested", payload={"job_id": job.pk})


# --- the dashboard's steps: upload, map, dry run, start -------------------------------------


def import_upload(*, actor, content: bytes, filename: str) -> ImportJob:
    """Store an uploaded file as a ``draft`` job with the suggested mapping (which may still
    lack an email column: the mapping step says so). Checks size, encoding and header: 400."""
    if not content:
        raise ValidationFailed("The file is empty.", fields={"file": ["The file is empty."]})
    header = _header_of(content)
    with transaction.atomic():
        return _job_store(
            actor=actor,
            content=content,
            filename=filename,
            mapping=mapping_suggest(header),
            options=ImportOptions(),
            status=ImportJob.Status.DRAFT,
        )


def _header_of(content: bytes) -> list[str]:
    if len(content) > settings.IMPORT_MAX_FILE_MB * 1024 * 1024:
        raise ValidationFailed(f"The file is larger than {settings.IMPORT_MAX_FILE_MB} MB.")
    try:
        content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationFailed(
            f"The file is not UTF-8 text (bad byte at position {exc.start}); save the CSV as UTF-8 and try again."
        ) from None
    _, header = _read_header(_open_text(content))
    return header


def import_columns(*, job: ImportJob, rows: int = 5) -> tuple[list[str], list[list[str]]]:
    """The file's header and its first ``rows`` data rows (cells as in the file), for mapping."""
    with job.file.open("rb") as handle:
        reader, header = _read_header(_open_text(handle))
        sample: list[list[str]] = []
        try:
            for record in reader:
                if not any(c.strip() for c in record):
                    continue
                sample.append([record[i].strip() if i < len(record) else "" for i in range(len(header))])
                if len(sample) >= rows:
                    break
        except (UnicodeDecodeError, csv.Error):
            pass  # the dry run reports where the file breaks
    return header, sample


def _draft(job_id: int) -> ImportJob:
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:
        raise NotFound("No such import.")
    if job.status != ImportJob.Status.DRAFT:
        raise ValidationFailed("This import has already started; upload the file again to import it once more.")
    return job


def import_configure(*, job_id: int, mapping: dict, options: ImportOptions) -> ImportJob:
    """Save a draft's mapping (checked against its file: an email column, known fields) and options."""
    job = _draft(job_id)
    with job.file.open("rb") as handle:
        header = _read_header(_open_text(handle))[1]
    job.mapping = _check_mapping(dict(mapping), header)
    job.source, job.channel, job.campaign = options.source, options.channel, options.campaign
    job.save(update_fields=["mapping", "source", "channel", "campaign", "updated_at"])
    return job


def import_job_options(job: ImportJob) -> ImportOptions:
    return ImportOptions(source=job.source, channel=job.channel, campaign=job.campaign)


def import_job_preview(*, job: ImportJob) -> dict:
    """The dry run of a stored file with its saved mapping and options: nothing is written."""
    with job.file.open("rb") as handle:
        content = handle.read()
    return import_preview(content=content, mapping=job.mapping, options=import_job_options(job))


def import_start(*, job_id: int) -> ImportJob:
    """Queue a configured draft (``draft`` → ``pending``); a worker runs it after commit."""
    with transaction.atomic():
        claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.DRAFT).update(
            status=ImportJob.Status.PENDING, updated_at=timezone.now()
        )
        job = ImportJob.objects.filter(pk=job_id).first()
        if job is None:
            raise NotFound("No such import.")
        if claimed:
            with job.file.open("rb") as handle:
                _check_mapping(dict(job.mapping), _read_header(_open_text(handle))[1])
            _job_queue(job)
    return job


def _count_rows(job: ImportJob) -> int:
    with job.file.open("rb") as handle:
        reader, _ = _read_header(_open_text(handle))
        return sum(1 for record in reader if any(c.strip() for c in record))


def import_run(*, job_id: int, batch_size: int | None = None) -> ImportJob:
    """Process (or resume) an import job. Safe to call twice: each batch locks the job row
    (``SKIP LOCKED``) and re-reads ``processed_rows`` before writing, so two workers never
    import the same rows."""
    batch_size = batch_size or settings.IMPORT_BATCH_SIZE
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:
        raise NotFound("No such import.")
    if job.status == ImportJob.Status.DONE:
        return job
    claimed = ImportJob.objects.filter(
        pk=job_id, status__in=[ImportJob.Status.PENDING, ImportJob.Status.RUNNING, ImportJob.Status.FAILED]
    ).update(status=ImportJob.Status.RUNNING, updated_at=timezone.now())
    if not claimed:
        return job
    try:
        if not job.total_rows:
            ImportJob.objects.filter(pk=job_id).update(total_rows=_count_rows(job))
        with job.file.open("rb") as handle:
            rows = _iter_rows(_open_text(handle), job.mapping, skip=job.processed_rows)
            while True:
                batch = []
                for item in rows:
                    batch.append(item)
                    if len(batch) >= batch_size:
                        break
                if not batch:
                    break
                if not _import_batch(job_id, batch):
                    return ImportJob.objects.get(pk=job_id)  # another worker has the job
        ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.RUNNING).update(
            status=ImportJob.Status.DONE, finished_at=timezone.now(), updated_at=timezone.now()
        )
    except ValidationFailed as exc:
        ImportJob.objects.filter(pk=job_id).update(status=ImportJob.Status.FAILED, updated_at=timezone.now())
        _append_errors(job_id, [{"row": None, "line": None, "email": "", "error": exc.message}])
    except Exception:
        # Leave whole batches committed; the job stays resumable (run it again).
        logger.exception("import %s stopped", job_id)
        ImportJob.objects.filter(pk=job_id).update(status=ImportJob.Status.FAILED, updated_at=timezone.now())
        raise
    return ImportJob.objects.get(pk=job_id)


def _append_errors(job_id: int, errors: list[dict]) -> None:
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job_id)
        room = MAX_STORED_ERRORS - len(job.errors)
        job.errors = job.errors + errors[: max(0, room)]
        job.save(update_fields=["errors", "updated_at"])


@transaction.atomic
def _import_batch(job_id: int, batch: list[tuple[int, ParsedRow | None, dict | None]]) -> bool:
    job = ImportJob.objects.select_for_update(skip_locked=True).filter(pk=job_id).first()
    if job is None or job.status != ImportJob.Status.RUNNING:
        return False
    first_number = batch[0][0]
    if first_number != job.processed_rows + 1:
        return False  # someone else advanced the job: do not import these rows twice
    errors = [error for _, _, error in batch if error]
    parsed = [row for _, row, _ in batch if row]
    # Later rows of the same email fill what earlier ones left blank.
    merged: dict[str, ParsedRow] = {}
    for row in parsed:
        if row.email in merged:
            target = merged[row.email]
            for key, value in row.values.items():
                target.values.setdefault(key, value)
            for key, value in row.custom.items():
                target.custom.setdefault(key, value)
            if target.consent is None:
                target.consent = row.consent
        else:
            merged[row.email] = ParsedRow(
                line=row.line, email=row.email, values=dict(row.values), custom=dict(row.custom), consent=row.consent
            )

    now = timezone.now()
    file_wide = {"source": job.source or IMPORT_SOURCE, "channel": job.channel or Channel.IMPORT}
    if job.campaign:
        file_wide["utm_campaign"] = job.campaign
    for row in merged.values():
        for key, value in file_wide.items():
            row.values.setdefault(key, value)
    # Business domains → their company (made when first seen): two statements per batch.
    domains = {email: email_domain(email) for email in merged}
    domains = {email: domain for email, domain in domains.items() if is_business_domain(domain)}
    profiles: dict[str, dict[str, str]] = {}
    for email, domain in domains.items():
        values = merged[email].values
        profiles.setdefault(domain, {k: values[k] for k in COMPANY_FIELDS if values.get(k)})
    company_ids = companies_ensure(profiles=profiles, now=now)
    opted_in = consent_fields(ConsentStatus.OPT_IN, source=f"import:{job_id}", at=now)
    entered = leads_enter_funnel(
        entries=[
            Entry(
                lead=Lead(
                    email=email,
                    company_id=company_ids.get(domains.get(email, "")),
                    custom_fields=merge_custom({}, row.custom, overwrite=False),
                    created_at=now,
                    updated_at=now,
                    stage_changed_at=now,
                    **row.values,
                    **(opted_in if row.consent else {}),
                ),
                cause=TransitionCause.SYSTEM,
                cause_ref=f"import:{job_id}",
                reason=f"Imported from a CSV file ({job.original_name})"
                if job.original_name
                else "Imported from a CSV file",
                company_domain=domains.get(email),
            )
            for email, row in merged.items()
        ],
        touch=False,
    )
    created = list({lead.pk: lead for lead in entered.leads.values() if lead.pk in entered.created}.values())
    # An existing lead keeps what it has: the file fills only the blanks. (A merged lead's email
    # and its survivor's may both be in the file: one lead, changed once.)
    changed, changed_fields, seen = [], set(), set()
    for email, row in merged.items():
        lead = entered.leads[email]
        if lead.pk in entered.created:
            continue
        dirty = False
        for key, value in row.values.items():
            if not getattr(lead, key):
                setattr(lead, key, value)
                changed_fields.add(key)
                dirty = True
        if row.consent and lead.consent_status == ConsentStatus.NONE:
            # An opt-in the file records; a lead's withdrawal or pending confirmation is never overridden.
            for key, value in opted_in.items():
                setattr(lead, key, value)
            changed_fields.update(opted_in)
            dirty = True
        custom = merge_custom(lead.custom_fields, row.custom, overwrite=False)  # only the blanks, capped
        if custom != (lead.custom_fields or {}):
            lead.custom_fields = custom
            changed_fields.add("custom_fields")
            dirty = True
        if dirty and lead.pk not in seen:
            seen.add(lead.pk)
            lead.updated_at = now
            changed.append(lead)
    if changed:
        Lead.objects.bulk_update(changed, sorted(changed_fields | {"updated_at"}))
    leads_score(profile_lead_ids={lead.pk for lead in created + changed})
    room = max(0, MAX_STORED_ERRORS - len(job.errors))
    job.errors = job.errors + errors[:room]
    job.processed_rows += len(batch)
    job.created_count += len(created)
    job.updated_count += len(changed)
    job.error_count += len(errors)
    job.save(update_fields=["errors", "processed_rows", "created_count", "updated_count", "error_count", "updated_at"])
    return True


# --- reading -----------------------------------------------------------------------------


def import_errors_csv_rows(job: ImportJob):
    """Rows of the downloadable error report: header first."""
    yield ["row", "line", "email", "error"]
    for error in job.errors:
        yield [error.get("row"), error.get("line"), error.get("email", ""), error.get("error", "")]
