"""Run the whole stack in the foreground: web server, Celery worker and Celery beat.

Ctrl-C (SIGINT) or SIGTERM stops all three cleanly. Used by ``make run``.
"""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from leadfunnel.celery import app as celery_app


class Command(BaseCommand):
    help = "Migrate, seed the demo data the first time, and run web + worker + beat."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default="127.0.0.1:8000")
        parser.add_argument("--no-seed", action="store_true")

    def handle(self, *args, **options):
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        for folder in ("queue", "processed"):
            (settings.BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        marker = settings.VAR_DIR / ".demo-seeded"
        db_marker = f"{settings.DATABASES['default']['NAME']}"
        needs_seed = not options["no_seed"] and (not marker.exists() or marker.read_text() != db_marker)
        if needs_seed:
            # Users first (seconds), so the login page works at once and the logins are printed;
            # the rest of the demo (leads, histories, sequences, a trained model) loads below
            # while the web server already answers.
            call_command("seed_demo", "--users-only")

        python = sys.executable
        env = dict(os.environ)
        queues = ",".join(queue.name for queue in settings.CELERY_TASK_QUEUES)
        commands = {
            "web": [
                python,
                "-m",
                "gunicorn",
                "leadfunnel.wsgi:application",
                "--bind",
                options["bind"],
                "--workers",
                "2",
                "--threads",
                "4",
                "--access-logfile",
                "-",
                "--graceful-timeout",
                "5",
            ],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "leadfunnel",
                "worker",
                "-Q",
                queues,
                "--concurrency",
                "2",
                "--loglevel",
                "INFO",
            ],
            "beat": [
                python,
                "-m",
                "celery",
                "-A",
                "leadfunnel",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(settings.VAR_DIR / "celerybeat-schedule"),
            ],
        }
        procs = {name: subprocess.Popen(cmd, env=env, start_new_session=True) for name, cmd in commands.items()}
        seeding = None
        if needs_seed:
            self.stdout.write("Loading the demo data set in the background (about a minute on first run)…")
            seeding = subprocess.Popen([python, "manage.py", "seed_demo"], env=env, start_new_session=True)
        broker = celery_app.conf.broker_url.split("@")[-1]
        self.stdout.write(
            self.style.SUCCESS(
                f"\nLeadFunnel is running at http://{options['bind']}/  (API docs: http://{options['bind']}/api/docs/)\n"
                f"Database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]} · broker: {broker}\n"
                "Demo logins: marketer, sales, sales2, admin (passwords printed above on the first run).\n"
                "Press Ctrl-C to stop web, worker and beat.\n"
            )
        )

        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                if seeding is not None and seeding.poll() is not None:
                    if seeding.returncode == 0:
                        marker.write_text(db_marker)
                        self.stdout.write(self.style.SUCCESS("Demo data loaded."))
                    else:
                        self.stderr.write("Loading the demo data failed; run `manage.py seed_demo` to see why.")
                    seeding = None
                for name, proc in procs.items():
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with code {proc.returncode}; stopping the others.")
                        stopping = True
                        break
                time.sleep(0.5)
        finally:
            if seeding is not None and seeding.poll() is None:
                procs["seed"] = seeding
            # SIGTERM to each main process only: gunicorn's master and Celery's worker stop their own
            # children (a warm shutdown). Signalling the whole group made the worker's pool processes
            # die under it, which Celery logs as errors. The group is killed only if one hangs.
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            deadline = time.time() + 15
            for proc in procs.values():
                try:
                    proc.wait(timeout=max(0.1, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
            self.stdout.write("Stopped web, worker and beat.")
