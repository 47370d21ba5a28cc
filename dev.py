#!/usr/bin/env python3
"""Set up and run the project with nothing but Python 3.11+.

    python3 dev.py run     # install, migrate, load the demo territory, serve on :8000
    python3 dev.py test    # install, lint, type-check, run the whole test suite

It creates `.venv`, installs `uv` into it, and installs the locked dependencies
(`uv.lock`). Extra arguments after `run` go to `guichet serve`; after `test`, to pytest.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def sh(*args: str, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(args), flush=True)
    result = subprocess.run(args, cwd=ROOT, env=env)
    if result.returncode != 0:
        sys.exit(result.returncode)


def setup() -> None:
    if sys.version_info < (3, 11):
        sys.exit("Python 3.11 or newer is required.")
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    if not (BIN / "uv").exists():
        sh(str(BIN / "python"), "-m", "pip", "install", "--quiet", "uv>=0.5")
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(VENV)}
    sh(str(BIN / "uv"), "sync", "--locked", "--quiet", env=env)


def run(args: list[str]) -> None:
    setup()
    sh(str(BIN / "guichet"), "demo")
    os.execv(str(BIN / "guichet"), [str(BIN / "guichet"), "serve", *args])


def test(args: list[str]) -> None:
    setup()
    sh(str(BIN / "ruff"), "check", "api", "tests", "bench", "examples")
    sh(str(BIN / "ruff"), "format", "--check", "api", "tests", "bench", "examples")
    sh(str(BIN / "mypy"))
    sh(str(BIN / "guichet"), "openapi", "--check")
    sh(str(BIN / "pytest"), *args)


if __name__ == "__main__":
    command, rest = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if command == "run":
        run(rest)
    elif command == "test":
        test(rest)
    else:
        sys.exit(__doc__)
