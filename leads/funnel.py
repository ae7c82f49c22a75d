"""The funnel's rules as pure data: which stage moves are legal, and what each means.

No ORM here, so the rules are unit-tested on their own and shown to users as-is.
"""

from .models import Stage

# Every legal move. Anything else is an IllegalTransition (409).
ALLOWED_MOVES: dict[str, frozenset[str]] = {
    Stage.VISITOR: frozenset({Stage.MQL, Stage.PQL, Stage.DISQUALIFIED}),
    Stage.RECYCLED: frozenset({Stage.MQL, Stage.PQL, Stage.DISQUALIFIED}),
    Stage.MQL: frozenset({Stage.SAL, Stage.RECYCLED, Stage.DISQUALIFIED}),
    Stage.PQL: frozenset({Stage.SAL, Stage.RECYCLED, Stage.DISQUALIFIED}),
    Stage.SAL: frozenset({Stage.SQL, Stage.RECYCLED, Stage.DISQUALIFIED}),
    Stage.SQL: frozenset({Stage.CUSTOMER, Stage.LOST, Stage.DISQUALIFIED}),
    Stage.LOST: frozenset({Stage.RECYCLED, Stage.MQL, Stage.DISQUALIFIED}),
    Stage.CUSTOMER: frozenset(),
    Stage.DISQUALIFIED: frozenset(),
}

# Stages in which a lead waits for a sales rep's answer (queue, SLA clock running).
AWAITING_SALES = frozenset({Stage.MQL, Stage.PQL})
# Stages owned by sales (a rep is the owner).
SALES_OWNED = frozenset({Stage.MQL, Stage.PQL, Stage.SAL, Stage.SQL})
# Stages owned by marketing (no rep owner; nurturing applies).
MARKETING_OWNED = frozenset({Stage.VISITOR, Stage.RECYCLED, Stage.LOST})
# Main funnel order, for analytics and charts.
FUNNEL_ORDER = (Stage.VISITOR, Stage.MQL, Stage.SAL, Stage.SQL, Stage.CUSTOMER)


def can_move(from_stage: str, to_stage: str) -> bool:
    return to_stage in ALLOWED_MOVES.get(from_stage, frozenset())


def explain_illegal(from_stage: str, to_stage: str) -> str:
    allowed = sorted(ALLOWED_MOVES.get(from_stage, ()))
    label_from = Stage(from_stage).label if from_stage in Stage.values else from_stage
    label_to = Stage(to_stage).label if to_stage in Stage.values else to_stage
    if not allowed:
        return f"A lead in stage {label_from} cannot move any further (it is final)."
    names = ", ".join(Stage(s).label for s in allowed)
    return f"A lead cannot move from {label_from} to {label_to}; from {label_from} it can go to: {names}."
