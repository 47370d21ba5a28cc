"""Aides facultatives (domain.md §10): règlements published by granting organisations,
requests assessed on the reste à vivre and decided by level or commission, payments with
gap-free vouchers, envelopes, commission sessions and the comparison of règlements."""
