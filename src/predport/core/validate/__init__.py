"""Validation = the JSON Schema + semantic checks against the ontology, in one pass that finds every problem.

Validating a data unit also *resolves* it: names become ontology nodes, objects with one id become one track.
The writer accepts only the :class:`ResolvedUnit` this returns, so nothing unvalidated can be written.

By concern: :mod:`.schema_errors` (the JSON Schema's verdict), :mod:`.objects` (records and tracks),
:mod:`.tables` (box tables, a column at a time), :mod:`.geometry`, :mod:`.answers` (answers and
classifications), :mod:`.branch` (branch names); :mod:`.unit` puts them together. Checks *yield* problems
(:mod:`.context`); :func:`check_unit` returns them with the resolved unit.
"""

from predport.core.validate.branch import BRANCH_RE, check_branch
from predport.core.validate.geometry import EPS
from predport.core.validate.objects import record_group
from predport.core.validate.resolved import (
    RAnswer,
    RBoxes,
    RClassification,
    ResolvedUnit,
    RObject,
    frame_count,
    frame_sizes,
    to_ranges,
)
from predport.core.validate.unit import check_unit, validate_unit

__all__ = [
    "BRANCH_RE", "EPS", "RAnswer", "RBoxes", "RClassification", "RObject", "ResolvedUnit", "check_branch",
    "check_unit", "frame_count", "frame_sizes", "record_group", "to_ranges", "validate_unit",
]
