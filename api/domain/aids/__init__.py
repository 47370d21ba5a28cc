"""Aides facultatives (domain.md §10): règlements published by granting organisations,
requests assessed on the reste à vivre and decided by level or commission, payments with
gap-free vouchers, envelopes, commission sessions and the comparison of règlements.

Two senses of "rules" meet here. A *règlement* (``aid rules`` in the API, ``/v1/aid-rules``;
the ``AidRules`` table) is a document an organisation publishes: the aid types it grants,
their ceilings and who decides them. Its use cases (publish, read, list) are in
:mod:`~api.domain.aids.reglements` and its queries in ``repository/reglements.py``. The
:mod:`~api.domain.aids.rules` package is the layer of *pure rules*, as in every noun: the
lifecycle, the reste à vivre, the checks an aid type makes of a request, the envelopes; no
I/O (a layer contract).
"""
