"""The change feed: what a partner may learn has changed, ids only."""
