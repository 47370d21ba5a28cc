"""What the statistics endpoints answer: aggregates only, never a person."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import ConfigDict, Field

from api.http.schemas import Output


class MedianDays(Output):
    """Median working days from sending to the first acknowledgement, acceptance and
    completion (referrals); null when too few or suppressed."""

    acknowledged: float | None = None
    accepted: float | None = None
    completed: float | None = None


class StatisticsCell(Output):
    """One cell: the dimensions asked for, and its figures (null when suppressed)."""

    commune: str | None = None
    month: str | None = None
    age_band: str | None = None
    sex: str | None = None
    household_type: str | None = None
    competence: str | None = None
    status: str | None = None
    reason: str | None = None
    outcome: str | None = None
    prestation: str | None = None
    decision: str | None = None
    category: str | None = None
    form: str | None = None
    count: int | None
    amount: float | None = None
    per_1000: float | None = None
    median_days: MedianDays | None = None
    suppressed: bool


class StatisticsTotal(Output):
    count: int | None
    amount: float | None = None
    per_1000: float | None = None
    median_days: MedianDays | None = None
    suppressed: bool


class SuppressionSummary(Output):
    threshold: int = Field(description="Counts from 1 to threshold - 1 are never published.")
    primary: int = Field(description="Cells suppressed for being small.")
    secondary: int = Field(description="Cells suppressed so that no small one can be recomputed.")


class StatisticsRead(Output):
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    measure: str
    territory: str
    territory_name: str
    population: int
    from_: date = Field(alias="from")
    to: date
    by: list[str]
    as_of: datetime
    cells: list[StatisticsCell]
    total: StatisticsTotal
    suppression: SuppressionSummary


class UncoveredCompetence(Output):
    """A competence nobody holds on some communes of the territory: no partner can act."""

    competence: str
    communes: list[str]
    population: int


class UnmetNeedsRead(Output):
    """The angles morts: needs recorded but not met, and places where nobody is competent."""

    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    territory: str
    territory_name: str
    from_: date = Field(alias="from")
    to: date
    as_of: datetime
    declined: StatisticsRead = Field(
        description="Referrals declined hors_competence or pas_de_capacite, by competence "
        "and reason."
    )
    expired: StatisticsRead = Field(description="Referrals left unanswered past their deadline.")
    refused_orientations: StatisticsRead = Field(description="Orientations the target refused.")
    aids_refused_elsewhere: StatisticsRead | None = Field(
        default=None,
        description="Aid requests refused autre_dispositif (when the aides facultatives exist).",
    )
    uncovered: list[UncoveredCompetence]
