from __future__ import annotations

from api.http.schemas import Output


class CommuneRead(Output):
    code: str
    name: str
    departement: str
    region: str
    epci: str | None
    siren: str | None
    population: int
    postal_codes: list[str]


class CommuneSummary(Output):
    code: str
    name: str
    population: int


class EpciRead(Output):
    siren: str
    name: str
    type: str
    population: int
    members: list[CommuneSummary]


class DepartementRead(Output):
    code: str
    name: str
    region: str
    chef_lieu: str
    communes_count: int
    population: int


class CompetenceRead(Output):
    code: str
    label: str
    legal_holder_kinds: list[str]
    delegable_to: list[str]
    sensitive: bool
