"""Where a person's data lives: each model that holds some declares it, and erasure and export
(``leads.services.privacy``) find the declarations through the app registry.

A model says which rows belong to a lead (``lead``: an ORM path to the lead's id), what an
erasure writes over the personal columns of those rows (``erase``, one UPDATE per table; or
``delete``), and which fields the person's export shows (``export``). Apps declare their own
tables, so the leads app erases and exports nurturing's or scoring's rows without importing them.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PersonalData:
    # Name of this kind of data in the export and in an erasure's counts ("messages", ...).
    kind: str
    # ORM path from this model to the lead, e.g. "lead" or "enrollment__lead".
    lead: str = "lead"
    # Column → value an erasure writes on the lead's rows (values may be expressions).
    erase: Mapping[str, Any] = field(default_factory=dict)
    # Erasure deletes the lead's rows instead of overwriting columns.
    delete: bool = False
    # Fields (ORM paths allowed) the person's export shows, in this order; empty: not exported.
    export: tuple[str, ...] = ()
    # Export order.
    order_by: tuple[str, ...] = ("pk",)


def personal_data_of(model) -> PersonalData | None:
    """The declaration of ``model`` (a class attribute ``personal_data``), if it makes one."""
    spec = model.__dict__.get("personal_data")
    return spec if isinstance(spec, PersonalData) else None
