"""Imports every module that declares tables, so that the metadata is complete
(for ``create_all``, migrations and the tests)."""

from engine import licensing, models  # noqa: F401
