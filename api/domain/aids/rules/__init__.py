"""Pure rules of aides facultatives (domain.md §10): no I/O, no tables, no HTTP.

Not to be confused with a *règlement* (aid rules, ``/v1/aid-rules``): the rules an
organisation publishes for the aids it grants. The règlement's use cases live in
:mod:`api.domain.aids.reglements`; the pure checks a règlement's aid types make of a request
live here, in :mod:`.aid_types` and :mod:`.eligibility`.

- :mod:`.codes`: the aid vocabulary (competences, categories, forms, decision levels, refusal
  reasons) and the amounts' precision;
- :mod:`.lifecycle`: a request's statuses and the actions between them;
- :mod:`.reste_a_vivre`: consumption units and reste à vivre;
- :mod:`.aid_types`: an aid type of a règlement and its decision tiers;
- :mod:`.eligibility`: a request assessed, and a grant checked, against its aid type;
- :mod:`.money`: envelopes and voucher numbers;
- :mod:`.comparison`: what an aid type would give a described household.
"""
