"""The README's walk from a token to a first referral, run as written (bash, curl, python3)
against the real service over HTTP, on the demo territory the tests load."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT
from tests.world import World

SECTION = "## From a token to a first referral"


def readme_walkthrough() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index(SECTION) :]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, "the walkthrough has no sh block"
    return match.group(1)


BASH = shutil.which("bash")


@pytest.mark.skipif(
    shutil.which("curl") is None or BASH is None, reason="the README's steps use bash and curl"
)
def test_the_readme_walks_from_a_token_to_a_sent_referral(live_server: str, world: World) -> None:
    """``world`` is the demo territory, committed: the README's login exists."""
    script = readme_walkthrough()
    assert script.startswith("API=http://127.0.0.1:8000\n")
    script = script.replace("API=http://127.0.0.1:8000", f"API={live_server}", 1)
    done = subprocess.run(
        [str(BASH), "-x", "-e", "-o", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "sent", done.stdout
    assert '"competence": "aide_alimentaire"' in done.stdout
