"""The two maps every reader's output may need, owned by the core: ``--class-map`` and ``--image-map``.

Both are YAML or JSON mappings, read once per run and applied to every reader's output, so no reader
implements them:

* the **class map** sends an input class (its name, or its id in the input: a COCO category id, a YOLO class
  index) to an ontology object (its name or feature hash). A reader that knows class ids, or needs the target
  class's shape to build a geometry, asks :meth:`predport.ReadContext.resolve_class` or
  :meth:`~predport.ReadContext.class_ref`; the records of a reader that does neither are mapped after it
  yields them, by the class *names* it wrote (:func:`map_classes`).
* the **image map** sends a data unit (by its title, or by the input's own id of it, which a reader puts in
  the unit's ``source.record``) to another title, or to a frame of a video: ``{title: clip.mp4, frame: 12}``.
  Images sent to frames of one video are merged into that video (:func:`merge_video`); records that share an
  instance id across them are one track, so readers give ids that are unique across their input (COCO's
  annotation ids) or that name a track.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from predport.core import boxes as boxmod
from predport.core.ontology import Ontology, OntologyObject
from predport.core.problems import Location, PredportError, Problem

#: the result of resolving an input class: the ontology object, or (problem code, why not)
Resolved = OntologyObject | tuple[str, str]


def _load(path: str | Path, what: str) -> dict[str, Any]:
    """A map file: JSON, else YAML (with libyaml's parser where PyYAML has it). Why: an image map of 5,000
    titles took PyYAML's Python parser 0.33 s, libyaml's 0.04 s, orjson 1 ms."""
    import orjson

    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise PredportError(f"cannot read {what} {path}: {e}") from e
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        import yaml  # (here: 15-20 ms to import, and most runs map nothing)

        try:
            data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # (safe: no objects)
        except yaml.YAMLError as e:
            raise PredportError(f"cannot read {what} {path}: {e}") from e
    if not isinstance(data, dict):
        raise PredportError(f"{what} {path} must be a mapping (input -> target), not {type(data).__name__}")
    return {str(k): v for k, v in data.items()}


class ClassMap:
    """Input class name or id -> ontology object name or feature hash (empty: names must match exactly)."""

    def __init__(self, entries: Mapping[str, Any] | None = None) -> None:
        self.entries: dict[str, str] = {}
        for key, target in (entries or {}).items():
            if not isinstance(target, str | int) or isinstance(target, bool):
                raise PredportError(f"--class-map: {key!r} must map to an ontology object name or feature hash, "
                                    f"not {target!r}")
            self.entries[str(key)] = str(target)

    @classmethod
    def load(cls, path: str | Path | None) -> ClassMap:
        return cls(_load(path, "--class-map")) if path else cls()

    def __bool__(self) -> bool:
        return bool(self.entries)

    def key(self, label: str | None, ident: Any = None) -> str | None:
        """The map's key for an input class: its id when the map has it, else its name; None when neither."""
        if ident is not None and str(ident) in self.entries:
            return str(ident)
        if label is not None and label in self.entries:
            return label
        return None

    def resolve(self, ontology: Ontology, label: str | None, ident: Any = None,
                shapes: Sequence[str] = ()) -> Resolved:
        """The ontology object for an input class: through the map (id first, then name), else by its exact
        name; or the problem code and message that say why there is none (with the near miss, if any). Several
        objects of that name: the one whose shape is the first of ``shapes`` (the shapes the input's geometry can
        take, in order of preference) that exactly one of them has."""
        key = self.key(label, ident)
        if key is not None:
            target = self.entries[key]
            found = _by_shape(ontology.objects.get(target) or ontology.object({"name": target}), shapes)
            if isinstance(found, OntologyObject):
                return found
            if found:
                return "class.ambiguous", (f"--class-map sends {key!r} to {target!r}, which names several ontology "
                                           "objects; map it to a feature hash")
            near = Ontology.suggest(target, ontology.objects_by_name)
            hint = f" (did you mean {near!r}?)" if near else ""
            return "class.unknown", f"--class-map sends {key!r} to {target!r}, which is not an ontology object{hint}"
        if label is None:
            return "class.unknown", f"class {ident!r} has no name in the input and no entry in --class-map"
        found = _by_shape(ontology.object({"name": label}), shapes)
        if isinstance(found, OntologyObject):
            return found
        if found:
            return "class.ambiguous", f"class {label!r} names several ontology objects; use --class-map"
        near = Ontology.suggest(label, ontology.objects_by_name)
        hint = f" (did you mean {near!r}? use --class-map)" if near else " (use --class-map)"
        return "class.unknown", f"class {label!r} is not an ontology object{hint}"

    def candidates(self, ontology: Ontology, label: str | None, ident: Any = None) -> list[OntologyObject]:
        """The ontology objects an input class may be (several when they share a name and differ by shape)."""
        key = self.key(label, ident)
        name = self.entries[key] if key is not None else label
        if name is None:
            return []
        found = ontology.objects.get(name) or ontology.object({"name": name})
        return [found] if isinstance(found, OntologyObject) else list(found or [])

    def ref(self, ontology: Ontology, label: str, ident: Any = None) -> dict[str, str]:
        """The class reference a record carries for an input class: the map's target (by feature hash when it
        names one object), or the input's own name, for validation to resolve or report."""
        key = self.key(label, ident)
        if key is None:
            return {"name": label}
        found = self.resolve(ontology, label, ident)
        return {"hash": found.hash} if isinstance(found, OntologyObject) else {"name": self.entries[key]}


def _by_shape(found: Any, shapes: Sequence[str]) -> Any:
    if isinstance(found, list):
        for shape in shapes:
            fitting = [o for o in found if o.shape == shape]
            if len(fitting) == 1:
                return fitting[0]
    return found


def map_classes(unit: Any, classes: ClassMap, ontology: Ontology) -> None:
    """Apply the class map to the class references a reader wrote by name (objects and box tables)."""
    if not isinstance(unit, dict):
        return
    entries = classes.entries
    for holder in (*_dicts(unit.get("objects")), *_dicts((unit.get("boxes") or {}).get("classes")
                                                          if isinstance(unit.get("boxes"), dict) else None)):
        ref = holder.get("class")
        if type(ref) is dict and "hash" not in ref and type(ref.get("name")) is str and ref["name"] in entries:
            holder["class"] = classes.ref(ontology, ref["name"])


def _dicts(items: Any) -> Iterator[dict[str, Any]]:
    return (x for x in items if type(x) is dict) if type(items) is list else iter(())


class ImageMap:
    """Data unit title or input id -> (title, None), or -> (video title, frame) for a frame of a video."""

    def __init__(self, entries: Mapping[str, Any], origin: str = "--image-map") -> None:
        self.origin = origin  # the map's file, where problems about the map as a whole are located
        self.entries: dict[str, tuple[str, int | None]] = {}
        for key, target in entries.items():
            if isinstance(target, str) and target:
                self.entries[str(key)] = (target, None)
            elif (isinstance(target, dict) and isinstance(target.get("title"), str) and target["title"]
                  and set(target) <= {"title", "frame"} and type(target.get("frame", 0)) is int
                  and target.get("frame", 0) >= 0):
                self.entries[str(key)] = (target["title"], target.get("frame", 0))
            else:
                raise PredportError(f"--image-map: {key!r} must map to a title, or to {{title: <video>, frame: <n>}} "
                                    f"with a frame number >= 0, not {target!r}")

    @classmethod
    def load(cls, path: str | Path | None) -> ImageMap | None:
        return cls(_load(path, "--image-map"), str(path)) if path else None

    def target(self, unit: dict[str, Any]) -> tuple[str, int | None] | None:
        """Where the unit goes: by its title, else by the input's id of it (``source.record``)."""
        found = self.entries.get(unit["title"]) if type(unit.get("title")) is str else None
        source = unit.get("source")
        if found is None and type(source) is dict and source.get("record") is not None:
            found = self.entries.get(str(source["record"]))
        return found


def records_on_frame_zero(unit: dict[str, Any]) -> bool:
    """Whether every record of an image unit is on frame 0 (the only frame an image has)."""
    for obj in _dicts(unit.get("objects")):
        if any(f.get("frame") != 0 for f in _dicts(obj.get("frames"))):
            return False
    table = unit.get("boxes")
    if type(table) is dict and type(table.get("frame")) is list and any(f != 0 for f in table["frame"]):
        return False
    return all(r == [0, 0] for c in _dicts(unit.get("classifications"))
               for r in (c["frames"] if type(c.get("frames")) is list else []))


def merge_video(title: str, frames: list[tuple[int, dict[str, Any]]]
                ) -> tuple[dict[str, Any], list[tuple[dict[str, Any], Problem]]]:
    """One video data unit from image units sent to its frames (``frames``: (frame, unit), in input order),
    and the units left out, each with the problem that says why (so that the caller counts their records as
    reported): an image whose size differs from the first one's, one sent to a frame another image already
    took, one with records off frame 0 or a broken box table. Box tables become object records (the rows'
    sources differ between images); the rest is left to validation, as for any unit."""
    left_out: list[tuple[dict[str, Any], Problem]] = []
    first = frames[0][1]
    size = (first.get("width"), first.get("height"))
    video: dict[str, Any] = {"title": title, "kind": "video", "width": size[0], "height": size[1],
                             "objects": [], "classifications": [], "source": first.get("source")}
    taken: dict[int, str] = {}
    for n, unit in sorted(frames, key=lambda f: f[0]):
        name = unit.get("title")
        why = None
        if unit.get("kind") != "image":
            why = f"is a {unit.get('kind')}, not an image"
        elif (unit.get("width"), unit.get("height")) != size:
            why = f"is {unit.get('width')}x{unit.get('height')}, the video's frames {size[0]}x{size[1]}"
        elif n in taken:
            why = f"goes to the frame {taken[n]!r} already is"
        elif not records_on_frame_zero(unit):
            why = "has records on frames other than 0 (an image has only frame 0)"
        objects = list(unit.get("objects") or []) if type(unit.get("objects")) is list else []
        if why is None and type(unit.get("boxes")) is dict:
            try:
                objects += boxmod.expand(unit)["objects"][len(objects):]  # type: ignore[arg-type]
            except (KeyError, IndexError, TypeError, AttributeError):
                why = "has a broken box table"
        if why is not None:
            left_out.append((unit, Problem("unit.unmapped", "error", f"--image-map sends {name!r} to frame {n} of "
                                           f"{title!r}, but it {why}: left out", Location.from_source(
                                               unit.get("source")))))
            continue
        taken[n] = str(name)
        for obj in objects:
            if type(obj) is dict and type(obj.get("frames")) is list:
                obj = {**obj, "frames": [{**f, "frame": n} if type(f) is dict else f for f in obj["frames"]]}
            video["objects"].append(obj)
        for c in unit.get("classifications") or [] if type(unit.get("classifications")) is list else []:
            video["classifications"].append({**c, "frames": [[n, n]]} if type(c) is dict else c)
    return video, left_out
