"""The ABS document as HTML (charts inline as SVG, tables from a Jinja2 template), PDF and
CSV. Charts are drawn by matplotlib through its object API (no pyplot global state), so
rendering may run in a worker thread; the PDF comes from matplotlib's own PDF backend,
pure Python, no system library."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

import matplotlib
from jinja2 import Environment, FileSystemLoader, select_autoescape
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from api.domain.statistics.report import SUPPRESSED_MARK, Chart, Document, Table

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)
_BLUE, _GREY = "#000091", "#9a9aca"
# Chart text as SVG text, set in the report's font stack, rather than each glyph drawn as a
# path: the same words and figures, a quarter of the drawing time and ~40 % less HTML (a
# département's report: ~0.9 s of its rendering). Nothing else in the service draws SVG.
matplotlib.rcParams["svg.fonttype"] = "none"
_ROWS_PER_PDF_PAGE = 50


def html(document: Document) -> str:
    charts = [[_svg(chart) for chart in section.charts] for section in document.sections]
    template = _TEMPLATES.get_template("report.html")
    return template.render(document=document, charts=charts, secret=SUPPRESSED_MARK)


def csv_text(document: Document) -> str:
    """Every table in long form: table, row, column, value ("s" when secret)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["tableau", "titre", "ligne", "colonne", "valeur"])
    for table in _tables(document):
        for label, values in table.rows:
            for column, value in zip(table.columns, values, strict=True):
                writer.writerow([table.key, table.title, label, column, value])
    return out.getvalue()


def pdf(document: Document) -> bytes:
    out = io.BytesIO()
    with PdfPages(
        out, metadata={"Title": f"ABS {document.year} {document.territory_name}"}
    ) as pages:
        cover = Figure(figsize=(8.27, 11.69))
        cover.text(0.08, 0.9, f"Analyse des besoins sociaux {document.year}", fontsize=20)
        cover.text(0.08, 0.86, document.territory_name, fontsize=16)
        cover.text(
            0.08,
            0.8,
            "« s » : secret statistique (effectifs de 1 à 4 et ceux qui permettraient "
            "de les retrouver).",
            fontsize=9,
        )
        pages.savefig(cover)
        for section in document.sections:
            for chart in section.charts:
                pages.savefig(_figure(chart))
            for table in section.tables:
                for figure in _table_pages(table):
                    pages.savefig(figure)
    return out.getvalue()


def _tables(document: Document) -> Iterable[Table]:
    for section in document.sections:
        yield from section.tables


def _figure(chart: Chart) -> Figure:
    figure = Figure(figsize=(8, max(3.0, 0.35 * len(chart.categories) + 1.5)))
    axes = figure.subplots()
    count = max(1, len(chart.series))
    width = 0.8 / count
    colours = [_GREY, _BLUE, "#e1000f"]
    for index, (legend, values) in enumerate(chart.series.items()):
        positions = [i + (index - (count - 1) / 2) * width for i in range(len(chart.categories))]
        heights = [0.0 if v is None else v for v in values]
        draw = axes.barh if chart.horizontal else axes.bar
        draw(positions, heights, width, label=legend, color=colours[index % len(colours)])
    ticks = list(range(len(chart.categories)))
    if chart.horizontal:
        axes.set_yticks(ticks, chart.categories)
        axes.invert_yaxis()
    else:
        axes.set_xticks(ticks, chart.categories, rotation=30, ha="right")
    axes.set_title(chart.title)
    if len(chart.series) > 1:
        axes.legend()
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    return figure


def _svg(chart: Chart) -> str:
    out = io.StringIO()
    _figure(chart).savefig(out, format="svg")
    text = out.getvalue()
    return text[text.index("<svg") :]  # inline: no XML prolog or DOCTYPE


def _table_pages(table: Table) -> Iterable[Figure]:
    """A table on A4 pages: the header, then a text per column whose lines are the rows, at
    a fixed line spacing so that the columns' lines match (matplotlib's table, a text and a
    box per cell, took half of a PDF's drawing time)."""
    left, right, figures_from = 0.06, 0.94, 0.42  # the row labels, then the figures
    for start in range(0, max(1, len(table.rows)), _ROWS_PER_PDF_PAGE):
        rows = table.rows[start : start + _ROWS_PER_PDF_PAGE]
        figure = Figure(figsize=(8.27, 11.69))
        figure.text(left, 0.9, table.title, fontsize=11)
        if not rows:
            figure.text(left, 0.86, "Aucune donnée.", fontsize=9)
            yield figure
            continue
        share = (right - figures_from) / len(table.columns)
        edges = [figures_from + share * (j + 1) for j in range(len(table.columns))]
        figure.text(left, 0.862, table.row_label, fontsize=7, weight="bold")
        for edge, name in zip(edges, table.columns, strict=True):
            # "envoi → accepté" over two lines: five columns share half a page
            name = name.replace(" → ", " →\n")
            figure.text(edge, 0.862, name, ha="right", fontsize=7, weight="bold")
        for y in (0.885, 0.857):
            figure.add_artist(Line2D([left, right], [y, y], linewidth=0.6, color=_GREY))
        columns = [(left, "left", [label for label, _ in rows])] + [
            (edge, "right", [values[j] for _, values in rows]) for j, edge in enumerate(edges)
        ]
        for x, align, lines in columns:
            figure.text(x, 0.85, "\n".join(lines), ha=align, va="top", fontsize=8, linespacing=1.5)
        yield figure
