"""Steering statistics: the analyse des besoins sociaux (domain.md §12)."""
