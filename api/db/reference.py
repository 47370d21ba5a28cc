"""Loads the shipped reference data: official geography (COG) and the seeded catalogue.

Idempotent: each dataset is reloaded only when its files changed (checksum), COG rows are
upserted, and seeded competences are inserted only when missing so the platform operator's
edits of the catalogue survive upgrades.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table as SATable
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from api.db.base import core_table
from api.db.tables import Commune, Competence, Departement, Epci, Region
from api.domain.catalogue import SEEDED_COMPETENCES
from api.domain.territories.tables import ReferenceLoad
from api.domain.text import fold

COG_DIR = Path(__file__).parent / "reference_data" / "cog"
_BATCH = 5000


def _rows(name: str) -> Iterator[dict[str, str]]:
    path = COG_DIR / name
    raw = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
    yield from csv.DictReader(io.StringIO(raw.decode("utf-8")))


def _checksum(*names: str) -> str:
    digest = hashlib.sha256()
    for name in names:
        digest.update((COG_DIR / name).read_bytes())
    return digest.hexdigest()


def _geography() -> list[tuple[SATable, list[dict[str, Any]]]]:
    regions = [{"code": r["code"], "name": r["nom"]} for r in _rows("regions.csv")]
    departements = [
        {
            "code": r["code"],
            "name": r["nom"],
            "region_code": r["region"],
            "chef_lieu": r["chef_lieu"],
        }
        for r in _rows("departements.csv")
    ]
    epcis = [
        {
            "siren": r["siren"],
            "name": r["nom"],
            "type": r["type"],
            "population": int(r["population"] or 0),
        }
        for r in _rows("epci.csv.gz")
    ]
    communes = [
        {
            "code": r["code"],
            "name": r["nom"],
            "siren": r["siren"] or None,
            "search_name": fold(r["nom"]),
            "departement_code": r["departement"],
            "region_code": r["region"],
            "epci_siren": r["epci"] or None,
            "population": int(r["population"] or 0),
            "postal_codes": r["codes_postaux"].split(),
        }
        for r in _rows("communes.csv.gz")
    ]
    return [
        (core_table(Region), regions),
        (core_table(Departement), departements),
        (core_table(Epci), epcis),
        (core_table(Commune), communes),
    ]


async def _upsert(conn: AsyncConnection, table: SATable, rows: list[dict[str, Any]]) -> None:
    key = [c.name for c in table.primary_key.columns]
    for start in range(0, len(rows), _BATCH):
        stmt = insert(table)
        update = {c: stmt.excluded[c] for c in rows[0] if c not in key}
        await conn.execute(
            stmt.on_conflict_do_update(index_elements=key, set_=update),
            rows[start : start + _BATCH],
        )


async def _already_loaded(conn: AsyncConnection, name: str, checksum: str) -> bool:
    table = core_table(ReferenceLoad)
    current = await conn.scalar(
        table.select().with_only_columns(table.c.checksum).where(table.c.name == name)
    )
    return bool(current == checksum)


async def _mark_loaded(conn: AsyncConnection, name: str, checksum: str) -> None:
    table = core_table(ReferenceLoad)
    stmt = insert(table).values(name=name, checksum=checksum, loaded_at=datetime.now(UTC))
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={"checksum": checksum, "loaded_at": stmt.excluded.loaded_at},
        )
    )


async def load_reference_data(conn: AsyncConnection) -> None:
    cog_sum = _checksum("regions.csv", "departements.csv", "epci.csv.gz", "communes.csv.gz")
    if not await _already_loaded(conn, "cog", cog_sum):
        for table, rows in _geography():
            await _upsert(conn, table, rows)
        await _mark_loaded(conn, "cog", cog_sum)
        # fresh statistics: a server whose autovacuum is off would otherwise plan blind
        for name in ("region", "departement", "epci", "commune"):
            await conn.execute(text(f"ANALYZE {name}"))

    competences = [
        {
            "code": c.code,
            "label": c.label,
            "legal_holder_kinds": sorted(c.legal_holder_kinds),
            "delegable_to": sorted(c.delegable_to),
            "sensitive": c.sensitive,
        }
        for c in SEEDED_COMPETENCES
    ]
    await conn.execute(
        insert(core_table(Competence)).on_conflict_do_nothing(index_elements=["code"]),
        competences,
    )
