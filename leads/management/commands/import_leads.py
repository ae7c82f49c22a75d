"""Import leads from a CSV file: ``manage.py import_leads leads.csv --map email=Email,first_name=First``."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from leadfunnel.errors import ValidationFailed
from leads.imports import import_create, import_options_clean, import_preview, import_run, mapping_parse_option
from leads.models import ImportJob


class Command(BaseCommand):
    help = "Import leads from a CSV file (dedupe by email, fill blanks of existing leads, source 'import')."

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", help="CSV file with a header row (UTF-8)")
        parser.add_argument(
            "--map",
            default="",
            help="field=Column pairs, comma-separated, e.g. email=Email,first_name=First Name,custom:plan=Plan "
            "(default: columns named like lead fields)",
        )
        parser.add_argument("--source", default="", help="source of every lead (default: import)")
        parser.add_argument("--channel", default="", help="channel of every lead, e.g. event (default: import)")
        parser.add_argument("--campaign", default="", help="campaign (utm_campaign) of every lead")
        parser.add_argument("--dry-run", action="store_true", help="parse and validate only; write nothing")
        parser.add_argument("--resume", type=int, metavar="JOB_ID", help="resume an interrupted import job")
        parser.add_argument("--batch-size", type=int, default=None)

    def handle(self, *args, **options):
        try:
            if options["resume"]:
                job = import_run(job_id=options["resume"], batch_size=options["batch_size"])
                return self._report(job)
            if not options["file"]:
                raise CommandError("Give a CSV file (or --resume JOB_ID).")
            path = Path(options["file"])
            if not path.is_file():
                raise CommandError(f"No such file: {path}")
            content = path.read_bytes()
            mapping = mapping_parse_option(options["map"])
            file_wide = import_options_clean(
                source=options["source"], channel=options["channel"], campaign=options["campaign"]
            )
            if options["dry_run"]:
                result = import_preview(content=content, mapping=mapping, options=file_wide)
                self.stdout.write(json.dumps(result, indent=2, default=str))
                return None
            # Run here, in this process (no worker needed); the job row records progress.
            job = import_create(
                actor=None, content=content, filename=path.name, mapping=mapping, queue=False, options=file_wide
            )
            job = import_run(job_id=job.pk, batch_size=options["batch_size"])
            return self._report(job)
        except ValidationFailed as exc:
            raise CommandError(exc.message) from None

    def _report(self, job: ImportJob) -> None:
        self.stdout.write(
            f"Import {job.pk}: {job.status}; {job.processed_rows}/{job.total_rows} rows, "
            f"{job.created_count} created, {job.updated_count} updated, {job.error_count} errors."
        )
        for error in job.errors[:20]:
            self.stdout.write(f"  row {error.get('row')}: {error.get('email', '')} — {error.get('error')}")
        if job.status == ImportJob.Status.FAILED:
            raise CommandError(f"Import {job.pk} stopped; resume it with --resume {job.pk}.")
