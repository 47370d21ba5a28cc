"""Statistical disclosure control: which cells of a count table may be published.

Pure (no I/O). A table has one, two or three dimensions; its cells are keyed by a tuple of
dimension values, and it is *extended* with every marginal total, keyed with :data:`TOTAL`
in the summed positions (``("80021", TOTAL)`` is the total of commune 80021 over the second
dimension, ``(TOTAL, TOTAL)`` the grand total). Margins count as published figures: a
reader can get them from a coarser request.

1. **Primary suppression**: every entry (cell or margin) counting 1 to 4 people or records.
2. **Complementary suppression**, so that no suppressed entry can be recomputed from what is
   published:
   - each *line* (the cells of a row or column and its total) holds zero or at least two
     suppressed entries: one alone is the total minus the others;
   - in two dimensions, a suppressed entry is determined by the published ones exactly when
     it is a *bridge* of the bipartite graph rows × columns whose edges are the suppressed
     entries (an entry on a cycle can shift by +d/−d around the cycle without changing any
     published sum); each bridge gets a complementary entry that closes a cycle through it;
   - three dimensions: every two-dimensional slice (margin slices included) is protected
     that way, until nothing changes. This is the usual practice for three-way tables; it
     does not solve the general three-way problem exactly.

The complement chosen is always the least informative one: an interior cell before a margin,
a non-zero count before a zero, the smallest count first. Amounts, rates and medians of a
suppressed cell are suppressed with its count (the caller applies :class:`Protection`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import product

THRESHOLD = 5  # counts 1 .. THRESHOLD - 1 are never published
TOTAL = "*"  # the summed position of a margin's key
MAX_DIMENSIONS = 3

Key = tuple[str, ...]


@dataclass(frozen=True)
class Protection:
    """The outcome for an extended table: what is published and what is not, and why."""

    counts: Mapping[Key, int]  # every entry of the extended table, margins included
    primary: frozenset[Key]
    secondary: frozenset[Key]

    def suppressed(self, key: Key) -> bool:
        return key in self.primary or key in self.secondary

    def published(self, key: Key) -> int | None:
        """The count a reader may see for ``key``, or None when it is suppressed."""
        return None if self.suppressed(key) else self.counts.get(key, 0)


def is_primary(count: int) -> bool:
    return 0 < count < THRESHOLD


def extend(cells: Mapping[Key, int], dimensions: int) -> dict[Key, int]:
    """The table with every marginal total; absent combinations are zero."""
    if not 1 <= dimensions <= MAX_DIMENSIONS:
        raise ValueError(f"1 to {MAX_DIMENSIONS} dimensions, not {dimensions}")
    values = _axis_values(cells, dimensions)
    extended: dict[Key, int] = {}
    for key in product(*[[*axis, TOTAL] for axis in values]):
        extended[key] = 0
    for key, count in cells.items():
        if len(key) != dimensions or TOTAL in key:
            raise ValueError(f"cell key {key!r} does not have {dimensions} plain values")
        if count < 0:
            raise ValueError("counts are never negative")
        for mask in product((False, True), repeat=dimensions):
            extended[tuple(TOTAL if m else v for v, m in zip(key, mask, strict=True))] += count
    return extended


def protect(cells: Mapping[Key, int], dimensions: int) -> Protection:
    """Suppress what must not be published in the table of ``cells``."""
    counts = extend(cells, dimensions)
    primary = frozenset(k for k, c in counts.items() if is_primary(c))
    suppressed = set(primary)
    if dimensions == 1:
        _protect_line(counts, suppressed, list(counts))  # one line: one pass is enough
    else:
        slices = list(_slices(_axis_values(cells, dimensions), dimensions))
        changed = True
        while changed:
            before = len(suppressed)
            for grid in slices:
                _protect_grid(counts, suppressed, grid)
            changed = len(suppressed) != before
    return Protection(counts, primary, frozenset(suppressed - primary))


def _axis_values(cells: Iterable[Key], dimensions: int) -> list[list[str]]:
    seen: list[set[str]] = [set() for _ in range(dimensions)]
    for key in cells:
        for axis, value in enumerate(key[:dimensions]):
            seen[axis].add(value)
    return [sorted(axis) for axis in seen]


# a two-dimensional slice of the extended table: (row value, column value) -> entry key
Grid = dict[tuple[str, str], Key]


def _slices(values: list[list[str]], dimensions: int) -> Iterable[Grid]:
    """Every two-dimensional slice of the extended table, margin slices included."""
    axes = range(dimensions)
    for row_axis, column_axis in ((a, b) for a in axes for b in axes if a < b):
        others = [a for a in axes if a not in (row_axis, column_axis)]
        for fixed in product(*[[*values[a], TOTAL] for a in others]):
            grid: Grid = {}
            for row, column in product([*values[row_axis], TOTAL], [*values[column_axis], TOTAL]):
                key = [""] * dimensions
                key[row_axis], key[column_axis] = row, column
                for axis, value in zip(others, fixed, strict=True):
                    key[axis] = value
                grid[(row, column)] = tuple(key)
            yield grid


def _preference(counts: Mapping[Key, int], key: Key) -> tuple[bool, bool, int]:
    """Least informative complement first: interior, non-zero, smallest."""
    return (TOTAL in key, counts[key] == 0, counts[key])


def _protect_line(
    counts: Mapping[Key, int],
    suppressed: set[Key],
    line: list[Key],
    closes_another: Callable[[Key], bool] = lambda key: False,
) -> Key | None:
    """A line (cells and their total) with a single suppressed entry gets a second one,
    preferably one whose crossing line needs a complement too (one entry serves both)."""
    hidden = [k for k in line if k in suppressed]
    if len(hidden) != 1 or len(line) < 2:
        return None
    others = [k for k in line if k not in suppressed]
    chosen = min(others, key=lambda k: (TOTAL in k, not closes_another(k), *_preference(counts, k)))
    suppressed.add(chosen)
    return chosen


def _protect_grid(counts: Mapping[Key, int], suppressed: set[Key], grid: Grid) -> None:
    rows = sorted({r for r, _ in grid})
    columns = sorted({c for _, c in grid})
    row_lines = {row: [grid[(row, c)] for c in columns] for row in rows}
    column_lines = {column: [grid[(r, column)] for r in rows] for column in columns}
    position = {key: rc for rc, key in grid.items()}
    # suppressed entries per row and column, kept current as complements are added
    hidden_rows: dict[str, int] = {}
    hidden_columns: dict[str, int] = {}

    def count_hidden() -> None:
        for row, line in row_lines.items():
            hidden_rows[row] = sum(k in suppressed for k in line)
        for column, line in column_lines.items():
            hidden_columns[column] = sum(k in suppressed for k in line)

    def column_lonely(key: Key) -> bool:
        return hidden_columns[position[key][1]] == 1

    def row_lonely(key: Key) -> bool:
        return hidden_rows[position[key][0]] == 1

    changed = any(key in suppressed for key in grid.values())  # most slices: nothing to do
    while changed:
        changed = False
        count_hidden()
        for lines, lonely in ((row_lines, column_lonely), (column_lines, row_lonely)):
            for line in lines.values():
                added = _protect_line(counts, suppressed, line, lonely)
                if added is not None:
                    row, column = position[added]
                    hidden_rows[row] += 1
                    hidden_columns[column] += 1
                    changed = True
        # every bridge of this pass at once: closing one may close others, which is only
        # more protection; the next pass finds what is left
        for bridge in _bridges([rc for rc, key in grid.items() if key in suppressed]):
            if grid[bridge] in suppressed:
                _close_cycle(counts, suppressed, grid, bridge)
                changed = True


def _bridges(edges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The suppressed entries that no cycle of suppressed entries goes through.

    Rows and columns are distinct nodes (a row value may equal a column value)."""
    adjacency: dict[tuple[int, str], list[tuple[tuple[int, str], int]]] = defaultdict(list)
    for index, (row, column) in enumerate(edges):
        adjacency[(0, row)].append(((1, column), index))
        adjacency[(1, column)].append(((0, row), index))
    order: dict[tuple[int, str], int] = {}
    low: dict[tuple[int, str], int] = {}
    found: list[tuple[str, str]] = []
    for root in adjacency:
        if root in order:
            continue
        order[root] = low[root] = len(order)
        stack = [(root, -1, iter(adjacency[root]))]
        while stack:
            node, via, neighbours = stack[-1]
            advanced = False
            for neighbour, edge in neighbours:
                if edge == via:
                    continue
                if neighbour in order:
                    low[node] = min(low[node], order[neighbour])
                else:
                    order[neighbour] = low[neighbour] = len(order)
                    stack.append((neighbour, edge, iter(adjacency[neighbour])))
                    advanced = True
                    break
            if advanced:
                continue
            stack.pop()
            if stack:
                parent = stack[-1][0]
                low[parent] = min(low[parent], low[node])
                if low[node] > order[parent]:
                    found.append(edges[via])
    return found


