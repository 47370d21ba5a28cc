"""Use cases of the steering statistics: a measure over a territory and a period, with
disclosure control applied before anything leaves the service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date

from api.auth.permissions import Action
from api.auth.scope import Scope
from api.domain import clock
from api.domain.statistics import report as abs_doc
from api.domain.statistics.cells import AggregateRow, Area, Period, Query
from api.domain.statistics.publication import publish, published_total
from api.domain.statistics.repository import StatisticsRepository
from api.domain.statistics.rules import (
    AGE_BANDS,
    MAX_CELLS,
    MAX_DIMENSIONS,
    MEASURES,
    UNMET_AID_REASONS,
    UNMET_DECLINE_REASONS,
    Measure,
    TerritoryKind,
    TerritoryRef,
    first_of_month,
    parse_territory,
    sensitive_visible,
    unknown_dimensions,
)
from api.domain.statistics.schemas import (
    StatisticsRead,
    UncoveredCompetence,
    UnmetNeedsRead,
)
from api.problems import FieldError, Forbidden, NotFound, ValidationFailed


@dataclass(frozen=True)
class Statistics:
    scope: Scope
    repository: StatisticsRepository

    async def area(self, territory: str) -> Area:
        """The territory asked for, if the caller may read statistics about it."""
        self.scope.require(Action.READ_STATS)
        ref = parse_territory(territory)
        if ref is None:
            raise _invalid("/territory", "commune:<INSEE>, epci:<SIREN> or departement:<code>.")
        area = await self.repository.area(ref)
        if area is None:
            raise _invalid("/territory", f"No {ref.kind} {ref.code} in the reference data.")
        if not set(area.communes) <= self.scope.territory:
            raise Forbidden(detail="This territory is outside your organisation's.")
        return area

    async def measure(
        self, name: str, territory: str, period: Period, by: list[str], *, delays: bool = True
    ) -> StatisticsRead:
        if name not in MEASURES:
            raise NotFound(detail=f"No measure {name!r}: {', '.join(MEASURES)}.")
        _check_period(period)
        _check_by(MEASURES[name], by)
        area = await self.area(territory)
        query = _query(area, name, period, by, delays=delays)
        rows = await self.repository.aggregate(query, await self.repository.sensitive_competences())
        _check_size(rows, len(by))
        return publish(query, rows, period)

    async def unmet_needs(self, territory: str, period: Period) -> UnmetNeedsRead:
        _check_period(period)
        area = await self.area(territory)
        sensitive = await self.repository.sensitive_competences()
        queries = unmet_tables(area, period)
        tables = await self.repository.aggregate_disjoint(queries, sensitive)
        return _unmet_read(area, period, queries, tables, await self.repository.uncovered(area))

    async def report(self, territory: str, year: int) -> abs_doc.Document:
        """The yearly ABS of a territory: this year beside the year before."""
        if not 2000 <= year <= clock.today().year:
            raise _invalid("/year", "A past or the current year.")
        area = await self.area(territory)
        this, before = _year(year), _year(year - 1)
        tables = report_tables(area, year)
        unmet_before, unmet_this = unmet_tables(area, before), unmet_tables(area, this)
        # every table of the document in one scan per measure (grouping sets)
        rows = await self.repository.aggregate_shared(
            [*(q for q, _ in tables.values()), *unmet_before, *unmet_this],
            await self.repository.sensitive_competences(),
        )
        found = dict(zip(tables, rows, strict=False))
        published: dict[str, StatisticsRead] = {}
        for name, (query, period) in tables.items():
            _check_size(found[name], len(query.by))
            published[name] = publish(query, found[name], period)
        uncovered = await self.repository.uncovered(area)
        unmet = [
            _unmet_read(area, before, unmet_before, rows[len(tables) : len(tables) + 4], uncovered),
            _unmet_read(area, this, unmet_this, rows[len(tables) + 4 :], uncovered),
        ]
        people = [published["people_before"], published["people"]]
        households = published["households"]
        referrals = [published["referrals_before"], published["referrals"]]
        statuses = published["statuses"]
        by_commune = published["by_commune"]
        aids_by_commune = published["aids_by_commune"]
        names = await self.repository.commune_names(area.communes)
        wider = await self._wider(area)
        comparison = await self._comparison(
            area, wider, this, "people", _total(found["people_count"])
        )
        aids_comparison = await self._comparison(
            area, wider, this, "aids", _total(found["aids_count"])
        )
        ages, age_chart = abs_doc.two_years(
            "people_age",
            "Personnes reçues par tranche d'âge",
            "age_band",
            "Tranche d'âge",
            people[0],
            people[1],
            year,
            order=AGE_BANDS,
        )
        households_table = abs_doc.cross_table(
            "people_household",
            f"Personnes reçues par âge et type de ménage ({year})",
            households,
            "age_band",
            "household_type",
            "Tranche d'âge",
            AGE_BANDS,
            column_labels=abs_doc.HOUSEHOLD_LABELS,
        )
        volumes, volume_chart = abs_doc.two_years(
            "referrals_competence",
            "Adressages par compétence",
            "competence",
            "Compétence",
            referrals[0],
            referrals[1],
            year,
        )
        rates_table, rates_chart = abs_doc.rates(
            "rates", "Personnes reçues", by_commune, names, comparison
        )
        aids_table, aids_chart = abs_doc.rates(
            "aid_rates", "Aides facultatives demandées", aids_by_commune, names, aids_comparison
        )
        return abs_doc.Document(
            territory=str(area.ref),
            territory_name=area.name,
            year=year,
            generated_at=clock.now(),
            sections=[
                abs_doc.Section(
                    "Les personnes reçues",
                    "Personnes dont le premier contact avec un partenaire date de l'année.",
                    [age_chart],
                    [ages, households_table],
                ),
                abs_doc.Section(
                    "Les adressages entre partenaires",
                    "Demandes d'un partenaire à un autre d'agir pour une personne.",
                    [volume_chart],
                    [
                        volumes,
                        abs_doc.delays("referrals_delays", referrals[0], referrals[1], year),
                        abs_doc.cross_table(
                            "referrals_status",
                            f"Adressages par compétence et issue ({year})",
                            statuses,
                            "competence",
                            "status",
                            "Compétence",
                            column_labels=abs_doc.STATUS_LABELS,
                        ),
                    ],
                ),
                abs_doc.Section(
                    "Comparaison territoriale",
                    "Le territoire à côté de son intercommunalité et de son département : "
                    "personnes reçues et aides facultatives demandées, pour 1 000 habitants.",
                    [rates_chart, aids_chart],
                    [rates_table, aids_table],
                ),
                abs_doc.Section(
                    "Les besoins non satisfaits",
                    "Refus faute de compétence ou de capacité, demandes sans réponse, "
                    "orientations refusées, compétences que personne n'exerce.",
                    [],
                    abs_doc.unmet("unmet", unmet[0], unmet[1], year),
                ),
            ],
        )

    async def _wider(self, area: Area) -> list[Area]:
        """The EPCI and the département a territory lies in, to compare it with."""
        if area.ref.kind is TerritoryKind.COMMUNE:
            epci, departement = await self.repository.parents(area.ref)
            refs = [TerritoryRef(TerritoryKind.DEPARTEMENT, departement)]
            if epci:
                refs.insert(0, TerritoryRef(TerritoryKind.EPCI, epci))
        elif area.ref.kind is TerritoryKind.EPCI:
            departement = (
                await self.repository.parents(TerritoryRef(TerritoryKind.COMMUNE, area.communes[0]))
            )[1]
            refs = [TerritoryRef(TerritoryKind.DEPARTEMENT, departement)]
        else:
            refs = []
        return [wide for ref in refs if (wide := await self.repository.area(ref)) is not None]

    async def _comparison(
        self, area: Area, wider: list[Area], period: Period, measure: str, own: int
    ) -> abs_doc.Comparison:
        """The territory's count (``own``) beside its EPCI's and département's."""
        first, last = first_of_month(period.first), first_of_month(period.last)
        lines: list[tuple[str, int, int | None]] = [
            (area.name, sum(area.population.values()), published_total(own))
        ]
        for wide in wider:
            count = await self.repository.area_count(measure, wide.ref, first, last)
            label = "Intercommunalité" if wide.ref.kind is TerritoryKind.EPCI else "Département"
            lines.append(
                (
                    f"{label} ({wide.ref.code})",
                    sum(wide.population.values()),
                    published_total(count),
                )
            )
        return abs_doc.Comparison(lines)


