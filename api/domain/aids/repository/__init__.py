"""Queries of aides facultatives, typed. Règlements are public (:mod:`.reglements`);
everything else runs under the request's scope and row-level security (migration 0019),
which repeats who may read a row: requests (:mod:`.requests`), payments and envelopes
(:mod:`.money`), commission sessions (:mod:`.commissions`). The retention purge's
anonymisation runs as the owner (:mod:`.retention`)."""
