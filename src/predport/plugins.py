"""Builds the plugin manager: plugins.yaml (built-ins) -> entry points (installed) -> local plugins files."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pluggy

from predport import hookspecs
from predport.core import schema
from predport.core.problems import CODES, PredportError
from predport.core.reader import Detection, Reader

ENTRY_POINT_GROUP = "predport"
_NAME = re.compile(r"[a-z][a-z0-9_-]*")


class _OptionParser(argparse.ArgumentParser):
    """A reader's own option parser: errors raise instead of exiting, naming the reader."""

    def error(self, message: str) -> NoReturn:
        raise PredportError(f"{self.prog}: {message}")


@dataclass
class Registry:
    """The loaded plugins and the readers they provide (by name), with where each came from, and each reader's
    own option parser (readers never share one, so two may offer options of the same name)."""

    manager: pluggy.PluginManager
    readers: dict[str, Reader] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)  # reader name -> plugin origin
    parsers: dict[str, argparse.ArgumentParser] = field(default_factory=dict)

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
                if not isinstance(d, Detection):
                    d = Detection(0.0, f"detection failed: detect returned {type(d).__name__}, not a Detection")
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

    def option_actions(self, name: str) -> list[argparse.Action]:
        """The command-line options reader ``name`` declares."""
        return [a for a in self.parsers[name]._actions if a.option_strings]

    def options(self, name: str, given: Mapping[str, Any] | None = None,
                args: Sequence[Sequence[str]] = ()) -> dict[str, Any]:
        """Reader ``name``'s options: its defaults, then the options it declares from ``args`` (command-line
        tokens, ``[option, *values]`` each, as the CLI collected them), then from ``given`` (the Python API's
        flat mapping, by destination name). A value the reader's parser refuses raises :class:`PredportError`."""
        parser = self.parsers[name]
        strings = {s for a in self.option_actions(name) for s in a.option_strings}
        tokens = [t for group in args if group and group[0] in strings for t in group]
        values = vars(parser.parse_args(tokens))
        dests = {a.dest for a in self.option_actions(name)}
        values.update({k: v for k, v in (given or {}).items() if k in dests})
        return values

    def dests(self) -> set[str]:
        """Every option destination any reader declares."""
        return {a.dest for name in self.readers for a in self.option_actions(name)}


def builtin_plugins_file() -> Path:
    packaged = resources.files("predport").joinpath("plugins.yaml")
    if packaged.is_file():
        return Path(str(packaged))
    # an editable install or a source checkout: the file sits at the repository root
    return Path(__file__).resolve().parents[2] / "plugins.yaml"


def read_plugins_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise PredportError(f"cannot read plugins file {path}: {e}") from e
    data = _plain_plugins(text)
    if data is None:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise PredportError(f"cannot read plugins file {path}: {e}") from e
    errs = schema.errors(data, "plugins")
    if errs:
        where, msg = errs[0]
        raise PredportError(f"{path}: invalid plugins file at /{'/'.join(map(str, where))}: {msg}")
    return dict(data["readers"])


def _plain_plugins(text: str) -> dict[str, Any] | None:
    """What ``yaml.safe_load`` makes of a plugins file that is nothing but comments, blank lines, ``readers:``
    and entries ``name: target`` of one indentation, a name of lower case letters, digits, ``-`` and ``_``, a
    target a dotted module name or a path ending in ``.py`` (none of YAML's words for true, false or null);
    None for any other file, which PyYAML then reads. Why: every command reads the built-in plugins file, and
    importing PyYAML took 15-20 ms of the 0.2-0.25 s a command takes to start on the development VM (a test
    holds the two to the same result)."""
    entries: dict[str, str] = {}
    seen_key = False
    indent = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not seen_key:
            if line.rstrip() != "readers:":
                return None
            seen_key = True
            continue
        m = _ENTRY.fullmatch(line.rstrip())
        if m is None or (indent is not None and len(m[1]) != indent) or {m[2], m[3]} & _YAML_WORDS:
            return None
        indent = len(m[1])
        entries[m[2]] = m[3]  # (a repeated name: the last, as PyYAML has it)
    return {"readers": entries} if entries else None


_ENTRY = re.compile(r"( +)([a-z][a-z0-9_-]*): +"
                    r"([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*|[\w./][\w./-]*\.py)")
#: the plain scalars that PyYAML reads as booleans or null, as it spells them (a file with one goes to PyYAML)
_YAML_WORDS = frozenset(c for w in ("yes", "no", "true", "false", "on", "off", "null")
                        for c in (w, w.title(), w.upper()))


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
        who = f"plugin {impl.plugin_name!r} ({origin})"
        try:
            readers: list[Reader] = impl.function()  # type: ignore[assignment]
        except Exception as e:
            raise PredportError(f"{who} failed: {type(e).__name__}: {e}") from e
        for r in list(readers or []):
            _check_reader(r, who)
            if r.name in reg.readers:
                raise PredportError(f"two readers named {r.name!r}: from {reg.origins[r.name]} and from {origin}")
            reg.readers[r.name] = r
            reg.origins[r.name] = origin
            reg.parsers[r.name] = _parser(r, who)
            CODES.declare(getattr(r, "codes", None) or {}, f"reader {r.name!r} of {who}")
    return reg


def _check_reader(r: Any, who: str) -> None:
    """The reader contract's required members, checked when the plugin is loaded (not when a file is read)."""
    if not isinstance(r, Reader):
        missing = [m for m in ("name", "description", "detect", "read") if not hasattr(r, m)]
        raise PredportError(f"{who} returned {r!r}, which is not a reader (missing: {', '.join(missing)})")
    if not (isinstance(r.name, str) and _NAME.fullmatch(r.name)):
        raise PredportError(f"{who} returned a reader named {r.name!r}; a name is lower case letters, digits, "
                            "'-' and '_', starting with a letter")
    if not callable(r.detect) or not callable(r.read):
        raise PredportError(f"{who}: reader {r.name!r} needs callable detect(path) and read(path, ctx)")


def _parser(r: Reader, who: str) -> argparse.ArgumentParser:
    """The reader's own option parser, filled by its ``add_arguments`` (optional)."""
    parser = _OptionParser(prog=f"reader {r.name!r}", add_help=False, allow_abbrev=False)
    add = getattr(r, "add_arguments", None)
    if add is not None:
        try:
            add(parser.add_argument_group(f"{r.name} reader options"))
        except Exception as e:
            raise PredportError(f"{who}: reader {r.name!r} failed to declare its options: "
                                f"{type(e).__name__}: {e}") from e
    return parser
