"""Segments: named, saved sets of leads (smart lists compiled to one query; static lists).

- :mod:`.conditions` — the definition's vocabulary and validation (pure, no ORM);
- :mod:`.compiler` — a definition into one ``Q`` over leads (behaviour as ``EXISTS`` subqueries);
- :mod:`.selectors` — a segment's leads, live counts, the lists a lead is on;
- services in :mod:`leads.services.segments` — create, change, delete; static members (id, email, CSV).
"""
