"""Disclosure control: no count from 1 to 4 is published, and no suppressed entry can be
recomputed from what is published (totals, the other cells of its row or column, or any
linear combination of the published sums)."""

from __future__ import annotations

from fractions import Fraction
from itertools import product

from hypothesis import given, settings
from hypothesis import strategies as st

from api.domain.statistics.disclosure import TOTAL, Key, Protection, extend, protect

# ---------------------------------------------------------------- the attacker


def _equations(protection: Protection, dimensions: int) -> list[dict[Key, int]]:
    """Every published sum of the extended table, as ``sum(coef * entry) == 0``."""
    keys = list(protection.counts)
    equations: list[dict[Key, int]] = []
    for key in keys:
        for axis in range(dimensions):
            if key[axis] != TOTAL:
                continue
            # the entry with TOTAL at ``axis`` equals the sum of the entries along it
            members = [k for k in keys if _along(k, key, axis)]
            equation = {k: 1 for k in members}
            equation[key] = -1
            equations.append(equation)
    return equations


def _along(candidate: Key, total: Key, axis: int) -> bool:
    return candidate[axis] != TOTAL and all(
        c == t for i, (c, t) in enumerate(zip(candidate, total, strict=True)) if i != axis
    )


def _recomputable(protection: Protection, dimensions: int) -> set[Key]:
    """The suppressed entries whose value the published figures determine: Gaussian
    elimination over the rationals, the published values moved to the right-hand side."""
    unknowns = sorted(k for k in protection.counts if protection.suppressed(k))
    index = {k: i for i, k in enumerate(unknowns)}
    rows: list[list[Fraction]] = []
    for equation in _equations(protection, dimensions):
        row = [Fraction(0)] * (len(unknowns) + 1)
        for key, coef in equation.items():
            if key in index:
                row[index[key]] += coef
            else:
                row[-1] -= coef * protection.counts[key]
        if any(row[:-1]):
            rows.append(row)
    pivots = _reduce(rows, len(unknowns))
    determined = set()
    for row, column in pivots:
        if sum(1 for value in row[:-1] if value) == 1:
            determined.add(unknowns[column])
            # the attack really yields the value
            assert row[-1] / row[column] == protection.counts[unknowns[column]]
    return determined


def _reduce(rows: list[list[Fraction]], width: int) -> list[tuple[list[Fraction], int]]:
    pivots: list[tuple[list[Fraction], int]] = []
    remaining = rows
    for column in range(width):
        pivot = next((r for r in remaining if r[column]), None)
        if pivot is None:
            continue
        remaining = [r for r in remaining if r is not pivot]
        for other in [*remaining, *(p for p, _ in pivots)]:
            if other[column]:
                factor = other[column] / pivot[column]
                for i in range(width + 1):
                    other[i] -= factor * pivot[i]
        pivots.append((pivot, column))
    return pivots


def _assert_safe(protection: Protection, dimensions: int) -> None:
    for key, count in protection.counts.items():
        if 0 < count < 5:
            assert protection.published(key) is None, key
    assert _recomputable(protection, dimensions) == set()


# ---------------------------------------------------------------- worked examples


def test_one_small_cell_in_a_row_takes_a_second_one_with_it() -> None:
    cells = {("80021",): 3, ("80223",): 12, ("80001",): 40}
    protection = protect(cells, 1)
    assert protection.primary == {("80021",)}
    # the total is published: 80021 would be 55 - 12 - 40 without a complement
    assert protection.secondary == {("80223",)}
    assert protection.published((TOTAL,)) == 55
    _assert_safe(protection, 1)


def test_nothing_small_nothing_suppressed() -> None:
    protection = protect({("a",): 5, ("b",): 0, ("c",): 17}, 1)
    assert protection.primary == protection.secondary == frozenset()
    assert protection.published(("b",)) == 0


def test_a_small_total_is_suppressed_as_well() -> None:
    protection = protect({("a",): 2, ("b",): 1}, 1)
    assert protection.published((TOTAL,)) is None
    _assert_safe(protection, 1)


def test_the_classic_two_way_table() -> None:
    # age band x household type: one small cell needs three complements, the corners of a
    # rectangle, or its row and its column give it away (greedy: the smallest complement that
    # also completes its crossing line)
    cells = {
        ("18-24", "single"): 2,
        ("18-24", "couple"): 20,
        ("25-39", "single"): 30,
        ("25-39", "couple"): 45,
        ("40-54", "single"): 25,
        ("40-54", "couple"): 60,
    }
    protection = protect(cells, 2)
    assert protection.primary == {("18-24", "single")}
    assert protection.secondary == {
        ("18-24", "couple"),
        ("25-39", "single"),
        ("25-39", "couple"),
    }
    _assert_safe(protection, 2)


def test_two_small_cells_in_one_row_still_need_their_columns_protected() -> None:
    cells = {("a", "x"): 1, ("a", "y"): 2, ("b", "x"): 9, ("b", "y"): 11, ("c", "x"): 7}
    protection = protect(cells, 2)
    assert {("a", "x"), ("a", "y")} <= protection.primary
    _assert_safe(protection, 2)


def test_margins_are_computed_with_zeros_for_absent_combinations() -> None:
    extended = extend({("a", "x"): 6, ("b", "y"): 7}, 2)
    assert extended[("a", "y")] == 0
    assert extended[("a", TOTAL)] == 6
    assert extended[(TOTAL, TOTAL)] == 13


def test_three_dimensions_never_publish_a_small_count() -> None:
    cells = {k: 3 + 7 * (i % 2) for i, k in enumerate(product("ab", "xy", "uv"))}
    protection = protect({tuple(k): v for k, v in cells.items()}, 3)
    assert all(protection.published(k) is None for k, c in protection.counts.items() if 0 < c < 5)


# ---------------------------------------------------------------- the property

_counts = st.one_of(st.integers(0, 6), st.integers(0, 60))


@settings(max_examples=300, deadline=None)
@given(st.lists(_counts, min_size=1, max_size=8))
def test_no_suppressed_cell_of_a_line_can_be_recomputed(counts: list[int]) -> None:
    cells = {(f"c{i}",): count for i, count in enumerate(counts)}
    _assert_safe(protect(cells, 1), 1)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 5).flatmap(
        lambda rows: st.integers(1, 5).flatmap(
            lambda columns: st.lists(_counts, min_size=rows * columns, max_size=rows * columns).map(
                lambda values: (rows, columns, values)
            )
        )
    )
)
def test_no_suppressed_cell_of_a_two_way_table_can_be_recomputed(
    table: tuple[int, int, list[int]],
) -> None:
    rows, columns, values = table
    cells = {
        (f"r{r}", f"c{c}"): values[r * columns + c] for r in range(rows) for c in range(columns)
    }
    _assert_safe(protect(cells, 2), 2)


@given(st.lists(st.integers(0, 60), min_size=1, max_size=200))
def test_the_median_of_a_histogram_is_the_median_of_the_values(values: list[int]) -> None:
    import statistics

    from api.domain.statistics.rules import median_of_histogram

    histogram: dict[int, int] = {}
    for value in values:
        histogram[value] = histogram.get(value, 0) + 1
    assert median_of_histogram(histogram) == round(statistics.median(values), 1)
    assert median_of_histogram({}) is None
