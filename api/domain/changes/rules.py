"""Pure rules of the change feed: resource types and where a reader resumes."""

from __future__ import annotations

#: the types of record the feed announces (api.md); ``webhook`` messages are not in the feed
RESOURCE_TYPES = frozenset(
    {
        "referral",
        "orientation",
        "dossier",
        "beneficiary",
        "convention",
        "access_request",
        "aid_request",
        "aid_payment",
    }
)

#: a position after every event of a transaction
END_OF_TRANSACTION = 2**63 - 1

Position = tuple[int, int]  # (transaction id, event id)


def next_position(
    after: Position | None, last_served: Position | None, horizon: int, full: bool
) -> Position | None:
    """Where the next read starts. A full page resumes after its last event. Otherwise the
    reader has seen everything it may see below the horizon (every transaction below it has
    ended): it resumes after the horizon's last transaction, so events of other
    organisations or types are not scanned again on every poll. Never goes back."""
    if full:
        return last_served
    caught_up = (horizon - 1, END_OF_TRANSACTION) if horizon > 0 else None
    candidates = [p for p in (after, last_served, caught_up) if p is not None]
    return max(candidates) if candidates else None
