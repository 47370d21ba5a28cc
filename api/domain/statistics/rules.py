"""Pure rules of the steering statistics: the measures, their dimensions, territories.

A measure is one entry of :data:`MEASURES`: the dimensions it may be broken down by and what
it adds to counts (amounts, median delays). The ``aids`` measure joins when the aides
facultatives tables exist: one more entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from api.problems import DomainError

MAX_DIMENSIONS = 3
MAX_CELLS = 20_000  # cells of a table (the cross product of the values met)

AGE_BANDS = ("0-17", "18-24", "25-39", "40-54", "55-64", "65-74", "75+")
HOUSEHOLD_TYPES = ("single", "couple", "single_parent", "couple_children", "other")

_PERSON = ("commune", "month", "age_band", "sex", "household_type", "competence")


@dataclass(frozen=True)
class Measure:
    name: str
    dimensions: tuple[str, ...]
    amounts: bool = False
    # medians of working days from sending to each step (referrals)
    delays: tuple[str, ...] = ()


MEASURES: dict[str, Measure] = {
    m.name: m
    for m in (
        Measure("people", _PERSON),
        Measure(
            "referrals",
            (*_PERSON, "status", "reason", "outcome"),
            delays=("acknowledged", "accepted", "completed"),
        ),
        Measure("orientations", (*_PERSON, "status", "reason")),
        Measure("dossiers", (*_PERSON, "prestation", "status", "decision"), amounts=True),
        # aid requests of the aides facultatives (rows exist once that capability's tables do)
        Measure(
            "aids",
            (*_PERSON, "category", "form", "status", "decision", "reason"),
            amounts=True,
        ),
    )
}


# aid requests refused because another scheme should pay: a need the local aid left aside
UNMET_AID_REASONS = ("autre_dispositif",)

# referrals declined for these reasons are needs nobody met (the angles morts, §12)
UNMET_DECLINE_REASONS = ("hors_competence", "pas_de_capacite")


class TerritoryKind(StrEnum):
    COMMUNE = "commune"
    EPCI = "epci"
    DEPARTEMENT = "departement"


_TERRITORY = re.compile(
    r"^(commune):(\d{5}|2[AB]\d{3})$|^(epci):(\d{9})$|^(departement):(\d{2,3}|2[AB])$"
)


@dataclass(frozen=True)
class TerritoryRef:
    kind: TerritoryKind
    code: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.code}"


def parse_territory(value: str) -> TerritoryRef | None:
    """``commune:80021``, ``epci:248000531``, ``departement:80``; None when malformed."""
    match = _TERRITORY.match(value)
    if match is None:
        return None
    groups = [g for g in match.groups() if g is not None]
    return TerritoryRef(TerritoryKind(groups[0]), groups[1])


def unknown_dimensions(measure: Measure, by: list[str]) -> list[str]:
    return [d for d in by if d not in measure.dimensions]


def first_of_month(day: date) -> date:
    return day.replace(day=1)


def per_1000(count: int, population: int) -> float | None:
    return None if population <= 0 else round(count * 1000 / population, 2)


def sensitive_visible(territory: TerritoryRef) -> bool:
    """Sensitive competences (ase, violences) appear only at département level."""
    return territory.kind is TerritoryKind.DEPARTEMENT


def choose_media(accept: str | None, offered: list[str]) -> str:
    """The first offered media type the Accept header takes (q-values honoured, q=0
    refused); no header or ``*/*``: the first offered. Raises NotAcceptable."""
    if not accept:
        return offered[0]
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept.split(",")):
        media, *params = [p.strip() for p in part.split(";")]
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranked.append((-quality, position, media.lower()))
    for negative_quality, _, media in sorted(ranked):
        if negative_quality >= 0:
            continue
        for candidate in offered:
            kind = candidate.split("/")[0]
            if media in (candidate, "*/*", f"{kind}/*"):
                return candidate
    raise NotAcceptable(detail=f"This document exists as {', '.join(offered)}.")


class NotAcceptable(DomainError):
    status = 406
    slug = "not-acceptable"
    title = "No representation matches the Accept header"


def median_of_histogram(histogram: dict[int, int]) -> float | None:
    """The median of a histogram of integers, interpolated like percentile_cont(0.5)."""
    n = sum(histogram.values())
    if n == 0:
        return None
    low_rank, high_rank = (n - 1) // 2, n // 2
    low = high = None
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if low is None and seen > low_rank:
            low = value
        if seen > high_rank:
            high = value
            break
    assert low is not None and high is not None
    return round((low + high) / 2, 1)
