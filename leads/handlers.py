"""The leads app's outbox handlers (run in a worker, inside the transaction that marks the message
dispatched): the funnel acting on scoring's decisions made outside a request."""

from leadfunnel.outbox import outbox_handler

from .services import leads_promote_qualified


@outbox_handler("scoring.recomputed")
def promote_after_recompute(payload: dict) -> None:
    """A full recompute finished: move the visitors that now qualify into MQL (reps, SLA)."""
    leads_promote_qualified(job_id=payload["job_id"])
