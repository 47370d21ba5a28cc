"""`guichet serve` runs one worker process per core by default, one with the embedded
PostgreSQL (each worker would start and stop its own)."""

from __future__ import annotations

import os

from api.cli import default_workers


def test_one_worker_per_usable_core_with_a_database_url() -> None:
    cores = len(os.sched_getaffinity(0))
    assert default_workers("postgresql://db/guichet") == cores


def test_one_worker_with_the_embedded_database() -> None:
    assert default_workers(None) == 1
    assert default_workers("") == 1
