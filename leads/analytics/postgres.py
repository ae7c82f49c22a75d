"""The SQL of the reports' PostgreSQL fast paths (cohort, channel quality, time in stage): one pass
over the recent transitions and the attribution copied onto them (migration 0003) instead of the
ORM's correlated subqueries, kept in one place beside the portable ORM versions the reports fall
back to on other databases. Only our own column names and literals are interpolated."""

from datetime import datetime

from django.db import connection
from django.db.models.expressions import RawSQL

# One pass over the transitions since the period start (window function or GROUP BY per
# lead and cycle) instead of a correlated subquery per transition. Everything that follows
# an entry in the period happened after ``since``, so nothing older needs reading.

# The lead's attribution as copied onto each transition (migration 0003, PostgreSQL only).
_PG_COPY = {
    "source": "lead_source",
    "channel": "lead_channel",
    "form": "lead_first_form_id",
    "utm_campaign": "lead_utm_campaign",
}
_PG_FORM_JOIN = "LEFT JOIN leads_form f ON f.id = {alias}.lead_first_form_id"


def _pg_group_expr(group_by: str | None, *, alias: str, owner: str, cycle: str) -> tuple[str, str]:
    """(SQL expression for the group, joins it needs) — names are ours, never user input."""
    # Text keys group under the "C" collation: byte comparisons sort far faster than the
    # database's linguistic collation, and equality (all grouping needs) is the same.
    if group_by is None:
        return 'NULL::text COLLATE "C"', ""
    if group_by == "owner":
        return owner, ""
    if group_by == "cycle":
        return cycle, ""
    if group_by == "form":
        return 'f.slug COLLATE "C"', _PG_FORM_JOIN.format(alias=alias)
    return f'{alias}.{_PG_COPY[group_by]} COLLATE "C"', ""


def _pg_scope(scope, column: str) -> tuple[str, list]:
    """``AND <column> IN (<the scope's query>)`` for a report limited to some leads (a segment),
    the scope's own SQL and parameters as Django compiles them; nothing without a scope."""
    if scope is None:
        return "", []
    if isinstance(scope, RawSQL):  # scope_materialized's array of ids
        sql, params = scope.sql, scope.params
    else:
        sql, params = scope.query.sql_with_params()
    return f" AND {column} IN ({sql})", list(params)


def _pg_cycles_sql(since: datetime, until: datetime, entered: str, read: str, scope=None) -> tuple[str, list]:
    """Per lead and cycle, the first entry into each stage since ``since``, for the leads that
    entered one of the stages ``entered`` (an SQL list of our own literals) in ``[since, until)``.
    Only transitions into the stages ``read`` are aggregated (each column below looks at its own
    stages, so the others cannot change the columns the caller uses). Within a cycle a lead enters
    MQL/PQL (and SQL) at most once — so MIN(owner) is that entry's owner — and SAL, SQL, customer,
    lost only after it. ``scope`` (a query of lead ids) limits it to those leads."""
    scoped, scope_params = _pg_scope(scope, "st.lead_id")
    sql = f"""
        SELECT st.lead_id, st.cycle,
            MIN(st.at) FILTER (WHERE st.to_stage IN ('mql', 'pql')) AS entry_at,
            MIN(st.owner_id) FILTER (WHERE st.to_stage IN ('mql', 'pql')) AS entry_owner,
            MIN(st.at) FILTER (WHERE st.to_stage = 'sal') AS sal_at,
            MIN(st.at) FILTER (WHERE st.to_stage = 'sql') AS sql_at,
            MIN(st.owner_id) FILTER (WHERE st.to_stage = 'sql') AS sql_owner,
            MIN(st.at) FILTER (WHERE st.to_stage = 'customer') AS customer_at,
            MIN(st.at) FILTER (WHERE st.to_stage = 'lost') AS lost_at,
            MIN(st.at) FILTER (WHERE st.to_stage = 'recycled' AND st.from_stage IN ('mql', 'pql')) AS rejected_at,
            MIN(st.lead_source) AS lead_source, MIN(st.lead_channel) AS lead_channel,
            MIN(st.lead_utm_campaign) AS lead_utm_campaign, MIN(st.lead_first_form_id) AS lead_first_form_id
        FROM leads_stagetransition st
        WHERE st.at >= %s AND st.to_stage IN ({read}) AND st.lead_id IN (
            SELECT e.lead_id FROM leads_stagetransition e
            WHERE e.to_stage IN ({entered}) AND e.at >= %s AND e.at < %s
        ){scoped}
        GROUP BY st.lead_id, st.cycle
    """  # noqa: S608 - only our own literals and the scope's compiled query are interpolated
    return sql, [since, since, until, *scope_params]


def _pg_cohort_raw(since: datetime, until: datetime, group_by: str | None, scope=None) -> tuple[str, list]:
    cycles, params = _pg_cycles_sql(
        since, until, "'mql', 'pql'", "'mql', 'pql', 'sal', 'sql', 'customer', 'recycled'", scope
    )
    grp, joins = _pg_group_expr(group_by, alias="c", owner="c.entry_owner", cycle="c.cycle")
    sql = f"""
        SELECT {grp} AS grp, c.entry_at AS at, c.sal_at, c.sql_at, c.customer_at, c.rejected_at
        FROM ({cycles}) c {joins}
        WHERE c.entry_at >= %s AND c.entry_at < %s
    """  # noqa: S608 - only our own column names are interpolated
    return sql, [*params, since, until]


def _pg_quality_raw(since: datetime, until: datetime, group_by: str, scope=None) -> tuple[str, list]:
    cycles, params = _pg_cycles_sql(since, until, "'sql'", "'sql', 'customer', 'lost'", scope)
    grp, joins = _pg_group_expr(group_by, alias="c", owner="c.sql_owner", cycle="c.cycle")
    sql = f"""
        SELECT {grp} AS grp, c.sql_at, c.customer_at, c.lost_at
        FROM ({cycles}) c {joins}
        WHERE c.sql_at >= %s AND c.sql_at < %s
    """  # noqa: S608 - only our own column names are interpolated
    return sql, [*params, since, until]


def _pg_durations_raw(since: datetime, until: datetime, group_by: str | None, scope=None) -> tuple[str, list]:
    # left_at (the lead's next transition) is kept on each row by a trigger (migration 0003).
    grp, joins = _pg_group_expr(group_by, alias="st", owner="st.owner_id", cycle="st.cycle")
    scoped, scope_params = _pg_scope(scope, "st.lead_id")
    sql = f"""
        SELECT {grp} AS grp, st.to_stage COLLATE "C" AS stage, st.at, st.left_at
        FROM leads_stagetransition st {joins}
        WHERE st.at >= %s AND st.at < %s{scoped}
    """  # noqa: S608 - only our own column names and the scope's compiled query are interpolated
    return sql, [since, until, *scope_params]


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"
