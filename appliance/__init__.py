"""Sosie: find your doppelganger among faces that do not exist, and print it."""

__version__ = "0.1.0"
