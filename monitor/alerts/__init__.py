"""Alerts: rendering, the outbox worker, routing and digests."""
