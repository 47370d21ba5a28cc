"""The reference client (examples/sync_from_csv.py) against the real service over HTTP: a
département's system syncs its CSV export, again (unchanged), and a faulty export."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.world import World

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "dossiers_sample.csv"
CLIENT_ID, CLIENT_SECRET = "test-client_with_scopes", "test-secret-client_with_scopes"


def run_client(base_url: str, csv: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "sync_from_csv.py"),
            "--base-url",
            base_url,
            "--client-id",
            CLIENT_ID,
            "--client-secret",
            CLIENT_SECRET,
            "--system",
            "iodas-cd80",
            *extra,
            str(csv),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_csv_export_is_synced_then_unchanged(live_server: str, world: World) -> None:
    lines = len(SAMPLE.read_text(encoding="utf-8").splitlines()) - 1
    first = run_client(live_server, SAMPLE)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"created: {lines}" in first.stdout
    # the same export again, in batches of two: nothing to do
    again = run_client(live_server, SAMPLE, "--batch-size", "2")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"unchanged: {lines}" in again.stdout

    # what the département's system now reads back through the API
    token = httpx.post(
        f"{live_server}/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    apa = httpx.get(
        f"{live_server}/v1/dossiers", params={"prestation": "apa", "limit": 200}, headers=headers
    )
    assert apa.status_code == 200
    read = [
        httpx.get(f"{live_server}/v1/dossiers/{d['id']}", headers=headers).json()
        for d in apa.json()["items"]
    ]
    synced = {
        r["external_refs"][0]["id"]: r
        for r in read
        if r["external_refs"] and r["external_refs"][0]["system"] == "iodas-cd80"
    }
    assert synced["APA-2026-000202"]["status"] == "decided"
    assert synced["APA-2026-000202"]["decision"]["amount"] == "310.00"
    assert synced["APA-2026-000201"]["status"] == "submitted"
    assert synced["APA-2026-000201"]["instruction"]["monthly_resources"] == "1450.00"


def test_a_faulty_line_is_reported_and_the_others_applied(
    live_server: str, world: World, tmp_path: Path
) -> None:
    header, *rows = SAMPLE.read_text(encoding="utf-8").splitlines()
    faulty = (
        rows[0].replace("RSA-2026-000101", "RSA-2026-009901").replace("en_instruction", "perdu")
    )
    fresh = (
        rows[1]
        .replace("RSA-2026-000102", "RSA-2026-009902")
        .replace("Carpentier-Exemple", "Autre-Exemple")
    )
    export = tmp_path / "export.csv"
    export.write_text("\n".join([header, faulty, fresh]) + "\n", encoding="utf-8")
    done = run_client(live_server, export)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "created: 1" in done.stdout and "error: 1" in done.stdout
    assert "line 2 (RSA-2026-009901): error validation-error" in done.stdout
    assert "[status]" in done.stdout
    refused = run_client(live_server, export, "--batch-size", "5000")
    assert refused.returncode == 2 and "batch-size" in refused.stderr