def unmet_tables(area: Area, period: Period) -> tuple[Query, Query, Query, Query]:
    """The tables of the unmet needs (declined for lack of competence or capacity, expired,
    refused orientations, aids refused for another scheme): disjoint rows, read in one scan."""

    def table(measure: str, by: tuple[str, ...], where: dict[str, tuple[str, ...]]) -> Query:
        return Query(
            replace(MEASURES[measure], delays=()),  # no medians in these tables
            area,
            first_of_month(period.first),
            first_of_month(period.last),
            by,
            include_sensitive=sensitive_visible(area.ref),
            where=tuple(where.items()),
        )

    return (
        table(
            "referrals",
            ("competence", "reason"),
            {"status": ("declined",), "reason": UNMET_DECLINE_REASONS},
        ),
        table("referrals", ("competence",), {"status": ("expired",)}),
        table("orientations", ("competence",), {"status": ("refused",)}),
        table("aids", ("category",), {"status": ("refused",), "reason": UNMET_AID_REASONS}),
    )


def _query(area: Area, name: str, period: Period, by: list[str], *, delays: bool = True) -> Query:
    """A table of a measure over an area and the months of a period."""
    measure = MEASURES[name] if delays else replace(MEASURES[name], delays=())
    return Query(
        measure,
        area,
        first_of_month(period.first),
        first_of_month(period.last),
        tuple(by),
        include_sensitive=sensitive_visible(area.ref),
    )


