"""Imports every module that declares tables, so that the metadata is complete
(for ``create_all``, migrations and the tests)."""

from engine import (  # noqa: F401
    audit,
    brandsite,
    complaints,
    deposits,
    expulsion,
    inspections,
    labels,
    licensing,
    models,
    notices,
    royalties,
    rules,
    trace,
    workdays,
)
