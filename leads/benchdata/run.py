"""What every loader of one ``seed_bench`` run shares: where it writes and what it draws from.

One seeded random generator passed through the loaders in a fixed order is what makes the data
set reproducible, so it travels with the cursor rather than living in module state.
"""

import random
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Run:
    cursor: object  # the raw psycopg cursor (COPY goes through ``copy_expert``)
    rng: random.Random
    now: datetime  # the reference time every generated time is relative to
    batch_size: int
