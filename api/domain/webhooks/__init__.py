"""Webhooks: subscriptions, signed deliveries, retries."""
