"""The yearly ABS report: HTML with inline charts, PDF and CSV by Accept; no suppressed
figure in any of them; opened in a real headless Chromium when the machine has one."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageStat

from api.domain import clock
from tests.api.people_support import Headers, create
from tests.api.test_statistics import CORBIE, _people_in_corbie

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


async def _report(
    client: httpx.AsyncClient, headers: dict[str, str], accept: str, territory: str = CORBIE
) -> httpx.Response:
    return await client.get(
        "/v1/statistics/report",
        params={"territory": f"commune:{territory}", "year": clock.today().year},
        headers={**headers, "Accept": accept},
    )


class _Cells(HTMLParser):
    """The text of every table cell, with whether it is marked secret."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[str, str]] = []
        self._class: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "td":
            self._class = dict(attrs).get("class") or ""

    def handle_data(self, data: str) -> None:
        if self._class is not None:
            self.cells.append((self._class, data.strip()))
            self._class = None


def _small_figures(values: list[str]) -> list[str]:
    """Published counts from 1 to 4 (rates and medians have a decimal comma)."""
    return [v for v in values if re.fullmatch(r"[1-4]", v)]


async def test_the_report_in_html_csv_and_pdf(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    await _people_in_corbie(client, as_persona)  # 7 aged 25-39, 2 aged 75+: one small cell
    pilotage = as_persona("pilotage")
    page = await _report(client, pilotage, "text/html")
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    text = page.text
    assert "Analyse des besoins sociaux" in text and "Corbie" in text
    assert text.count("<svg") >= 3  # ages, referrals, rates
    assert "<script" not in text and "http://" not in text.split("<svg", 1)[0]
    parser = _Cells()
    parser.feed(text)
    assert parser.cells
    assert _small_figures([v for _, v in parser.cells]) == []
    assert all(v == "s" for cls, v in parser.cells if cls == "secret")
    assert any(v == "s" for _, v in parser.cells)  # the two people aged 75+ are hidden

    table = await _report(client, pilotage, "text/csv")
    assert table.status_code == 200 and table.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert {r["tableau"] for r in rows} >= {"people_age", "people_household", "rates"}
    assert _small_figures([r["valeur"] for r in rows]) == []
    ages = {
        r["ligne"]: r["valeur"]
        for r in rows
        if r["tableau"] == "people_age" and r["colonne"] == str(clock.today().year)
    }
    assert ages["75+"] == "s" and ages["Ensemble"] == "9"

    document = await _report(client, pilotage, "application/pdf")
    assert document.status_code == 200
    assert document.content.startswith(b"%PDF") and len(document.content) > 5000

    assert (await _report(client, pilotage, "image/png")).status_code == 406
    assert (await _report(client, as_persona("ccas_agent"), "text/html")).status_code == 403


async def test_a_commune_report_counts_no_sensitive_record_in_its_comparison(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    """Sensitive competences appear only at département level: the commune's own line beside
    its EPCI and département leaves them out like its tables do, or the difference between
    the two would publish the count the rule hides."""
    await _people_in_corbie(client, as_persona)  # 9 people, aide facultative
    sensitive = as_persona("departement_sensitive")
    for i in range(5):
        await create(
            client,
            sensitive,
            competence="ase",
            birth_name=f"Statprotege{i}",
            birth_date=f"201{i}-06-1{i}",
            commune=CORBIE,
        )
    table = await _report(client, as_persona("pilotage"), "text/csv")
    assert table.status_code == 200, table.text
    rows = list(csv.DictReader(io.StringIO(table.text)))
    corbie = [
        r["valeur"]
        for r in rows
        if r["tableau"] == "rates" and r["colonne"] == "nombre" and r["ligne"] == "Corbie"
    ]
    # the commune's row of the table and the comparison's first line
    assert corbie == ["9", "9"]


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium on this machine (Debian: apt-get install -y chromium; .ci/run does it)",
)
async def test_the_report_renders_in_a_real_browser(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    assert CHROMIUM is not None
    await _people_in_corbie(client, as_persona)
    page = await _report(client, as_persona("pilotage"), "text/html")
    assert page.status_code == 200
    # a probe, in the test's copy only: the size each chart was laid out at
    probe = (
        "<script>document.querySelectorAll('figure.chart svg').forEach(s => {"
        "const r = s.getBoundingClientRect();"
        "s.setAttribute('data-rendered', Math.round(r.width) + 'x' + Math.round(r.height));"
        "});</script></body>"
    )
    dom, sizes, stddev = await asyncio.to_thread(_open_in_chromium, page.text, probe)
    assert len(sizes) == page.text.count("<svg") >= 3
    assert all(int(w) > 200 and int(h) > 100 for w, h in sizes), sizes
    assert stddev > 10  # the screenshot is not a blank page
    parser = _Cells()
    parser.feed(dom)
    assert _small_figures([v for _, v in parser.cells]) == []


def _open_in_chromium(text: str, probe: str) -> tuple[str, list[tuple[str, str]], float]:
    """The DOM after layout, the chart sizes the probe recorded, the screenshot's contrast."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as folder:
        html = Path(folder) / "abs.html"
        html.write_text(text.replace("</body>", probe), encoding="utf-8")
        shot = Path(folder) / "abs.png"
        common = [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1200,2400",
        ]
        dom = subprocess.run(
            [*common, "--dump-dom", html.as_uri()], capture_output=True, timeout=120, check=True
        ).stdout.decode()
        subprocess.run(
            [*common, f"--screenshot={shot}", html.as_uri()],
            capture_output=True,
            timeout=120,
            check=True,
        )
        with Image.open(shot) as image:
            stddev = ImageStat.Stat(image.convert("L")).stddev[0]
    return dom, re.findall(r'data-rendered="(\d+)x(\d+)"', dom), stddev
