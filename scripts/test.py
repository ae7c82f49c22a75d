"""Run the test suite on PostgreSQL when it is reachable, else on SQLite (loudly).

Used by ``make test``. ``DATABASE_URL`` wins when set; otherwise the standard
local PostgreSQL (127.0.0.1:5432, user postgres) is used if it answers.
Any extra arguments go to pytest.
"""

import os
import shutil
import socket
import subprocess
import sys


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def main() -> int:
    env = dict(os.environ)
    if not env.get("DATABASE_URL") and reachable("127.0.0.1", 5432):
        env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/postgres"
    if env.get("DATABASE_URL", "").startswith("postgres"):
        print(f"LeadFunnel tests: PostgreSQL at {env['DATABASE_URL'].split('@')[-1]}")
    else:
        print("=" * 78)
        print("LeadFunnel tests: PostgreSQL NOT reachable -> running on SQLite;")
        print("PostgreSQL-only tests (concurrency, locking) will be SKIPPED.")
        print("=" * 78)
    if not shutil.which("redis-server"):
        print("LeadFunnel tests: redis-server NOT installed -> tests needing a real Redis will be SKIPPED.")
    cmd = [sys.executable, "-m", "pytest", *sys.argv[1:]]
    return subprocess.call(cmd, env=env)


if __name__ == "__main__":
    sys.exit(main())
