"""Orientations and referrals between partners (domain.md §8)."""
