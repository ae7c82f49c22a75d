"""Predictive scoring's features: what was known about a lead at an instant, as a vector.

Every feature is computed from what was known *before* the instant ``as_of`` (interaction
counts and recency per type, time since first touch, earlier stage history) plus the lead's
profile, company and channel; training and scoring today use the very same vectors.
Read set-based: one grouped query over interactions and one over stage transitions per
instant, never one query per lead.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from django.db.models import Count, Max, Min

from leads.models import SALES_ACTIVITY_TYPES, Channel, Interaction, InteractionType, Lead, Stage, StageTransition

from ..selectors import scoring_settings_get

# Notes, calls and meetings logged by people are left out: they follow the funnel (a rep calls an
# SQL), so a model fed with them would learn who sales already works, not who will buy.
INTERACTION_TYPES: tuple[str, ...] = tuple(t for t in InteractionType.values if t not in SALES_ACTIVITY_TYPES)
# Recency is expressed as freshness exp(-days / RECENCY_DAYS): 1 for "just now", 0 for "never".
RECENCY_DAYS = 30.0

SENIORITY = (
    (
        "title_c_level",
        "C-level or founder title",
        re.compile(r"\b(chief|ceo|cto|cfo|cmo|coo|cio|founder|owner|president)\b"),
    ),
    ("title_vp", "Vice-president title", re.compile(r"\b(vp|vice[- ]president|svp|evp)\b")),
    ("title_head_director", "Head or director title", re.compile(r"\b(head|director)\b")),
    ("title_manager", "Manager title", re.compile(r"\bmanager\b")),
    ("title_student", "Student or intern", re.compile(r"\b(student|intern|trainee)\b")),
    ("title_purchasing", "Purchasing title", re.compile(r"\b(purchas\w*|procurement|buyer)\b")),
)
FALLBACK_FREE_MAIL = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "hotmail.com",
        "outlook.com",
        "live.com",
        "msn.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "proton.me",
        "protonmail.com",
        "mail.com",
        "yandex.ru",
        "qq.com",
    }
)


@dataclass
class Vocabulary:
    """Categorical values seen often enough in training to earn a feature of their own."""

    sources: list[str] = field(default_factory=list)
    industries: list[str] = field(default_factory=list)
    size_bands: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"sources": self.sources, "industries": self.industries, "size_bands": self.size_bands}

    @classmethod
    def from_dict(cls, data: dict) -> Vocabulary:
        return cls(
            sources=list(data.get("sources", [])),
            industries=list(data.get("industries", [])),
            size_bands=list(data.get("size_bands", [])),
        )


@dataclass
class LeadProfile:
    lead_id: int
    created_at: datetime
    email_domain: str
    has_first_name: bool
    has_last_name: bool
    has_title: bool
    has_phone: bool
    has_company: bool
    title: str
    size_band: str
    industry: str
    channel: str
    source: str


@dataclass
class StageFacts:
    """Per lead: when it first reached the target and disqualification, for labels and eligibility."""

    target_at: dict[int, datetime]
    disqualified_at: dict[int, datetime]


def free_mail_domains() -> frozenset[str]:
    """The free-mail domains of the scoring settings (a lead on one has no business email)."""
    try:
        domains = getattr(scoring_settings_get(), "free_mail_domains", None)
    except Exception:  # the scoring settings may not be migrated yet; fall back to the short list
        domains = None
    if domains:
        return frozenset(d.strip().lower() for d in domains if d)
    return FALLBACK_FREE_MAIL


def feature_names(vocab: Vocabulary) -> list[str]:
    names = [
        "has_first_name",
        "has_last_name",
        "has_title",
        "has_phone",
        "has_company",
        "business_email",
        *[key for key, _label, _rx in SENIORITY],
        *[f"size:{band}" for band in vocab.size_bands],
        *[f"industry:{name}" for name in vocab.industries],
        *[f"channel:{value}" for value in Channel.values],
        *[f"source:{name}" for name in vocab.sources],
        "days_since_first_touch_log",
        "interactions_total_log",
    ]
    for itype in INTERACTION_TYPES:
        names += [f"count:{itype}", f"fresh:{itype}"]
    names += ["stage:times_mql", "stage:times_recycled", "stage:reached_sal", "stage:reached_sql"]
    return names


def feature_label(name: str) -> str:
    """Words for a feature name, as shown in a lead's top factors."""
    fixed = {
        "has_first_name": "First name given",
        "has_last_name": "Last name given",
        "has_title": "Title given",
        "has_phone": "Phone given",
        "has_company": "Company known",
        "business_email": "Business email domain",
        "days_since_first_touch_log": "Time since first touch",
        "interactions_total_log": "Number of interactions",
        "stage:times_mql": "Times it became an MQL before",
        "stage:times_recycled": "Times it was recycled before",
        "stage:reached_sal": "Was accepted by sales before",
        "stage:reached_sql": "Was sales-qualified before",
    }
    if name in fixed:
        return fixed[name]
    for key, label, _rx in SENIORITY:
        if name == key:
            return label
    kind, _, value = name.partition(":")
    words = {
        "size": f"Company size {value}",
        "industry": f"Industry {value}",
        "channel": f"Came in through channel {value}",
        "source": f"Source {value}",
        "count": f"Number of {value.replace('_', ' ')} events",
        "fresh": f"Recent {value.replace('_', ' ')} activity",
    }
    return words.get(kind, name)


