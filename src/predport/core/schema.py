"""Applying the internal JSON Schema (``schemas/data_unit.schema.json``, the single source of truth).

Two validators apply the same file: a compiled predicate (:mod:`predport.core.fastschema`) answers "valid?"
quickly for every data unit; only when it says no does the reference implementation (jsonschema,
Draft 2020-12) run, to collect every violation with its exact path.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import cache
from importlib import resources
from typing import Any

SchemaError = tuple[tuple[str | int, ...], str]


@cache
def load(name: str = "data_unit") -> dict[str, Any]:
    text = resources.files("predport.schemas").joinpath(f"{name}.schema.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


@cache
def compiled(name: str = "data_unit") -> Callable[[Any], bool]:
    from predport.core.fastschema import compile_schema

    return compile_schema(load(name))


@cache
def compiled_def(name: str) -> Callable[[Any], bool]:
    """The compiled predicate of one of the data unit schema's ``$defs`` (e.g. "boxes")."""
    from predport.core.fastschema import compile_schema

    return compile_schema({"$defs": load()["$defs"], "$ref": f"#/$defs/{name}"})


@cache
def _reference(name: str) -> Any:
    import numbers

    import jsonschema

    # "number": a real number, as JSON's are; jsonschema's own takes any numbers.Number, and its "minimum" then
    # raises TypeError on a complex
    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine(
        "number", lambda _, v: isinstance(v, numbers.Real) and not isinstance(v, bool))
    return jsonschema.validators.extend(base, type_checker=checker)(load(name))


def errors(instance: Any, name: str = "data_unit") -> list[SchemaError]:
    """Every schema violation of ``instance`` as (path, message); [] when it is valid."""
    if compiled(name)(instance):
        return []
    return list(_iter_errors(instance, name))


def _iter_errors(instance: Any, name: str) -> Iterator[SchemaError]:
    for err in sorted(_reference(name).iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        path = tuple(err.absolute_path)
        # 'required' points at the parent: point at the missing key instead.
        if err.validator == "required" and isinstance(err.validator_value, list):
            missing = [k for k in err.validator_value if isinstance(err.instance, dict) and k not in err.instance]
            if len(missing) == 1:
                path = (*path, missing[0])
        yield path, err.message
