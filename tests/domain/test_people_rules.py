"""Pure rules of people records: consents, sensitive filtering, timeline pages, exports,
the retention purge's report."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from api.domain.people.rules import (
    Event,
    consent_active,
    consent_errors,
    export_row,
    purge_report,
    sensitive_shown,
    timeline_page,
)

TODAY = date(2026, 11, 26)
OWN = uuid.uuid4()
OTHER = uuid.uuid4()
SENSITIVE = frozenset({"ase", "violences"})


def test_a_consent_names_what_it_covers_and_is_not_in_the_future() -> None:
    def pointers(**kw: object) -> list[str]:
        base: dict[str, object] = {
            "kind": "consent",
            "organisation_id": None,
            "competence": "rsa",
            "given_on": TODAY,
            "today": TODAY,
        }
        return [e.pointer for e in consent_errors(**{**base, **kw})]  # type: ignore[arg-type]

    assert pointers() == []
    assert pointers(competence=None) == ["/organisation_id"]
    assert pointers(kind="information", competence=None) == []
    assert pointers(given_on=TODAY + timedelta(days=1)) == ["/given_on"]


@given(
    given_on=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 1, 1)),
    withdrawn=st.one_of(
        st.none(), st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 1, 1))
    ),
)
def test_a_consent_is_active_from_its_date_until_withdrawn(
    given_on: date, withdrawn: date | None
) -> None:
    active = consent_active(given_on, withdrawn, TODAY)
    assert active == (given_on <= TODAY and (withdrawn is None or withdrawn > TODAY))
    if withdrawn is not None and withdrawn <= TODAY:
        assert not active


@given(
    competence=st.sampled_from([None, "rsa", "ase", "violences"]),
    owner=st.sampled_from([OWN, OTHER, None]),
    clearance=st.booleans(),
)
def test_sensitive_records_show_only_to_their_cleared_organisation(
    competence: str | None, owner: uuid.UUID | None, clearance: bool
) -> None:
    shown = sensitive_shown(
        competence=competence,
        organisation_id=owner,
        sensitive=SENSITIVE,
        clearance=clearance,
        own_organisation=OWN,
    )
    if competence in SENSITIVE:
        assert shown == (clearance and owner == OWN)
    else:
        assert shown


_T0 = datetime(2026, 1, 1, tzinfo=UTC)
events = st.lists(
    st.builds(
        Event,
        at=st.integers(0, 20).map(lambda m: _T0 + timedelta(minutes=m)),
        type=st.sampled_from(["note", "care_team.joined", "consent.given"]),
        id=st.sampled_from([uuid.UUID(int=n) for n in range(6)]),
    ),
    max_size=40,
)


@given(events=events, limit=st.integers(1, 7))
def test_paging_the_timeline_yields_every_event_once_newest_first(
    events: list[Event], limit: int
) -> None:
    seen: list[Event] = []
    before = None
    for _ in range(100):
        page, more = timeline_page(events, before=before, limit=limit)
        assert len(page) <= limit
        seen += page
        if not more:
            break
        before = page[-1].key
    keys = [e.key for e in seen]
    assert keys == sorted({e.key for e in events}, reverse=True)


def test_an_export_row_shows_the_nir_in_clear_and_leaves_derived_values_out() -> None:
    row = {
        "id": "x",
        "nir_cipher": "\\x0a0b",
        "nir_hash": "h",
        "match_keys": ["k"],
        "folded_names": "f",
        "phone": "06",
    }
    shaped = export_row(row, lambda blob: blob.hex())
    assert shaped == {"id": "x", "nir": "0a0b", "phone": "06"}
    assert export_row({"id": "y", "nir_cipher": None}, lambda b: "?") == {"id": "y", "nir": None}
    assert export_row({"id": "z"}, lambda b: "?") == {"id": "z"}


organisations = st.sampled_from([uuid.UUID(int=n) for n in range(1, 6)])


@given(
    detached_from=st.lists(organisations, max_size=30),
    due=st.dictionaries(organisations, st.integers(1, 50)),
    anonymised=st.integers(0, 1000),
    pruned=st.dictionaries(organisations, st.integers(0, 50)),
)
def test_a_purge_report_adds_up_per_organisation_in_id_order(
    detached_from: list[uuid.UUID],
    due: dict[uuid.UUID, int],
    anonymised: int,
    pruned: dict[uuid.UUID, int],
) -> None:
    report = purge_report(
        _T0, detached_from=detached_from, due=due, anonymised=anonymised, pruned=pruned
    )
    lines = report.organisations
    ids = [o.organisation_id for o in lines]
    assert ids == sorted(set(ids))
    # every organisation concerned has its line, and no other
    assert set(ids) == set(detached_from) | set(due) | {o for o, n in pruned.items() if n}
    assert report.detached == len(detached_from) == sum(o.detached for o in lines)
    assert report.audit_entries_deleted == sum(pruned.values())
    assert report.audit_entries_deleted == sum(o.audit_entries_deleted for o in lines)
    assert {o.organisation_id: o.due_within_30_days for o in lines if o.due_within_30_days} == due
    assert report.anonymised == anonymised
    # ids and counts only
    shown = report.as_dict()
    assert shown["ran_at"] == _T0.isoformat()
    assert [o["organisation_id"] for o in shown["organisations"]] == [str(i) for i in ids]