def lead_profiles(lead_ids: list[int] | None = None) -> dict[int, LeadProfile]:
    qs = Lead.objects.all()
    if lead_ids is not None:
        qs = qs.filter(pk__in=lead_ids)
    rows = qs.values_list(
        "pk",
        "created_at",
        "email",
        "first_name",
        "last_name",
        "title",
        "phone",
        "company_id",
        "company_name",
        "company_size",
        "company__size_band",
        "industry",
        "company__industry",
        "channel",
        "source",
    ).order_by()
    profiles = {}
    for (
        pk,
        created_at,
        email,
        first,
        last,
        title,
        phone,
        company_id,
        company_name,
        size,
        company_size,
        industry,
        company_industry,
        channel,
        source,
    ) in rows.iterator(chunk_size=5000):
        profiles[pk] = LeadProfile(
            lead_id=pk,
            created_at=created_at,
            email_domain=email.rpartition("@")[2].lower(),
            has_first_name=bool(first.strip()),
            has_last_name=bool(last.strip()),
            has_title=bool(title.strip()),
            has_phone=bool(phone.strip()),
            has_company=bool(company_id or company_name.strip()),
            title=title.lower(),
            size_band=(size or company_size or "").strip(),
            industry=(industry or company_industry or "").strip().lower(),
            channel=channel or "",
            source=(source or "").strip().lower(),
        )
    return profiles


def stage_facts(targets: tuple[str, ...], lead_ids: list[int] | None = None) -> StageFacts:
    qs = StageTransition.objects.filter(to_stage__in=[*targets, Stage.DISQUALIFIED])
    if lead_ids is not None:
        qs = qs.filter(lead_id__in=lead_ids)
    target_at: dict[int, datetime] = {}
    disqualified_at: dict[int, datetime] = {}
    rows = qs.values("lead_id", "to_stage").annotate(first=Min("at")).order_by()
    for row in rows.iterator(chunk_size=5000):
        if row["to_stage"] == Stage.DISQUALIFIED:
            disqualified_at[row["lead_id"]] = row["first"]
        else:
            current = target_at.get(row["lead_id"])
            target_at[row["lead_id"]] = row["first"] if current is None else min(current, row["first"])
    return StageFacts(target_at=target_at, disqualified_at=disqualified_at)


def activity_before(as_of: datetime, lead_ids: list[int] | None = None) -> dict[int, dict[str, tuple[int, datetime]]]:
    """{lead_id: {type: (count, last occurred_at)}} from interactions strictly before ``as_of``."""
    qs = Interaction.objects.filter(occurred_at__lt=as_of).exclude(type__in=SALES_ACTIVITY_TYPES)
    if lead_ids is not None:
        qs = qs.filter(lead_id__in=lead_ids)
    activity: dict[int, dict[str, tuple[int, datetime]]] = {}
    rows = qs.values_list("lead_id", "type").annotate(n=Count("id"), last=Max("occurred_at")).order_by()
    for lead_id, itype, n, last in rows.iterator(chunk_size=10000):
        activity.setdefault(lead_id, {})[itype] = (n, last)
    return activity


