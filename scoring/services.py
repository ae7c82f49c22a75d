"""Scoring writes. The leads app calls these inside the transaction that stores
interactions or profile changes; they keep the lead's scores current."""

from leads.models import Interaction, Lead


def score_interactions(*, lead: Lead, interactions: list[Interaction]) -> None:
    """Apply the scoring rules to newly stored interactions of one lead (incremental)."""


def score_interactions_bulk(*, interactions: list[Interaction]) -> None:
    """Set-based variant for the bulk endpoint: many leads, many interactions."""


def score_profile_change(*, lead: Lead) -> None:
    """Re-evaluate the profile (fit) rules of one lead after its fields changed."""
