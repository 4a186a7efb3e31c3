"""Embedded default data sets and readers of the user's data."""