def history_before(as_of: datetime, lead_ids: list[int] | None = None) -> dict[int, dict[str, int]]:
    """{lead_id: {to_stage: times entered}} from stage transitions strictly before ``as_of``."""
    qs = StageTransition.objects.filter(
        at__lt=as_of, to_stage__in=[Stage.MQL, Stage.PQL, Stage.RECYCLED, Stage.SAL, Stage.SQL]
    )
    if lead_ids is not None:
        qs = qs.filter(lead_id__in=lead_ids)
    history: dict[int, dict[str, int]] = {}
    for lead_id, stage, n in qs.values_list("lead_id", "to_stage").annotate(n=Count("id")).order_by().iterator():
        history.setdefault(lead_id, {})[stage] = n
    return history


def build_vocabulary(profiles: dict[int, LeadProfile], *, top: int = 10, min_count: int = 5) -> Vocabulary:
    def frequent(values) -> list[str]:
        counts = Counter(v for v in values if v)
        return sorted(v for v, n in counts.most_common(top) if n >= min_count)

    leads = profiles.values()
    return Vocabulary(
        sources=frequent(p.source for p in leads),
        industries=frequent(p.industry for p in leads),
        size_bands=frequent(p.size_band for p in leads),
    )


class FeatureBuilder:
    """Turns profiles plus point-in-time activity into feature vectors (float32)."""

    def __init__(self, vocab: Vocabulary, free_mail: frozenset[str]) -> None:
        self.vocab = vocab
        self.free_mail = free_mail
        self.names = feature_names(vocab)
        self.index = {name: i for i, name in enumerate(self.names)}

    def matrix(
        self,
        lead_ids: list[int],
        profiles: dict[int, LeadProfile],
        activity: dict[int, dict[str, tuple[int, datetime]]],
        history: dict[int, dict[str, int]],
        as_of: datetime,
    ) -> np.ndarray:
        x = np.zeros((len(lead_ids), len(self.names)), dtype=np.float32)
        idx = self.index
        for row, lead_id in enumerate(lead_ids):
            p = profiles[lead_id]
            v = x[row]
            v[idx["has_first_name"]] = p.has_first_name
            v[idx["has_last_name"]] = p.has_last_name
            v[idx["has_title"]] = p.has_title
            v[idx["has_phone"]] = p.has_phone
            v[idx["has_company"]] = p.has_company
            v[idx["business_email"]] = bool(p.email_domain) and p.email_domain not in self.free_mail
            for key, _label, rx in SENIORITY:
                if p.title and rx.search(p.title):
                    v[idx[key]] = 1.0
            for name in (f"size:{p.size_band}", f"industry:{p.industry}", f"channel:{p.channel}", f"source:{p.source}"):
                col = idx.get(name)
                if col is not None:
                    v[col] = 1.0
            first_touch = p.created_at
            acts = activity.get(lead_id, {})
            total = 0
            for itype, (n, last) in acts.items():
                if f"count:{itype}" not in idx:
                    continue
                total += n
                v[idx[f"count:{itype}"]] = math.log1p(n)
                days = max(0.0, (as_of - last).total_seconds() / 86400.0)
                v[idx[f"fresh:{itype}"]] = math.exp(-days / RECENCY_DAYS)
            v[idx["interactions_total_log"]] = math.log1p(total)
            v[idx["days_since_first_touch_log"]] = math.log1p(max(0.0, (as_of - first_touch).total_seconds() / 86400.0))
            hist = history.get(lead_id, {})
            v[idx["stage:times_mql"]] = hist.get(Stage.MQL, 0) + hist.get(Stage.PQL, 0)
            v[idx["stage:times_recycled"]] = hist.get(Stage.RECYCLED, 0)
            v[idx["stage:reached_sal"]] = hist.get(Stage.SAL, 0) > 0
            v[idx["stage:reached_sql"]] = hist.get(Stage.SQL, 0) > 0
        return x
