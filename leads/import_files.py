"""The uploaded import files (``ImportJob.file``, under MEDIA ``imports/``) when a person is erased
or their retention period ends.

An erasure rewrites every stored file that names the address (any letter case) without the
person's rows: the header and everyone else's rows keep their exact bytes (encoding, quoting,
line endings untouched); a row that only mentions the address in another cell (someone else's,
"referred by") keeps its place with those cells blanked. The new file is written under a new name
in the same storage, the job row is pointed at it, then the old file is deleted: the job always
names a complete file.

A job not finished yet (draft, pending, running, failed and resumable) is rewritten too: a row of
the person's left in it would bring their address back when the rest of the file is imported.
``import_run`` resumes after ``processed_rows`` data rows, so a removed row already imported
lowers ``processed_rows`` (and ``total_rows``) by one: the rows left are neither skipped nor
imported twice. A running job is set back to pending and queued again, so a worker still reading
the old file stops at its next batch (its batch no longer matches) and the new file is resumed.
"""

import csv
import io
import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from leadfunnel.outbox import outbox_publish

from .models import ImportJob

logger = logging.getLogger(__name__)

# Bytes that are not UTF-8 go through unchanged (``surrogateescape``): a rewrite changes nothing
# but the person's rows.
_CODEC = ("utf-8", "surrogateescape")
# A physical line as the import reads it (universal newlines: \r\n, \r or \n), its ending kept.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


@dataclass(frozen=True)
class Rewritten:
    content: bytes
    # Data rows (non-blank records, as ``import_run`` counts them) removed, by their number.
    removed_rows: tuple[int, ...]


def _decode(content: bytes) -> str:
    return content.decode(*_CODEC)


def file_mentions(content: bytes, email: str) -> bool:
    return email.lower() in _decode(content).lower()


def _records(text: str):
    """Yield ``(raw text, cells)`` per CSV record, the raw text being its physical lines exactly
    (a quoted cell may span lines). A file the csv module cannot read goes on line by line."""
    lines = _LINE.findall(text)
    reader = csv.reader(iter(lines))
    consumed = 0
    while consumed < len(lines):
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error:
            # Malformed from here on (the import stops there too): the rest is judged one
            # physical line at a time, its cells split at commas.
            for line in lines[consumed:]:
                yield line, line.rstrip("\r\n").split(",")
            return
        yield "".join(lines[consumed : reader.line_num]), cells
        consumed = reader.line_num


def _ending(raw: str) -> str:
    stripped = raw.rstrip("\r\n")
    return raw[len(stripped) :]


def content_without(content: bytes, email: str) -> Rewritten:
    """``content`` (a CSV) without the rows of ``email`` (a cell that is the address, any case);
    other rows naming it have those cells blanked. The header row always stays."""
    needle = email.strip().lower()
    parts: list[str] = []
    removed: list[int] = []
    number = 0
    for index, (raw, cells) in enumerate(_records(_decode(content))):
        if index == 0:  # the header
            parts.append(raw)
            continue
        blank = not any(c.strip() for c in cells)
        if not blank:
            number += 1
        if needle not in raw.lower():
            parts.append(raw)
        elif any(c.strip().lower() == needle for c in cells):
            removed.append(number)
        else:
            out = io.StringIO()
            csv.writer(out, lineterminator=_ending(raw)).writerow(["" if needle in c.lower() else c for c in cells])
            parts.append(out.getvalue())
    return Rewritten(content="".join(parts).encode(*_CODEC), removed_rows=tuple(removed))


def import_files_naming(*, email: str) -> list[int]:
    """The ids of the jobs whose stored file names ``email`` (any case). Reads only."""
    found = []
    for job in ImportJob.objects.exclude(file="").only("pk", "file").order_by("pk"):
        try:
            with job.file.open("rb") as handle:
                if file_mentions(handle.read(), email):
                    found.append(job.pk)
        except OSError:
            logger.warning("import %s: its file %s cannot be read", job.pk, job.file.name)
    return found


def _replace(job_id: int, email: str) -> None:
    new = storage = None
    try:
        with transaction.atomic():
            job = ImportJob.objects.select_for_update().filter(pk=job_id).exclude(file="").first()
            if job is None:
                return
            old, storage = job.file.name, job.file.storage
            with job.file.open("rb") as handle:
                rewritten = content_without(handle.read(), email)
            new = storage.save(f"imports/{os.path.basename(old)}", ContentFile(rewritten.content))
            fields = ["file", "updated_at"]
            job.file.name = new
            if job.status != ImportJob.Status.DONE:
                job.processed_rows -= sum(1 for number in rewritten.removed_rows if number <= job.processed_rows)
                if job.total_rows:
                    job.total_rows = max(0, job.total_rows - len(rewritten.removed_rows))
                fields += ["processed_rows", "total_rows"]
                if job.status == ImportJob.Status.RUNNING:
                    job.status = ImportJob.Status.PENDING
                    fields.append("status")
                    outbox_publish(topic="import.requested", payload={"job_id": job.pk})
            job.save(update_fields=fields)
    except BaseException:
        if new is not None:
            storage.delete(new)
        raise
    storage.delete(old)


def import_files_erase(*, job_ids: list[int], email: str) -> None:
    """Rewrite the files of ``job_ids`` without the rows of ``email``. Each file on its own: a
    failure is logged and the others are still rewritten."""
    for job_id in job_ids:
        try:
            _replace(job_id, email)
        except Exception:
            logger.exception("import %s: its file could not be rewritten for an erasure", job_id)


def import_files_apply_retention(*, cutoff: datetime) -> int:
    """Delete the stored files of imports finished before ``cutoff`` (the job row, its counts
    and its error report stay). Answers how many files were deleted."""
    deleted = 0
    jobs = ImportJob.objects.filter(status=ImportJob.Status.DONE, finished_at__lt=cutoff).exclude(file="")
    for job in jobs.only("pk", "file").order_by("pk"):
        try:
            job.file.storage.delete(job.file.name)
        except OSError:
            logger.exception("import %s: its file could not be deleted", job.pk)
            continue
        deleted += ImportJob.objects.filter(pk=job.pk, file=job.file.name).update(file="", updated_at=timezone.now())
    return deleted
