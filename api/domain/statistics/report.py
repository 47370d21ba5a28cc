"""The yearly ABS document: what a CCAS board reads, in French, built from figures that
disclosure control has already passed (a suppressed cell arrives as None and is printed
"s", secret statistique). Pure: no I/O; the service gathers, :mod:`.render` draws."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from api.domain.statistics.schemas import StatisticsRead, UnmetNeedsRead

SUPPRESSED_MARK = "s"

HOUSEHOLD_LABELS = {
    "single": "Personne seule",
    "couple": "Couple sans enfant",
    "single_parent": "Famille monoparentale",
    "couple_children": "Couple avec enfant(s)",
    "other": "Autre ménage",
    "unknown": "Non renseigné",
}
STATUS_LABELS = {
    "sent": "envoyé",
    "acknowledged": "lu",
    "accepted": "accepté",
    "in_progress": "en cours",
    "on_hold": "suspendu",
    "completed": "réalisé",
    "not_completed": "non réalisé",
    "declined": "refusé",
    "redirected": "réorienté",
    "withdrawn": "retiré",
    "cancelled": "annulé",
    "expired": "sans réponse",
}


@dataclass(frozen=True)
class Table:
    key: str  # names the table in the CSV export
    title: str
    row_label: str
    columns: list[str]
    rows: list[tuple[str, list[str]]]
    note: str = ""


@dataclass(frozen=True)
class Chart:
    title: str
    categories: list[str]
    series: dict[str, list[float | None]]  # legend -> one value per category, None: secret
    horizontal: bool = False
    unit: str = ""


@dataclass(frozen=True)
class Section:
    title: str
    intro: str
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


@dataclass(frozen=True)
class Document:
    territory: str
    territory_name: str
    year: int
    generated_at: datetime
    sections: list[Section]


@dataclass(frozen=True)
class Comparison:
    """The territory's rate beside wider ones: (label, population, count or None)."""

    lines: list[tuple[str, int, int | None]]


def number(value: float | None, decimals: int = 0) -> str:
    """French typography; None is the secret statistique."""
    if value is None:
        return SUPPRESSED_MARK
    text = f"{value:,.{decimals}f}".replace(",", "\u202f").replace(".", ",")
    return text


def _cells(read: StatisticsRead, dimension: str) -> dict[str, int | None]:
    return {str(getattr(c, dimension)): c.count for c in read.cells}


def two_years(
    key: str,
    title: str,
    dimension: str,
    row_label: str,
    before: StatisticsRead,
    current: StatisticsRead,
    year: int,
    order: Sequence[str] = (),
    labels: dict[str, str] | None = None,
) -> tuple[Table, Chart]:
    """One dimension, the year before beside this year."""
    labels = labels or {}
    previous, this = _cells(before, dimension), _cells(current, dimension)
    seen = set(previous) | set(this)
    categories = [c for c in order if c in seen] + sorted(seen - set(order))
    rows = [
        (labels.get(c, c), [number(previous.get(c, 0)), number(this.get(c, 0))]) for c in categories
    ]
    rows.append(("Ensemble", [number(before.total.count), number(current.total.count)]))
    table = Table(key, title, row_label, [str(year - 1), str(year)], rows)
    chart = Chart(
        title,
        [labels.get(c, c) for c in categories],
        {
            str(year - 1): [_value(previous.get(c, 0)) for c in categories],
            str(year): [_value(this.get(c, 0)) for c in categories],
        },
    )
    return table, chart


def cross_table(
    key: str,
    title: str,
    read: StatisticsRead,
    rows_by: str,
    columns_by: str,
    row_label: str,
    row_order: Sequence[str] = (),
    column_labels: dict[str, str] | None = None,
    row_labels: dict[str, str] | None = None,
) -> Table:
    column_labels, row_labels = column_labels or {}, row_labels or {}
    values: dict[tuple[str, str], int | None] = {
        (str(getattr(c, rows_by)), str(getattr(c, columns_by))): c.count for c in read.cells
    }
    rows_seen = {r for r, _ in values}
    row_keys = [r for r in row_order if r in rows_seen] + sorted(rows_seen - set(row_order))
    columns = sorted({c for _, c in values})
    rows = [
        (row_labels.get(r, r), [number(values.get((r, c), 0)) for c in columns]) for r in row_keys
    ]
    note = f"Ensemble : {number(read.total.count)}."
    return Table(key, title, row_label, [column_labels.get(c, c) for c in columns], rows, note)


