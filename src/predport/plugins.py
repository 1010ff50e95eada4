"""Builds the plugin manager: plugins.yaml (built-ins) -> entry points (installed) -> local plugins files."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy
import yaml

from predport import hookspecs
from predport.core import schema
from predport.core.problems import PredportError
from predport.core.reader import Detection, Reader

ENTRY_POINT_GROUP = "predport"


@dataclass
class Registry:
    """The loaded plugins and the readers they provide (by name), with where each came from."""

    manager: pluggy.PluginManager
    readers: dict[str, Reader] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)  # reader name -> plugin origin

    def reader(self, name: str) -> Reader:
        try:
            return self.readers[name]
        except KeyError:
            raise PredportError(f"unknown format {name!r}; known: {', '.join(sorted(self.readers))}") from None

    def detect(self, path: Path) -> Reader:
        """The reader for ``path`` by detection; an error listing every reader's reason otherwise."""
        verdicts: list[tuple[Reader, Detection]] = []
        for r in self.readers.values():
            try:
                d = r.detect(path)
            except Exception as e:  # a reader's detect must not take the others down
                d = Detection(0.0, f"detection failed: {type(e).__name__}: {e}")
            verdicts.append((r, d))
        verdicts.sort(key=lambda v: -v[1].score)
        reasons = "\n".join(f"  {r.name}: {d.reason} (score {d.score:g})" for r, d in verdicts)
        if not verdicts or verdicts[0][1].score <= 0:
            raise PredportError(f"no reader recognises {path}; give --from. Readers said:\n{reasons}")
        if len(verdicts) > 1 and verdicts[1][1].score == verdicts[0][1].score:
            raise PredportError(f"{path} is ambiguous; give --from. Readers said:\n{reasons}")
        return verdicts[0][0]


def builtin_plugins_file() -> Path:
    packaged = resources.files("predport").joinpath("plugins.yaml")
    if packaged.is_file():
        return Path(str(packaged))
    # an editable install or a source checkout: the file sits at the repository root
    return Path(__file__).resolve().parents[2] / "plugins.yaml"


def read_plugins_file(path: Path) -> dict[str, str]:
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise PredportError(f"cannot read plugins file {path}: {e}") from e
    errs = schema.errors(data, "plugins")
    if errs:
        where, msg = errs[0]
        raise PredportError(f"{path}: invalid plugins file at /{'/'.join(map(str, where))}: {msg}")
    return dict(data["readers"])


def _import(name: str, target: str, base: Path) -> ModuleType:
    try:
        if target.endswith(".py"):
            file = (base / target).resolve()
            spec = importlib.util.spec_from_file_location(f"predport_local_{name}", file)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {file}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            return module
        return importlib.import_module(target)
    except Exception as e:
        raise PredportError(f"plugin {name!r} ({target}) failed to import: {type(e).__name__}: {e}") from e


def load(local_files: list[str | Path] | None = None, entry_points: bool = True) -> Registry:
    """Build a fresh plugin manager (no global state) and collect the readers."""
    pm = pluggy.PluginManager("predport")
    pm.add_hookspecs(hookspecs)
    origins: dict[str, str] = {}

    def register(name: str, plugin: Any, origin: str) -> None:
        if name in origins:
            raise PredportError(f"two plugins named {name!r}: {origins[name]} and {origin}")
        origins[name] = origin
        pm.register(plugin, name=name)

    builtin = builtin_plugins_file()
    for name, target in read_plugins_file(builtin).items():
        register(name, _import(name, target, builtin.parent), f"built-in {target}")
    if entry_points:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist else "?"
            try:
                plugin = ep.load()
            except Exception as e:
                raise PredportError(
                    f"plugin {ep.name!r} (entry point {ep.value} of {dist}) failed to import: "
                    f"{type(e).__name__}: {e}") from e
            register(ep.name, plugin, f"entry point {ep.value} of {dist}")
    for f in local_files or []:
        path = Path(f)
        for name, target in read_plugins_file(path).items():
            register(name, _import(name, target, path.parent), f"{target} from {path}")
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as e:
        name = pm.get_name(e.plugin) or repr(e.plugin)
        raise PredportError(f"plugin {name!r} ({origins.get(name, '?')}) has an unknown hook: {e}") from e

    reg = Registry(pm)
    for impl in pm.hook.predport_readers.get_hookimpls():
        origin = origins.get(impl.plugin_name, impl.plugin_name)
        try:
            readers: list[Reader] = impl.function()  # type: ignore[assignment]
        except Exception as e:
            raise PredportError(f"plugin {impl.plugin_name!r} ({origin}) failed: {type(e).__name__}: {e}") from e
        for r in list(readers or []):
            if not getattr(r, "name", ""):
                raise PredportError(f"plugin {impl.plugin_name!r} ({origin}) returned a reader without a name")
            if r.name in reg.readers:
                raise PredportError(f"two readers named {r.name!r}: from {reg.origins[r.name]} and from {origin}")
            reg.readers[r.name] = r
            reg.origins[r.name] = origin
    return reg
