"""Retention-time checks of ganglioside identifications (science.md): pure, no web or database."""

__version__ = "0.1.0"