def delays(key: str, before: StatisticsRead, current: StatisticsRead, year: int) -> Table:
    """Referrals by competence: volumes of both years and this year's median delays."""
    previous = {c.competence: c for c in before.cells}
    rows = []
    for cell in current.cells:
        medians = cell.median_days
        old = previous.get(cell.competence)
        rows.append(
            (
                str(cell.competence),
                [
                    number(old.count if old else 0),
                    number(cell.count),
                    number(medians.acknowledged if medians else None, 1),
                    number(medians.accepted if medians else None, 1),
                    number(medians.completed if medians else None, 1),
                ],
            )
        )
    return Table(
        key,
        "Adressages par compétence et délais médians (jours ouvrés)",
        "Compétence",
        [str(year - 1), str(year), "envoi → lu", "envoi → accepté", "envoi → réalisé"],
        rows,
        "Délais comptés depuis l'envoi, en jours ouvrés (week-ends et jours fériés exclus).",
    )


def rates(
    key: str, what: str, read: StatisticsRead, names: dict[str, str], comparison: Comparison
) -> tuple[Table, Chart]:
    """A measure per 1,000 inhabitants by commune, beside the EPCI and département."""
    rows = []
    labels: list[str] = []
    values: list[float | None] = []
    for cell in sorted(read.cells, key=lambda c: names.get(str(c.commune), "")):
        name = names.get(str(cell.commune), str(cell.commune))
        rows.append((name, [number(cell.count), number(cell.per_1000, 1)]))
    for label, population, count in comparison.lines:
        rate = None if count is None or population <= 0 else count * 1000 / population
        rows.append((label, [number(count), number(rate, 1)]))
        labels.append(label)
        values.append(rate)
    table = Table(
        key,
        f"{what} pour 1 000 habitants",
        "Territoire",
        ["nombre", "pour 1 000 hab."],
        rows,
        "Population légale de référence (Code officiel géographique).",
    )
    chart = Chart(
        f"{what} pour 1 000 habitants",
        labels,
        {"pour 1 000 habitants": values},
        horizontal=True,
    )
    return table, chart


def unmet(key: str, before: UnmetNeedsRead, current: UnmetNeedsRead, year: int) -> list[Table]:
    def by_competence(a: StatisticsRead, b: StatisticsRead) -> list[tuple[str, list[str]]]:
        old, new = _cells(a, "competence"), _cells(b, "competence")
        keys = sorted(set(old) | set(new))
        return [(k, [number(old.get(k, 0)), number(new.get(k, 0))]) for k in keys]

    declined_rows = [
        (f"{c.competence} — {c.reason}", [number(c.count)]) for c in current.declined.cells
    ]
    years = [str(year - 1), str(year)]
    return [
        Table(
            f"{key}_declined",
            f"Adressages refusés faute de compétence ou de capacité ({year})",
            "Compétence — motif",
            [str(year)],
            declined_rows,
        ),
        Table(
            f"{key}_expired",
            "Adressages restés sans réponse",
            "Compétence",
            years,
            by_competence(before.expired, current.expired),
        ),
        Table(
            f"{key}_refused",
            "Orientations refusées",
            "Compétence",
            years,
            by_competence(before.refused_orientations, current.refused_orientations),
        ),
        Table(
            f"{key}_aids",
            "Aides refusées au motif qu'un autre dispositif doit intervenir",
            "Catégorie",
            years,
            _by(before.aids_refused_elsewhere, current.aids_refused_elsewhere, "category"),
        ),
        Table(
            f"{key}_uncovered",
            "Compétences que personne n'exerce sur une partie du territoire",
            "Compétence",
            ["communes", "habitants"],
            [
                (u.competence, [number(len(u.communes)), number(u.population)])
                for u in current.uncovered
            ],
            "Aucun partenaire ne détient la compétence, ni par la loi ni par convention.",
        ),
    ]


def _by(
    before: StatisticsRead | None, current: StatisticsRead | None, dimension: str
) -> list[tuple[str, list[str]]]:
    old = _cells(before, dimension) if before else {}
    new = _cells(current, dimension) if current else {}
    return [
        (k, [number(old.get(k, 0)), number(new.get(k, 0))]) for k in sorted(set(old) | set(new))
    ]


def _value(count: int | None) -> float | None:
    return None if count is None else float(count)
