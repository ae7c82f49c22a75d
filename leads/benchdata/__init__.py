"""The benchmark data set behind ``manage.py seed_bench``: realistic, reproducible, loaded fast.

What it loads: sales reps and a marketer, companies, a handful of forms, leads spread over every
funnel stage with stage histories that agree with their current stage (including recycled leads
that came back in a second cycle), opportunities for SQLs and their outcomes, form submissions for
inbound leads, and interactions spread over the interaction types, over time and over leads (a few
very active leads, a long tail of quiet ones) with the properties the scoring rules look at
(pricing page views, webinar minutes, trade-show follow-ups, ...).

The same seed and reference time give the same data (ids included, after a reset): the benchmarks'
template databases rely on it. Scores are seeded with plausible values that agree with the stage;
the scoring engine's full recompute replaces them with real ones. Rows go in with PostgreSQL COPY
(:mod:`.pgcopy`); :mod:`.loader` runs the loaders by subject in a fixed order.
"""

from .loader import Loaded, load

__all__ = ["Loaded", "load"]
