"""The baseline for the intake benchmark: a bare Django view doing one upsert into a plain table."""

TABLE = "bench_baseline_lead"

DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id bigserial PRIMARY KEY,
    email varchar(254) NOT NULL UNIQUE,
    first_name varchar(100) NOT NULL DEFAULT '',
    last_name varchar(100) NOT NULL DEFAULT '',
    title varchar(150) NOT NULL DEFAULT '',
    company varchar(200) NOT NULL DEFAULT '',
    payload jsonb NOT NULL DEFAULT '{{}}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""


def ensure_table(connection) -> None:
    with connection.cursor() as cursor:
        cursor.execute(DDL)
