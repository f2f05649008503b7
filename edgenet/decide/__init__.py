"""Decisions: select under a budget, latency model, the sweep, the report."""