def report_tables(area: Area, year: int) -> dict[str, tuple[Query, Period]]:
    """The tables of a yearly report (its unmet needs aside), with the period of each."""
    this, before = _year(year), _year(year - 1)
    return {
        name: (query, period)
        for name, period, query in (
            ("people_before", before, _query(area, "people", before, ["age_band"])),
            ("people", this, _query(area, "people", this, ["age_band"])),
            ("households", this, _query(area, "people", this, ["age_band", "household_type"])),
            (
                "referrals_before",
                before,
                _query(area, "referrals", before, ["competence"], delays=False),
            ),
            ("referrals", this, _query(area, "referrals", this, ["competence"])),
            (
                "statuses",
                this,
                _query(area, "referrals", this, ["competence", "status"], delays=False),
            ),
            ("by_commune", this, _query(area, "people", this, ["commune"], delays=False)),
            ("aids_by_commune", this, _query(area, "aids", this, ["commune"], delays=False)),
            # the comparison's first line: the territory's total, sensitive competences left
            # out below the département like every other table (and like the wider lines):
            # otherwise it minus the tables' total would be the count the rule hides
            ("people_count", this, _query(area, "people", this, [])),
            ("aids_count", this, _query(area, "aids", this, [])),
        )
    }


def _total(rows: list[AggregateRow]) -> int:
    return next(r.count for r in rows if r.is_total)


def _unmet_read(
    area: Area,
    period: Period,
    queries: Sequence[Query],
    tables: Sequence[list[AggregateRow]],
    uncovered_pairs: Sequence[tuple[str, str]],
) -> UnmetNeedsRead:
    """The unmet needs of a period from the rows of its four tables (:func:`unmet_tables`)
    and the (competence, commune) pairs nobody holds."""
    declined, expired, refused, aids_refused = (
        publish(query, rows, period) for query, rows in zip(queries, tables, strict=True)
    )
    uncovered: dict[str, list[str]] = {}
    for competence, commune in uncovered_pairs:
        uncovered.setdefault(competence, []).append(commune)
    return UnmetNeedsRead(
        territory=str(area.ref),
        territory_name=area.name,
        from_=period.first,
        to=period.last,
        as_of=clock.now(),
        declined=declined,
        expired=expired,
        refused_orientations=refused,
        aids_refused_elsewhere=aids_refused,
        uncovered=[
            UncoveredCompetence(
                competence=competence,
                communes=communes,
                population=sum(area.population[c] for c in communes),
            )
            for competence, communes in uncovered.items()
        ],
    )


def _year(year: int) -> Period:
    return Period(date(year, 1, 1), date(year, 12, 31))


def _check_size(rows: list[AggregateRow], dimensions: int) -> None:
    """A table finer than MAX_CELLS is mostly secret anyway, and protecting it costs
    seconds: ask for a smaller territory or fewer dimensions."""
    cells = 1
    for axis in range(dimensions):
        cells *= len({r.key[axis] for r in rows if not r.is_total})
    if cells > MAX_CELLS:
        raise _invalid(
            "/by",
            f"{cells} cells: at most {MAX_CELLS}. Choose a smaller territory, a shorter period "
            "or fewer dimensions.",
        )


def _check_period(period: Period) -> None:
    if period.last < period.first:
        raise _invalid("/to", "The end of the period is before its start.")
    if (period.last - period.first).days > 366 * 5:
        raise _invalid("/to", "A period covers at most five years.")


def _check_by(measure: Measure, by: list[str]) -> None:
    if len(by) > MAX_DIMENSIONS:
        raise _invalid("/by", f"At most {MAX_DIMENSIONS} dimensions.")
    if len(set(by)) != len(by):
        raise _invalid("/by", "A dimension is named twice.")
    unknown = unknown_dimensions(measure, by)
    if unknown:
        raise _invalid(
            "/by",
            f"{', '.join(unknown)}: not a dimension of {measure.name} "
            f"({', '.join(measure.dimensions)}).",
        )


def _invalid(pointer: str, detail: str) -> ValidationFailed:
    return ValidationFailed(detail=detail, errors=[FieldError(pointer, detail, "query")])
