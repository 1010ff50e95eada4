"""An Encord ontology (the ``OntologyStructure.to_dict()`` JSON), indexed both ways: names <-> hashes.

Objects, classifications, attributes (at any depth), options and skeleton vertices are resolved by
featureNodeHash (exact) or by name. Name lookups are exact; :meth:`Ontology.suggest` offers the near miss
(case, surrounding spaces, underscores) for the error message, never a silent match.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from predport.core.problems import PredportError

OBJECT_SHAPES = frozenset(
    {"bounding_box", "rotatable_bounding_box", "polygon", "polyline", "point", "bitmask", "skeleton"})


@dataclass(eq=False, slots=True)
class Option:
    hash: str
    label: str
    value: str
    attribute: Attribute
    nested: list[Attribute] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class Attribute:
    hash: str
    name: str
    type: str  # radio | checklist | text | numeric
    dynamic: bool
    parent: Option | None  # the radio option this attribute is nested under, if any
    options: dict[str, Option] = field(default_factory=dict)  # by hash
    required: bool = False
    options_by_label: dict[str, list[Option]] = field(default_factory=dict)

    @property
    def value(self) -> str:
        return _value(self.name)

    def option(self, ref: dict[str, str]) -> Option | None:
        if "hash" in ref:
            return self.options.get(ref["hash"])
        found = self.options_by_label.get(ref.get("name", ""), [])
        return found[0] if len(found) == 1 else None


@dataclass(eq=False, slots=True)
class Feature:
    """What objects and classifications share: a hash, a name and a tree of attributes."""

    hash: str
    name: str
    attributes: dict[str, Attribute] = field(default_factory=dict)  # every attribute of the tree, by hash
    attributes_by_name: dict[str, list[Attribute]] = field(default_factory=dict)

    def add_tree(self, attrs: Iterable[dict[str, Any]], parent: Option | None) -> list[Attribute]:
        out = []
        for a in attrs:
            attr = Attribute(a["featureNodeHash"], a["name"], a["type"], bool(a.get("dynamic", False)), parent,
                             required=bool(a.get("required", False)))
            self.attributes[attr.hash] = attr
            self.attributes_by_name.setdefault(attr.name, []).append(attr)
            for o in a.get("options", []) or []:
                opt = Option(o["featureNodeHash"], o["label"], o.get("value") or _value(o["label"]), attr)
                attr.options[opt.hash] = opt
                attr.options_by_label.setdefault(opt.label, []).append(opt)
                opt.nested = self.add_tree(o.get("options", []) or [], opt)
            out.append(attr)
        return out


@dataclass(eq=False, slots=True)
class OntologyObject(Feature):
    shape: str = ""
    color: str = ""
    vertices: dict[str, str] = field(default_factory=dict)  # skeleton vertex name -> featureHash
    value: str = ""  # the name lower-cased, spaces -> "_" (set on construction)

    def __post_init__(self) -> None:
        self.value = _value(self.name)


@dataclass(eq=False, slots=True)
class OntologyClassification(Feature):
    root: Attribute | None = None


def _value(name: str) -> str:
    return "_".join(name.lower().split())


class Ontology:
    """The project's ontology, indexed for resolution. Build with :meth:`load` or :meth:`from_dict`."""

    def __init__(self, data: dict[str, Any], origin: str = "<ontology>") -> None:
        self.data = data
        self.origin = origin
        self.objects: dict[str, OntologyObject] = {}
        self.objects_by_name: dict[str, list[OntologyObject]] = {}
        self.classifications: dict[str, OntologyClassification] = {}
        self.classifications_by_name: dict[str, list[OntologyClassification]] = {}
        try:
            self._index(data)
        except (KeyError, TypeError, AttributeError) as e:
            raise PredportError(f"{origin}: not an Encord ontology structure ({type(e).__name__}: {e})") from e

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "<ontology>") -> Ontology:
        # accept the API record too ({"ontology_hash": ..., "editor": {...}})
        if isinstance(data, dict) and "objects" not in data and isinstance(data.get("editor"), dict):
            data = data["editor"]
        if not isinstance(data, dict) or not isinstance(data.get("objects", []), list):
            raise PredportError(f"{origin}: not an Encord ontology structure (expected objects / classifications)")
        return cls(data, origin)

    @classmethod
    def load(cls, path: str | Path) -> Ontology:
        try:
            with open(path, "rb") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise PredportError(f"cannot read ontology {path}: {e}") from e
        return cls.from_dict(data, str(path))

    def _index(self, data: dict[str, Any]) -> None:
        templates = {}
        for t in data.get("skeleton_templates", []) or []:
            t = t.get("template", t)
            templates[t.get("feature_node_hash")] = t
        for o in data.get("objects", []):
            obj = OntologyObject(o["featureNodeHash"], o["name"], shape=o["shape"], color=o.get("color", ""))
            obj.add_tree(o.get("attributes", []) or [], None)
            if obj.shape == "skeleton" and obj.hash in templates:
                for v in templates[obj.hash].get("skeleton", {}).values():
                    obj.vertices[v["name"]] = v.get("featureHash") or ""
            self.objects[obj.hash] = obj
            self.objects_by_name.setdefault(obj.name, []).append(obj)
        for c in data.get("classifications", []):
            attrs = c.get("attributes", []) or []
            name = attrs[0]["name"] if attrs else c["featureNodeHash"]
            cls_ = OntologyClassification(c["featureNodeHash"], name)
            roots = cls_.add_tree(attrs, None)
            cls_.root = roots[0] if roots else None
            self.classifications[cls_.hash] = cls_
            self.classifications_by_name.setdefault(name, []).append(cls_)

    # -- resolution -------------------------------------------------------------------------------------
    def object(self, ref: dict[str, str]) -> OntologyObject | list[OntologyObject] | None:
        """The object for a ref; a list when a name is ambiguous; None when unknown."""
        return _resolve(ref, self.objects, self.objects_by_name)  # type: ignore[no-any-return]

    def classification(self, ref: dict[str, str]) -> OntologyClassification | list[OntologyClassification] | None:
        return _resolve(ref, self.classifications, self.classifications_by_name)  # type: ignore[no-any-return]

    @staticmethod
    def suggest(name: str, names: Iterable[str]) -> str | None:
        """A near miss for ``name`` among ``names`` (case / spaces / underscores, then close spelling)."""
        names = list(names)
        key = _fold(name)
        for n in names:
            if _fold(n) == key:
                return n
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.8)
        return close[0] if close else None


def _fold(name: str) -> str:
    return " ".join(name.replace("_", " ").replace("-", " ").lower().split())


def _resolve(ref: dict[str, str], by_hash: dict[str, Any], by_name: dict[str, list[Any]]) -> Any:
    key = ref["hash"] if "hash" in ref else ref.get("name", "")
    if not isinstance(key, str):  # (a reference the schema has not checked yet, e.g. in a filter: names nothing)
        return None
    if "hash" in ref:
        return by_hash.get(key)
    found = by_name.get(key, [])
    if not found:
        return None
    return found[0] if len(found) == 1 else list(found)
