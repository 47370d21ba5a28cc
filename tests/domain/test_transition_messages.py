"""A refused transition says so in plain English, whatever the status ("not allowed on a
accepted referral" was not)."""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum

import pytest

from api.domain.conventions.rules import ConventionAction, ConventionSide, ConventionStatus
from api.domain.conventions.rules import apply_action as apply_convention_action
from api.domain.dossiers.rules import DossierAction, DossierStatus, Side
from api.domain.dossiers.rules import apply_action as apply_dossier_action
from api.domain.orientations.rules import (
    OrientationAction,
    OrientationSide,
    OrientationStatus,
    apply_orientation_action,
)
from api.domain.referrals.rules import (
    ReferralAction,
    ReferralSide,
    ReferralStatus,
    apply_referral_action,
)
from api.problems import InvalidTransition

Attempt = Callable[[StrEnum, StrEnum], object]

MACHINES: list[tuple[str, type[StrEnum], type[StrEnum], Attempt]] = [
    (
        "referral",
        ReferralStatus,
        ReferralAction,
        lambda s, a: apply_referral_action(ReferralStatus(s), a, ReferralSide.SENDER),
    ),
    (
        "orientation",
        OrientationStatus,
        OrientationAction,
        lambda s, a: apply_orientation_action(OrientationStatus(s), a, OrientationSide.ISSUER),
    ),
    (
        "dossier",
        DossierStatus,
        DossierAction,
        lambda s, a: apply_dossier_action(DossierStatus(s), DossierAction(a), frozenset(Side)),
    ),
    (
        "convention",
        ConventionStatus,
        ConventionAction,
        lambda s, a: apply_convention_action(
            ConventionStatus(s), ConventionAction(a), ConventionSide.GRANTOR
        ),
    ),
]


@pytest.mark.parametrize(("kind", "statuses", "actions", "attempt"), MACHINES)
def test_a_refused_transition_names_the_status_without_a_wrong_article(
    kind: str, statuses: type[StrEnum], actions: type[StrEnum], attempt: Attempt
) -> None:
    refused = 0
    for status in statuses:
        for action in actions:
            try:
                attempt(status, action)
            except InvalidTransition as error:
                refused += 1
                assert error.detail == (
                    f"Action '{action}' is not allowed while the {kind} is {status}."
                )
                assert not re.search(r"\ba [aeiou]", error.detail), error.detail
            except Exception:  # noqa: S112 — other refusals (side, missing reason) are not this
                continue
    assert refused, f"no {kind} transition was refused: the test checks nothing"
