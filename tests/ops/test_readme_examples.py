"""Every curl example in README.md runs as written against the demo data `make run` loads.

The README's shell blocks that call the API are run by bash, in order, against a live server
holding the demo (ids as on a fresh install): the token line creates a real token through
``manage.py`` like a reader would, and each curl's HTTP status is recorded. An example that
answers 4xx or 5xx is a README that lies to its reader.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from tests.conftest import test_database_url as database_url_of_the_tests

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

pytestmark = [
    pytest.mark.django_db(transaction=True, reset_sequences=True),
    pytest.mark.slow,
    pytest.mark.postgres,
]

# Every curl of a block reports its status and body; the shell function keeps the command as written.
PRELUDE = r"""
curl() {
  local body status
  body=$(mktemp)
  status=$(command curl -sS -o "$body" -w '%{http_code}' "$@")
  printf '%s\t%s\t%s\n' "$status" "$(printf '%s ' "$@" | tr '\n\t' '  ')" "$(head -c 300 "$body" | tr '\n\t' '  ')" >> "$LF_STATUS_LOG"
  cat "$body"
  rm -f "$body"
}
"""


def api_blocks(text: str) -> list[str]:
    """The ```sh blocks that talk to the running app (curl), in README order."""
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    return [block for block in blocks if "curl " in block and "127.0.0.1:8000" in block]


def test_the_readme_has_api_examples_and_says_where_the_token_comes_from():
    text = README.read_text()
    assert len(api_blocks(text)) >= 4
    assert "drf_create_token marketer" in text


@pytest.mark.skipif(not shutil.which("curl"), reason="needs curl")
def test_every_readme_api_example_answers_2xx_on_the_demo(live_server, tmp_path):
    for role in ("marketer", "sales"):  # a transactional test starts without the migrations' groups
        Group.objects.get_or_create(name=role)
    call_command("seed_demo", "--password", "demo-pass-123")
    log = tmp_path / "status.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_the_tests(),
        "LF_STATUS_LOG": str(log),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    port = live_server.url.rsplit(":", 1)[1]
    failures = []
    # One shell for the whole README, as a reader's terminal: variables set by one block are seen by the next.
    script = PRELUDE + "\n".join(api_blocks(README.read_text()))
    script = script.replace(".venv/bin/python", sys.executable).replace("127.0.0.1:8000", f"localhost:{port}")
    done = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        failures.append(f"the examples' shell exited {done.returncode}: {done.stderr[-800:]}")
    lines = log.read_text().splitlines() if log.exists() else []
    assert len(lines) >= 9, lines
    for line in lines:
        status, command, body = (line.split("\t") + ["", ""])[:3]
        if not status.startswith("2"):
            failures.append(f"{status}: curl {command}\n   -> {body}")
    assert not failures, "README examples that fail on the demo:\n" + "\n".join(failures)
