#!/usr/bin/env python3
"""Set up and run the project with nothing but Python 3.11+.

    python3 dev.py run     # install, migrate, serve on :8000, load the demo territory
    python3 dev.py test    # install, lint, type-check, run the whole test suite in parallel

It creates `.venv`, installs `uv` into it, and installs the locked dependencies
(`uv.lock`), again only when those changed. Extra arguments after `run` go to
`guichet serve`; after `test`, to pytest (e.g. `-m "not slow"`, `-n 0`, a test file).
"""

from __future__ import annotations

import hashlib
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
    if _installed() == _wanted():
        return  # nothing changed since the last install: a warm start skips uv
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    if not (BIN / "uv").exists():
        sh(str(BIN / "python"), "-m", "pip", "install", "--quiet", "uv>=0.5")
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(VENV)}
    # Bytecode compiled once here: where PYTHONDONTWRITEBYTECODE is set (CI, containers),
    # every start would otherwise compile some 1,300 modules again (5 to 13 s measured).
    sh(str(BIN / "uv"), "sync", "--locked", "--quiet", "--compile-bytecode", env=env)
    STAMP.write_text(_wanted())


def compile_project() -> None:
    """The project's own modules, compiled when changed (cheap when nothing did)."""
    subprocess.run(
        [str(BIN / "python"), "-m", "compileall", "-q", "api", "tests", "bench"], cwd=ROOT
    )


STAMP = VENV / ".dev-installed"


def _wanted() -> str:
    """What the environment was installed from: the lock, the project, this Python and the
    way this file installs."""
    digest = hashlib.sha256((sys.version + "compiled").encode())
    for name in ("uv.lock", "pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def _installed() -> str:
    has_tools = (BIN / "guichet").exists() and (BIN / "pytest").exists()
    return STAMP.read_text() if has_tools and STAMP.exists() else ""


def run(args: list[str]) -> None:
    setup()
    compile_project()
    # One process: it starts the database, migrates, serves, loads the demo through its own
    # API and prints the URL, the logins and how to get a token once it accepts requests.
    os.execv(str(BIN / "guichet"), [str(BIN / "guichet"), "serve", "--demo", *args])


def test(args: list[str]) -> None:
    setup()
    compile_project()
    sh(str(BIN / "ruff"), "check", "api", "tests", "bench", "examples")
    sh(str(BIN / "ruff"), "format", "--check", "api", "tests", "bench", "examples")
    sh(str(BIN / "mypy"))
    sh(str(BIN / "guichet"), "openapi", "--check")
    # One worker per core, each with its own database; `-n 0` (after `test`) runs in-process.
    sh(str(BIN / "pytest"), "-n", "auto", "--dist", "worksteal", *args)


if __name__ == "__main__":
    command, rest = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if command == "run":
        run(rest)
    elif command == "test":
        test(rest)
    else:
        sys.exit(__doc__)
