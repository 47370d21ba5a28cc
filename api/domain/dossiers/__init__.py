"""Legal-aid dossiers instructed by partners and decided by the legal holder (domain.md §9)."""
