"""adaptrun: an experiment runner for adaptive activation functions."""

__version__ = "0.1.0"
