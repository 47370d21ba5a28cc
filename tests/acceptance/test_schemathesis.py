"""Property-based conformance: every documented operation, driven by schemathesis against the
real service over HTTP, with every check, answers no 5xx and nothing that violates the
committed schema — whoever calls (each example draws a persona of the demo, anonymous
included) and whatever the input: schemathesis's own cases, then hostile values mixed in
(NUL characters, integers beyond 64 bits, odd Unicode, forged cursors).

The suite runs a few examples per operation; a deeper run is one variable away::

    GUICHET_FUZZ_EXAMPLES=200 python3 dev.py test tests/acceptance/test_schemathesis.py
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig

from api.auth.keys import KeyRing
from api.http.openapi import OPENAPI_PATH
from api.settings import Settings
from tests.api.matrix import PERSONAS
from tests.world import World

EXAMPLES = int(os.environ.get("GUICHET_FUZZ_EXAMPLES", "4"))

pytestmark = pytest.mark.slow  # hundreds of cases over HTTP: the largest part of the suite

# Every check runs. A schema-valid request may still rightly be refused when the value names
# nothing (a commune code of the right shape that does not exist: 422; a cursor this service
# did not issue: 422; an update without If-Match: 428; an Accept header naming no media type
# the report is offered in: 406, as documented), or by the token endpoint in the words of
# RFC 6749 §5.2 (400 unsupported_grant_type), so positive data may also meet these.
CONFIG = SchemathesisConfig.from_dict(
    {
        # generated cases only: the examples the contract documents (the aid comparison's,
        # for one) are shown to readers, and a test drawing its persona cannot replay them
        "phases": {"examples": {"enabled": False}},
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": [
                    "2xx",
                    "400",
                    "401",
                    "403",
                    "404",
                    "406",
                    "409",
                    "412",
                    "422",
                    "428",
                    "429",
                ]
            }
        },
    }
)
schema = schemathesis.openapi.from_path(str(OPENAPI_PATH), config=CONFIG)

HOSTILE_TEXT = st.sampled_from(
    [
        "\x00",
        "Du\x00pont",
        "\u202eedcba",  # right-to-left override
        "\U0001d54f\U0001d550",  # mathematical letters outside the BMP
        "e\u0301\u0301\u0301",  # stacked combining marks
        "\ufeff\u200b\u2028",  # BOM, zero-width space, line separator
        "\uffff\ufffe",
        "İǅß",  # case mappings that change length
        "🏳️‍🌈",
        "Ø" * 3000,
        "' OR 1=1 --",
    ]
) | st.text(st.characters(blacklist_categories=["Cs"]), max_size=30)
HUGE_NUMBERS = st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**40, 1e308, -1e308])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
FORGED_CURSORS = JSON_VALUES.map(
    lambda v: base64.urlsafe_b64encode(json.dumps(v).encode()).decode()
) | st.sampled_from(["WzkyMjMzNzIwMzY4NTQ3NzU4MDgsIDFd", "WzEsMl0=", "%%%", "W10="])


# A path segment that is empty, a dot segment or holds a slash names another route: the
# contract of that other route is not the one being checked.
PATH_SEGMENTS = HOSTILE_TEXT.filter(lambda s: s.strip() not in ("", ".", "..") and "/" not in s)


def _hostile(data: st.DataObject, value: Any, key: str = "", *, path: bool = False) -> Any:
    """``value`` with some of its leaves replaced by hostile ones of the same kind."""
    if isinstance(value, dict):
        return {k: _hostile(data, v, str(k), path=path) for k, v in value.items()}
    if isinstance(value, list):
        return [_hostile(data, v, key) for v in value]
    if data.draw(st.integers(0, 3), label=f"mutate {key}") != 0:
        return value
    if key in ("cursor", "after"):
        return data.draw(FORGED_CURSORS)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return data.draw(HUGE_NUMBERS)
    if isinstance(value, str):
        return data.draw(PATH_SEGMENTS if path else HOSTILE_TEXT)
    return value


@pytest.fixture(scope="module")
def persona_tokens(world: World, settings: Settings) -> dict[str, str | None]:
    keyring = KeyRing.load_or_create(settings.keys_dir)
    return {p: world.token(keyring, settings, p) for p in PERSONAS}


@schema.parametrize()
@schema.given(data=st.data())
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_operation_conforms(
    case: schemathesis.Case,
    data: st.DataObject,
    persona_tokens: dict[str, str | None],
    live_server: str,
) -> None:
    token = persona_tokens[data.draw(st.sampled_from(PERSONAS), label="persona")]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if "authorization" in {h.lower() for h in case.headers or {}}:
        headers = {}  # schemathesis's own (negative) credentials are the point of this case
    if data.draw(st.booleans(), label="hostile values"):
        case.query = _hostile(data, case.query) if case.query else case.query
        case.path_parameters = (
            _hostile(data, case.path_parameters, path=True)
            if case.path_parameters
            else case.path_parameters
        )
        if isinstance(case.body, dict | list):
            case.body = _hostile(data, case.body)
    case.call_and_validate(base_url=live_server, headers=headers)
