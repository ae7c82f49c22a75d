"""The people and companies around the leads: the sales reps who own sales-stage leads, the
marketer who owns the forms, and the companies leads work at. Reps and the marketer go through
the ORM (a handful, reused across runs); companies are many and go through COPY.
"""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from leads.models import Company, SalesRepProfile

from .pgcopy import Copier
from .run import Run
from .vocabulary import COMPANY_A, COMPANY_B, INDUSTRIES, PLACES, SIZE_BANDS, SIZE_EMPLOYEES, weighted


def reps_and_marketer(n_reps: int) -> tuple[list[int], int]:
    """The sales reps (ids) and the marketer (id), created on the first run and reused after."""
    user_model = get_user_model()
    sales = Group.objects.get_or_create(name="sales")[0]
    marketing = Group.objects.get_or_create(name="marketer")[0]
    reps = []
    for i in range(1, max(1, n_reps) + 1):
        user, created = user_model.objects.get_or_create(
            username=f"bench-rep-{i:02d}",
            defaults={
                "email": f"bench-rep-{i:02d}@leadfunnel.example",
                "first_name": "Rep",
                "last_name": f"{i:02d}",
            },
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        user.groups.add(sales)
        SalesRepProfile.objects.get_or_create(user=user)
        reps.append(user.pk)
    marketer, created = user_model.objects.get_or_create(
        username="bench-marketer", defaults={"email": "bench-marketer@leadfunnel.example"}
    )
    if created:
        marketer.set_unusable_password()
        marketer.save(update_fields=["password"])
    marketer.groups.add(marketing)
    return reps, marketer.pk


def companies_write(run: Run, n: int) -> list[tuple]:
    rng = run.rng
    sizes, size_cum = weighted(SIZE_BANDS)
    combos = len(COMPANY_A) * len(COMPANY_B)
    copier = Copier(
        run.cursor,
        Company,
        [
            "id",
            "name",
            "domain",
            "size_band",
            "employees",
            "industry",
            "country",
            "city",
            "created_at",
            "updated_at",
        ],
        run.batch_size,
    )
    companies = []
    for i in range(n):
        a = COMPANY_A[(i % combos) // len(COMPANY_B)]
        b = COMPANY_B[i % len(COMPANY_B)]
        generation = i // combos
        name = f"{a}{b}" + (f" {generation + 1}" if generation else "")
        domain = f"{a}{b}{generation + 1 if generation else ''}.example".lower()
        size = rng.choices(sizes, cum_weights=size_cum)[0]
        country, city = rng.choice(PLACES)
        industry = rng.choice(INDUSTRIES)
        at = run.now - timedelta(days=rng.uniform(200, 800))
        row = (i + 1, name, domain, size, SIZE_EMPLOYEES[size], industry, country, city, at, at)
        copier.add(row)
        companies.append(row)
    copier.flush()
    return companies
