"""Funnel analytics, computed from the recorded stage history (``StageTransition``), never
from leads' current stage alone. Read-only selectors used by the funnel API and the dashboard.

Every function takes a half-open period ``[since, until)`` (aware datetimes) and an optional
``group_by`` among :data:`GROUP_BY_CHOICES`; it runs a constant number of aggregate queries
(no per-lead or per-group queries) and returns plain dicts/lists ready for JSON:

- :func:`funnel_summary` (``period``) — period view: entries into each stage, conversions
  between consecutive stages, MQL:SAL ratio, rejection reasons, recycle counts.
- :func:`funnel_cohort` (``cohort``) — cohort view: of the leads that became MQL/PQL in the
  period, how many reached SAL / SQL / customer (any time since, same cycle) and the median/p90 days.
- :func:`stage_durations` (``durations``) — median and p90 hours spent in each stage entered in the period.
- :func:`channel_quality` (``quality``) — of the SQLs of the period, how many were won, lost, still open.
- :func:`expansion_counts` (``expansions``) — customers' expansion opportunities opened in the period, apart.
- :func:`sla_report` (``reps``) — reps' response time (``first_response_at − assigned_at``) against the SLA.
- :func:`funnel_report` (``report``) — all of the above as the funnel API answers it (uncached; the API caches).

``params`` parses the API's query parameters, ``common`` holds the grouping and labels every
report shares, ``postgres`` the PostgreSQL fast paths' SQL.

Groups are ``{"key": <raw value or null>, "label": <text>, ...}``; ``key`` is ``null`` for
the ungrouped total and for leads without a value. Percentiles use PostgreSQL's
``percentile_cont`` (linear interpolation); on SQLite the same numbers are computed in
Python over the fetched durations (fine for the embedded demo, not for 100k leads).
"""

from .cohort import COHORT_STEPS, funnel_cohort
from .common import AWAITING
from .durations import percentile_cont, stage_durations
from .expansions import expansion_counts
from .params import DEFAULT_PERIOD, GROUP_BY_CHOICES, parse_group_by, parse_period
from .period import CONVERSIONS, PERIOD_STAGES, funnel_summary
from .quality import channel_quality
from .report import _PERIOD_KEYS, ANALYTICS_WORK_MEM, funnel_report
from .reps import sla_report

__all__ = [
    "ANALYTICS_WORK_MEM",
    "AWAITING",
    "COHORT_STEPS",
    "CONVERSIONS",
    "DEFAULT_PERIOD",
    "GROUP_BY_CHOICES",
    "PERIOD_STAGES",
    "_PERIOD_KEYS",
    "channel_quality",
    "expansion_counts",
    "funnel_cohort",
    "funnel_report",
    "funnel_summary",
    "parse_group_by",
    "parse_period",
    "percentile_cont",
    "sla_report",
    "stage_durations",
]
