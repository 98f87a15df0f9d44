"""Operators' tools: adaptrun-doctor, the benchmark measurements; imports every layer."""
