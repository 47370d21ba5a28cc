"""Reference client: synchronise a département information system's CSV export of legal-aid
dossiers into the guichet unique, through its public API.

    python examples/sync_from_csv.py --base-url https://guichet.example.fr \\
        --client-id "$GUICHET_CLIENT_ID" --client-secret "$GUICHET_CLIENT_SECRET" \\
        --system iodas-cd80 examples/dossiers_sample.csv

What it shows, end to end:

1. an API client of the département with the ``dossiers:sync`` scope signs in with the
   OAuth2 ``client_credentials`` grant (``POST /v1/auth/token``), and signs in again when
   its 15-minute token is about to expire;
2. each CSV line becomes one sync item: the export's own codes are mapped to the service's
   (``STATUSES``, ``DECISIONS``), the line's last modification becomes ``source_updated_at``;
3. items go in batches of at most 1,000 to ``POST /v1/sync/dossiers``, each batch with its
   own ``Idempotency-Key``, reused when the batch is retried after a network error or a 5xx
   (a retry never applies a batch twice);
4. the per-item report is summed up, and every ``conflict`` or ``error`` is printed with the
   CSV line it comes from and the fields it names.

Running the same export twice reports every line ``unchanged`` the second time. Exit code:
0 when every line was applied or unchanged, 1 when some were not (see the printed lines), 2
when the service could not be reached or refused the client.

The CSV (UTF-8, ``;``-separated, one header line) has these columns; empty cells are absent
values. ``id_guichet`` links a dossier instructed by a partner (read from the change feed) to
``numero_dossier`` the first time; leave the instruction columns empty for such dossiers:
their instruction belongs to the partner.

=====================  ============================================================
column                 sync item field
=====================  ============================================================
numero_dossier         ``external_ref.id`` (``external_ref.system``: ``--system``)
id_guichet             ``dossier_id``
prestation             ``prestation`` (rsa, apa, pch, ash, fsl, faj)
statut                 ``status``, through ``STATUSES``
nir                    ``beneficiary.nir``
nom_naissance …        ``beneficiary.birth_name``, ``usage_name``, ``first_names``,
sexe, commune_insee    ``birth_date``, ``sex``, ``commune``
taille_foyer …         ``instruction.household_size``, ``monthly_resources``,
date_demande           ``housing``, ``requested_on``
decision …             ``decision.decision`` (through ``DECISIONS``), ``amount``,
date_decision          ``start_on``, ``end_on``, ``reason``, ``decided_on``
maj                    ``source_updated_at`` (RFC 3339, with its offset)
=====================  ============================================================
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

MAX_BATCH = 1000
RETRIES = 3

#: the export's status codes → the service's
STATUSES = {
    "brouillon": "draft",
    "depose": "submitted",
    "en_instruction": "under_review",
    "decide": "decided",
    "notifie": "notified",
    "clos": "closed",
}
#: the export's decision codes → the service's
DECISIONS = {"accord": "granted", "rejet": "rejected", "ajournement": "adjourned"}

BENEFICIARY = {
    "nir": "nir",
    "nom_naissance": "birth_name",
    "nom_usage": "usage_name",
    "prenoms": "first_names",
    "date_naissance": "birth_date",
    "sexe": "sex",
    "commune_insee": "commune",
}
INSTRUCTION = {
    "taille_foyer": "household_size",
    "ressources_mensuelles": "monthly_resources",
    "logement": "housing",
    "date_demande": "requested_on",
}
DECISION = {
    "montant": "amount",
    "debut_droit": "start_on",
    "fin_droit": "end_on",
    "motif": "reason",
    "date_decision": "decided_on",
}


class Failure(Exception):
    """The service cannot be used (unreachable, or refusing the client)."""


@dataclass(frozen=True)
class Line:
    number: int  # in the CSV file, the header being line 1
    item: dict[str, Any]


def _cells(row: dict[str, str], names: dict[str, str]) -> dict[str, str]:
    return {field: row[column].strip() for column, field in names.items() if row.get(column)}


def to_item(row: dict[str, str], system: str) -> dict[str, Any]:
    """One CSV line as a sync item (codes mapped; unknown codes are sent as they are, and
    the service reports them as errors naming the field)."""
    item: dict[str, Any] = {
        "external_ref": {"system": system, "id": row["numero_dossier"].strip()},
        "beneficiary": _cells(row, BENEFICIARY),
        "prestation": row["prestation"].strip(),
        "status": STATUSES.get(row["statut"].strip(), row["statut"].strip()),
        "source_updated_at": row["maj"].strip(),
    }
    if row.get("id_guichet"):
        item["dossier_id"] = row["id_guichet"].strip()
    instruction: dict[str, Any] = _cells(row, INSTRUCTION)
    if "household_size" in instruction:
        instruction["household_size"] = int(instruction["household_size"])
    if instruction:
        item["instruction"] = instruction
    if row.get("decision"):
        code = row["decision"].strip()
        item["decision"] = {"decision": DECISIONS.get(code, code), **_cells(row, DECISION)}
    return item


def read_export(path: Path, system: str) -> list[Line]:
    with path.open(newline="", encoding="utf-8") as f:
        return [
            Line(number, to_item(row, system))
            for number, row in enumerate(csv.DictReader(f, delimiter=";"), start=2)
        ]


def batches(lines: Sequence[Line], size: int) -> Iterator[Sequence[Line]]:
    for start in range(0, len(lines), size):
        yield lines[start : start + size]


class Guichet:
    """The service's API as this client uses it."""

    def __init__(self, base_url: str, client_id: str, client_secret: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=120)
        self.client_id = client_id
        self.client_secret = client_secret
        self.token: str | None = None
        self.expires_at = 0.0

    def _bearer(self) -> dict[str, str]:
        if self.token is None or time.monotonic() > self.expires_at - 60:
            r = self.http.post(
                "/v1/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                },
            )
            if r.status_code != 200:
                raise Failure(f"sign-in refused ({r.status_code}): {r.text[:300]}")
            answer = r.json()
            self.token = answer["access_token"]
            self.expires_at = time.monotonic() + float(answer.get("expires_in", 900))
        return {"Authorization": f"Bearer {self.token}"}

    def sync(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One batch, retried with the same Idempotency-Key: applied once at most."""
        key = str(uuid.uuid4())
        for attempt in range(1, RETRIES + 1):
            try:
                r = self.http.post(
                    "/v1/sync/dossiers",
                    json={"items": items},
                    headers={**self._bearer(), "Idempotency-Key": key},
                )
            except httpx.TransportError as error:
                if attempt == RETRIES:
                    raise Failure(f"service unreachable: {error}") from error
            else:
                if r.status_code == 200:
                    results: list[dict[str, Any]] = r.json()["results"]
                    return results
                retryable = r.status_code >= 500 or r.status_code in (409, 429)
                if not retryable or attempt == RETRIES:
                    raise Failure(f"batch refused ({r.status_code}): {r.text[:500]}")
            time.sleep(float(2**attempt))
        raise Failure("unreachable")  # the loop returns or raises


def describe(line: Line, result: dict[str, Any]) -> str:
    problem = result.get("problem") or {}
    fields = ", ".join(
        e["pointer"].split("/", 3)[-1] for e in problem.get("errors", []) if e.get("pointer")
    )
    where = f" [{fields}]" if fields else ""
    reference = line.item["external_ref"]["id"]
    return (
        f"line {line.number} ({reference}): {result['outcome']} "
        f"{problem.get('code', '')} - {problem.get('detail', '')}{where}"
    )


def run(args: argparse.Namespace) -> int:
    lines = read_export(args.csv, args.system)
    guichet = Guichet(args.base_url, args.client_id, args.client_secret)
    totals: Counter[str] = Counter()
    problems: list[str] = []
    for batch in batches(lines, args.batch_size):
        results = guichet.sync([line.item for line in batch])
        for line, result in zip(batch, results, strict=True):
            totals[result["outcome"]] += 1
            if result["outcome"] in ("conflict", "error"):
                problems.append(describe(line, result))
    print(f"{len(lines)} line(s) of {args.csv.name} synchronised as {args.system}")
    for outcome in ("created", "updated", "unchanged", "conflict", "error"):
        print(f"  {outcome}: {totals[outcome]}")
    for problem in problems:
        print(f"  ! {problem}")
    return 1 if problems else 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", type=Path, help="the export (UTF-8, ';'-separated)")
    parser.add_argument("--base-url", default=os.environ.get("GUICHET_URL"))
    parser.add_argument("--client-id", default=os.environ.get("GUICHET_CLIENT_ID"))
    parser.add_argument("--client-secret", default=os.environ.get("GUICHET_CLIENT_SECRET"))
    parser.add_argument(
        "--system", default="si-departement", help="the name of your system's references"
    )
    parser.add_argument("--batch-size", type=int, default=MAX_BATCH, help="1 to 1000")
    args = parser.parse_args(argv)
    if not (args.base_url and args.client_id and args.client_secret):
        parser.error("--base-url, --client-id and --client-secret (or GUICHET_URL, …) needed")
    if not 1 <= args.batch_size <= MAX_BATCH:
        parser.error(f"--batch-size is between 1 and {MAX_BATCH}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except Failure as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
