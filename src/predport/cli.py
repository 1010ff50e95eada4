"""predport's command line: formats | validate | convert. Exit 0 ok, 1 data errors, 2 usage errors."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from predport import __version__
from predport.core.pipeline import Report, convert, validate
from predport.core.problems import PredportError

EXIT_OK, EXIT_DATA, EXIT_USAGE = 0, 1, 2


def _parser(registry: Any) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="predport", description=__doc__)
    p.add_argument("--version", action="version", version=f"predport {__version__}")
    p.add_argument("--plugins", action="append", default=[], metavar="FILE",
                   help="a local plugins file (YAML: readers: {name: module or file.py}); repeatable")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("formats", help="list the readers (formats) and where they come from")
    for name, text in (("validate", "check predictions against the schema and the ontology; write nothing"),
                       ("convert", "validate, then write label rows for a prediction branch")):
        c = sub.add_parser(name, help=text)
        c.add_argument("sources", nargs="+", metavar="SRC", help="input files or directories")
        c.add_argument("--ontology", required=True, help="the project's ontology JSON (OntologyStructure.to_dict())")
        c.add_argument("--from", dest="fmt", metavar="FMT", help="input format (default: detect)")
        c.add_argument("--format", dest="output", choices=("text", "json"), default="text",
                       help="how to print problems and the summary")
        c.add_argument("--branch", required=name == "convert", help="prediction branch name")
        if name == "convert":
            c.add_argument("--out", required=True, help="output directory (replaced as a whole on success)")
        for reader in registry.readers.values():
            group = c.add_argument_group(f"{reader.name} reader options")
            reader.add_arguments(group)
    return p


def _print(report: Report, output: str) -> None:
    if output == "json":
        json.dump({"ok": report.ok, "problems": [p.as_dict() for p in report.problems],
                   "summary": report.summary()}, sys.stdout, indent=2)
        print()
        return
    for problem in report.problems:
        print(problem)
    s = report.summary()
    for group, counts in s["per_group"].items():
        print(f"  {group}: {counts['converted']} converted, {counts['reported']} reported", file=sys.stderr)
    per_class = ", ".join(f"{k}: {v}" for k, v in sorted(s["objects"].items())) or "none"
    print(f"{s['data_units']} data unit(s), {sum(s['objects'].values())} object(s) ({per_class}), "
          f"{sum(s['classifications'].values())} classification(s); "
          f"{s['errors']} error(s), {len(report.problems) - s['errors']} warning(s)/note(s); {s['seconds']} s",
          file=sys.stderr)
    if report.written:
        print(f"wrote {report.written}", file=sys.stderr)
    elif not report.ok:
        print("nothing written", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    from predport import plugins

    argv = list(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--plugins", action="append", default=[])
    known, _ = pre.parse_known_args(argv)
    try:
        registry = plugins.load(known.plugins)
    except PredportError as e:
        print(f"predport: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    args = _parser(registry).parse_args(argv)
    if args.command == "formats":
        for name in sorted(registry.readers):
            r = registry.readers[name]
            print(f"{name:12} {r.description}  [{registry.origins[name]}]")
        return EXIT_OK
    options = {k: v for k, v in vars(args).items()
               if k not in ("command", "sources", "ontology", "fmt", "output", "branch", "out", "plugins")}
    try:
        if args.command == "validate":
            report = validate(args.sources, args.ontology, args.fmt, args.branch, options, args.plugins)
        else:
            report = convert(args.sources, args.ontology, args.branch, args.out, args.fmt, options, args.plugins)
    except PredportError as e:
        print(f"predport: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    _print(report, args.output)
    return EXIT_OK if report.ok else EXIT_DATA


if __name__ == "__main__":
    sys.exit(main())
