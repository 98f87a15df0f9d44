"""Errors, registries, schemas, messages, safe files, stop signals, lazy matplotlib; no layer."""