def _close_cycle(
    counts: Mapping[Key, int], suppressed: set[Key], grid: Grid, bridge: tuple[str, str]
) -> None:
    """Suppress one more entry of the grid so that a cycle runs through ``bridge``."""
    row, column = bridge
    edges = [rc for rc, key in grid.items() if key in suppressed and rc != bridge]
    row_side = _component(edges, (0, row))
    column_side = _component(edges, (1, column))
    candidates = [
        key
        for (r, c), key in grid.items()
        if key not in suppressed
        and (
            ((0, r) in row_side and (1, c) in column_side)
            or ((0, r) in column_side and (1, c) in row_side)
        )
    ]
    if not candidates:  # degenerate slice: nothing can hide the bridge but the whole slice
        suppressed.update(grid.values())
        return
    suppressed.add(min(candidates, key=lambda k: _preference(counts, k)))


def _component(edges: list[tuple[str, str]], start: tuple[int, str]) -> set[tuple[int, str]]:
    adjacency: dict[tuple[int, str], list[tuple[int, str]]] = defaultdict(list)
    for row, column in edges:
        adjacency[(0, row)].append((1, column))
        adjacency[(1, column)].append((0, row))
    seen, todo = {start}, [start]
    while todo:
        for neighbour in adjacency[todo.pop()]:
            if neighbour not in seen:
                seen.add(neighbour)
                todo.append(neighbour)
    return seen
