"""Multirun bookkeeping: preflight, outcomes, the summary; imports runner and below."""
