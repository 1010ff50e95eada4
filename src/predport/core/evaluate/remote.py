"""MAIN and a prediction branch of a live project, read through the encord SDK for ``evaluate --project``.

Only reads: the data units on each branch are listed and their existing label rows fetched (the same GETs
as ``upload --dry-run``); rows that do not exist on a branch are not created, and nothing is saved."""

from __future__ import annotations

from typing import Any

from predport.core.model import DataUnit
from predport.core.ontology import Ontology
from predport.core.problems import Problems
from predport.core.reader import ReadContext


def branch_units(project: Any, conn: Any, branch: str, ontology: Ontology, problems: Problems) -> list[DataUnit]:
    """The data units of ``branch`` that have a label row there, as internal data units."""
    from predport.converters.encord import units_from_rows
    from predport.core.upload import _initialise

    rows = conn.call(lambda: list(project.list_label_rows_v2(branch_name=branch)), f"list data units on {branch!r}")
    rows = [r for r in rows if r.label_hash is not None]
    _initialise(conn, project, rows, dry_run=True)  # (GET only: rows that exist)
    ctx = ReadContext(ontology, problems)
    where = f"project {conn.project} branch {branch}"
    return list(units_from_rows(((f"{where}: {r.data_title}", "", r.to_encord_dict()) for r in rows), ctx))
