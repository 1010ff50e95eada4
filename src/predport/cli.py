"""predport's command line: formats | codes | validate | convert | evaluate | upload | branches | delete-branch.

Exit 0 ok, 1 data errors, 2 usage errors and anything that cannot proceed (credentials, project, network)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from predport import __version__
from predport.core.ontology import Ontology
from predport.core.pipeline import Report, Tally, convert, validate
from predport.core.problems import CODES, PredportError

EXIT_OK, EXIT_DATA, EXIT_USAGE = 0, 1, 2


class _Collect(argparse.Action):
    """Collects a reader option as given (``[option, *values]``): each reader's own parser reads them later,
    so two readers may declare an option of the same name, each with its own type, choices and meaning."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        given = list(values) if isinstance(values, list) else [] if values is None else [values]
        namespace.reader_args = [*getattr(namespace, "reader_args", []), [option_string or "", *given]]


def _arity(action: argparse.Action) -> Any:
    return 0 if action.nargs == 0 else action.nargs


def _reader_options(c: argparse.ArgumentParser, registry: Any) -> None:
    """One collecting option per option string any reader declares; its help names the readers that take it.
    Readers that give one option string different numbers of values cannot share a command line: an error."""
    taken = {s for a in c._actions for s in a.option_strings}
    declared: dict[str, list[tuple[str, argparse.Action]]] = {}
    for name in sorted(registry.readers):
        for action in registry.option_actions(name):
            for opt in action.option_strings:
                if opt in taken:
                    raise PredportError(f"reader {name!r} ({registry.origins[name]}) declares {opt}, which is "
                                        "predport's own option")
                declared.setdefault(opt, []).append((name, action))
    group = c.add_argument_group("reader options", "each reader reads its own (predport formats lists the readers)")
    for opt, users in declared.items():
        arities = {_arity(a) for _, a in users}
        if len(arities) > 1:
            who = ", ".join(f"{n} ({'no value' if _arity(a) == 0 else _arity(a) or 'one value'})" for n, a in users)
            raise PredportError(f"readers declare {opt} with different numbers of values: {who}")
        first = users[0][1]
        text = "; ".join(f"[{n}] {a.help or ''}".rstrip() for n, a in users).replace("%", "%%")
        metavars = {str(a.metavar) if a.metavar else
                    "{" + ",".join(map(str, a.choices)) + "}" if a.choices else a.dest.upper() for _, a in users}
        group.add_argument(opt, action=_Collect, nargs=first.nargs if _arity(first) != 0 else 0,
                           metavar="|".join(sorted(metavars)), dest="reader_args", default=[], help=text)


def _parser(registry: Any, command: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="predport", description=__doc__, allow_abbrev=False)
    p.add_argument("--version", action="version", version=f"predport {__version__}")
    p.add_argument("--plugins", action="append", default=[], metavar="FILE",
                   help="a local plugins file (YAML: readers: {name: module or file.py}); repeatable")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("formats", help="list the readers (formats) and where they come from", allow_abbrev=False)
    k = sub.add_parser("codes", help="list every problem code with its meaning", allow_abbrev=False)
    k.add_argument("--format", dest="output", choices=("text", "json"), default="text")
    for name, text in (("validate", "check predictions against the schema and the ontology; write nothing"),
                       ("convert", "validate, then write label rows for a prediction branch")):
        c = sub.add_parser(name, help=text, allow_abbrev=False)
        c.add_argument("sources", nargs="+", metavar="SRC", help="input files or directories")
        c.add_argument("--ontology", required=name == "validate",
                       help="the project's ontology JSON (OntologyStructure.to_dict()); convert --project takes the "
                       "project's own when this is omitted")
        c.add_argument("--from", dest="fmt", metavar="FMT", help="input format (default: detect)")
        c.add_argument("--format", dest="output", choices=("text", "json"), default="text",
                       help="how to print problems and the summary")
        c.add_argument("--branch", required=name == "convert", help="prediction branch name")
        c.add_argument("--workers", type=_at_least(1), default=1, metavar="N",
                       help="spread the work over N processes (default 1)")
        c.add_argument("--quiet", action="store_true", help="no progress line (it is shown only on a terminal)")
        if name == "convert":
            c.add_argument("--out", metavar="DIR|FILE.jsonl",
                           help="output directory (replaced as a whole on success), or one file FILE.jsonl / "
                           "FILE.jsonl.gz (a label row per line; FILE.manifest.json beside it); required unless "
                           "--project is given")
            c.add_argument("--keep-going", action="store_true",
                           help="write every valid data unit and report the rest (default: any error, nothing written)")
            c.add_argument("--dask", metavar="ADDRESS", help="run on a Dask cluster: a scheduler address "
                           "(tcp://host:8786), or 'local' for a LocalCluster on this machine; a task per source, "
                           "--out one FILE.jsonl[.gz] (a path or an fsspec URL: s3://..., memory://...)")
            _remote(c, required=False)
        maps = c.add_argument_group("input maps (applied to every reader's output)")
        maps.add_argument("--class-map", metavar="FILE", help="YAML/JSON: input class name or id -> ontology object "
                          "name or feature hash (without it, names must match exactly; near misses are suggested)")
        maps.add_argument("--image-map", metavar="FILE", help="YAML/JSON: data unit title or input image id -> "
                          "title, or -> {title: clip.mp4, frame: 12} to make images frames of a video")
        filt = c.add_argument_group("filters (counted per input class as filtered, never silently gone)")
        filt.add_argument("--min-confidence", type=float, metavar="C",
                          help="keep predictions whose confidence is at least C (a missing one counts as 1.0)")
        filt.add_argument("--top-k", type=int, metavar="K", help="keep the K most confident of each frame and class")
        if name == "convert":
            prov = c.add_argument_group("provenance (recorded in the manifest, with the filters and the sources' "
                                        "SHA-256)")
            prov.add_argument("--model", metavar="NAME", help="the model that made the predictions")
            prov.add_argument("--model-version", metavar="V", help="its version")
            prov.add_argument("--note", metavar="TEXT", help="anything else worth keeping with the branch")
        if command == name:  # (built only for the command run: a broken reader option cannot stop the others)
            _reader_options(c, registry)
    e = sub.add_parser("evaluate", allow_abbrev=False,
                       help="predictions against ground truth: strict / partial / geometry matching, per-class metrics")
    e.add_argument("sources", nargs="*", metavar="PRED", help="the predictions: anything predport reads")
    e.add_argument("--truth", nargs="+", default=[], metavar="TRUTH", help="the ground truth: anything predport reads")
    e.add_argument("--ontology", help="the ontology JSON (with --project: the project's when omitted)")
    e.add_argument("--from", dest="fmt", metavar="FMT", help="the predictions' format (default: detect)")
    e.add_argument("--truth-from", dest="truth_fmt", metavar="FMT", help="the truth's format (default: detect)")
    e.add_argument("--match", choices=("strict", "partial", "geometry"), default="strict",
                   help="attributes: all must agree (strict), the prediction's must (partial), or none (geometry)")
    e.add_argument("--iou", type=float, default=0.5, metavar="T", help="similarity a match needs (default 0.5)")
    e.add_argument("--confidence", type=float, default=0.0, metavar="C",
                   help="count predictions at or above this confidence in tp / fp / fn (default 0)")
    e.add_argument("--protocol", choices=("encord", "coco"), default="encord",
                   help="encord (default), or coco: COCOeval's numbers (crowds, area ranges, maxDets)")
    e.add_argument("--oks-sigma", type=float, default=0.05, metavar="S",
                   help="OKS sigma of keypoints other than COCO's 17 person keypoints, and of points (default 0.05)")
    e.add_argument("--format", dest="output", choices=("text", "json"), default="text")
    e.add_argument("--out", metavar="DIR", help="write evaluation.json, matches.csv and the plots there")
    e.add_argument("--branch", help="with --project: the prediction branch to evaluate against MAIN")
    maps = e.add_argument_group("input maps (applied to both sides)")
    maps.add_argument("--class-map", metavar="FILE", help="YAML/JSON: input class name or id -> ontology object")
    maps.add_argument("--image-map", metavar="FILE", help="YAML/JSON: data unit title or input image id -> title")
    _remote(e, required=False, writes=False)
    if command == "evaluate":
        _reader_options(e, registry)
    u = sub.add_parser("upload", help="send what convert wrote (a directory or FILE.jsonl[.gz]) to its branch of a "
                       "project", allow_abbrev=False)
    u.add_argument("directory", metavar="OUTPUT", help="a directory or FILE.jsonl[.gz] written by predport convert")
    _remote(u, required=True)
    b = sub.add_parser("branches", help="every branch and, per data unit, its objects and classifications",
                       allow_abbrev=False)
    b.add_argument("directory", nargs="?", metavar="OUTPUT",
                   help="a directory or FILE.jsonl[.gz] written by predport convert (instead of --project)")
    _remote(b, required=False, writes=False)
    d = sub.add_parser("delete-branch", help="empty a prediction branch on every data unit of a project",
                       allow_abbrev=False)
    d.add_argument("name", help="the branch to empty (never main)")
    _remote(d, required=True)
    return p


def _remote(p: argparse.ArgumentParser, required: bool, writes: bool = True) -> None:
    g = p.add_argument_group("Encord project")
    g.add_argument("--project", required=required, metavar="HASH", help="the Encord project hash")
    g.add_argument("--ssh-key", metavar="FILE", help="SSH private key file (default: the SDK's ENCORD_SSH_KEY_FILE / "
                   "ENCORD_SSH_KEY environment variables)")
    g.add_argument("--token-file", metavar="FILE", help="a file holding a bearer token (or set ENCORD_TOKEN)")
    g.add_argument("--domain", metavar="URL", help="Encord API domain (other regions and deployments)")
    g.add_argument("--retries", type=_at_least(0), default=5,
                   help="retries of a failed bundle (rate limits, server errors)")
    g.add_argument("--backoff", type=_at_least(0, float), default=2.0,
                   help="seconds before the first retry; doubles each time")
    if writes:
        g.add_argument("--dry-run", action="store_true", help="print the plan; send no write request")
        g.add_argument("--bundle-size", type=_at_least(1), default=100, help="label rows per save request")


def _at_least(low: float, kind: type = int) -> Any:
    """An argparse type: a number of ``kind`` no smaller than ``low`` (finite), else argparse's usage error."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if kind is int else ''}number") from None
        if not value >= low or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{text} is less than {low}" if value == value and value < low
                                             else f"{text} is not a finite number")
        return value
    return parse


def _connection(args: argparse.Namespace) -> Any:
    from predport.core.upload import Connection

    return Connection(args.project, ssh_key_file=args.ssh_key, token_file=args.token_file, domain=args.domain,
                      retries=args.retries, backoff=args.backoff)


def _upload_json(report: Any) -> dict[str, Any]:
    return {"ok": report.ok, "branch": report.branch, "dry_run": report.dry_run, "saved": report.saved,
            "problems": [p.as_dict() for p in report.problems],
            "plan": [{"title": e.title, "action": e.action, "before": e.before, "after": e.after}
                     for e in report.plan]}


def _dump(document: dict[str, Any]) -> None:
    json.dump(document, sys.stdout, indent=2)
    print()


def _print_upload(report: Any, output: str) -> None:
    if output == "json":
        _dump(_upload_json(report))
        return
    for problem in report.problems:
        print(problem)
    for entry in report.plan:
        print(entry)
    verb = "would save" if report.dry_run else "saved"
    n = sum(e.action not in ("unchanged",) for e in report.plan) if report.dry_run else report.saved
    print(f"branch {report.branch!r}: {verb} {n} label row(s)" + ("" if report.ok else "; nothing sent"),
          file=sys.stderr)


def _remote_command(args: argparse.Namespace) -> int:
    from predport.core import upload

    if args.command == "branches":
        if args.directory:
            manifest = upload.read_manifest(Path(args.directory))
            counts = {manifest["branch"]: [(u["title"], u["objects"], u["classifications"]) for u in manifest["units"]]}
        elif args.project:
            conn = _connection(args)
            counts = upload.branch_counts(conn.open(), conn)
        else:
            print("predport: error: give a directory or --project", file=sys.stderr)
            return EXIT_USAGE
        for branch, units in counts.items():
            print(f"{branch}: {len(units)} data unit(s)")
            for title, objects, classifications in units:
                print(f"  {title}: {objects} object(s), {classifications} classification(s)")
        return EXIT_OK
    conn = _connection(args)
    if args.command == "delete-branch":
        report = upload.delete_branch(conn.open(), conn, args.name, args.dry_run, args.bundle_size)
    else:
        report = upload.upload(args.directory, conn, args.dry_run, args.bundle_size)
    _print_upload(report, getattr(args, "output", "text"))
    return EXIT_OK if report.ok else EXIT_DATA


class Progress:
    """The progress line (tqdm, on stderr): data units done, objects, errors, and the rate. Shown only when
    stderr is a terminal and --quiet is not given; the run calls it with a :class:`Tally` per data unit."""

    def __init__(self) -> None:
        import os

        from tqdm import tqdm

        try:
            width, height = os.get_terminal_size(sys.stderr.fileno())
        except (OSError, ValueError):
            width = height = 0
        # (some consoles report 0 columns or 0 rows -- a container's terminal that was given no size --, on which
        # tqdm would draw nothing)
        self.bar = tqdm(unit=" units", file=sys.stderr, mininterval=0.2, leave=False, dynamic_ncols=width > 0,
                        ncols=None if width > 0 else 80, nrows=None if height > 0 else 24)

    def __call__(self, tally: Tally) -> None:
        bar = self.bar
        if tally.units != bar.n:
            bar.set_postfix_str(f"{tally.objects} objects, {tally.errors} errors", refresh=False)
            bar.update(tally.units - bar.n)  # (tqdm redraws at most every mininterval)

    def done(self) -> None:
        self.bar.close()


def _report_json(report: Report) -> dict[str, Any]:
    return {"ok": report.ok, "problems": [p.as_dict() for p in report.problems], "summary": report.summary()}


def _print(report: Report, output: str) -> None:
    if output == "json":
        _dump(_report_json(report))
        return
    for problem in report.problems:
        print(problem)
    s = report.summary()
    err = sys.stderr
    print(f"{s['sources']} source(s), {s['data_units']} data unit(s), {sum(s['objects'].values())} object(s), "
          f"{sum(s['classifications'].values())} classification(s) in {s['seconds']} s", file=err)
    if s["per_group"]:
        print("per category (input):", file=err)
        for group, counts in s["per_group"].items():
            filtered = f", {counts['filtered']} filtered" if counts.get("filtered") else ""
            print(f"  {group}: {counts['converted']} converted, {counts['reported']} reported{filtered}", file=err)
    if s["objects"] or s["classifications"]:
        print("per class (written):", file=err)
        for name, n in sorted((s["objects"] | s["classifications"]).items()):
            print(f"  {name}: {n}", file=err)
    if s["problems"]:
        print("problems by code:", file=err)
        for code, n in sorted(s["problems"].items()):
            print(f"  {code}: {n}", file=err)
    for title, codes in sorted(s["left_out"].items()):
        print(f"left out {title}: {', '.join(codes)}", file=err)
    if report.written:
        print(f"wrote {report.written}" + (f" ({len(s['left_out'])} data unit(s) left out)" if s["left_out"] else ""),
              file=err)
    elif not report.ok:
        print(f"{s['errors']} error(s): nothing written", file=err)


def main(argv: Sequence[str] | None = None) -> int:
    from predport import plugins

    argv = list(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--plugins", action="append", default=[])
    pre.add_argument("command", nargs="?")
    known, _ = pre.parse_known_args(argv)
    command = known.command
    try:
        registry = plugins.load(known.plugins)  # once per run: the pipeline is handed this registry
        parser = _parser(registry, command)
    except PredportError as e:
        print(f"predport: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # (argparse's usage errors, --help and --version: their exit code, as a return value)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    if args.command == "formats":
        for name in sorted(registry.readers):
            r = registry.readers[name]
            print(f"{name:12} {r.description}  [{registry.origins[name]}]")
            caps = getattr(r, "capabilities", None)
            if caps is not None:
                print(f"{'':12} carries: {caps}")
        return EXIT_OK
    if args.command == "codes":
        if args.output == "json":
            _dump({code: {"meaning": CODES[code], "declared_by": CODES.origin(code)} for code in sorted(CODES)})
        else:
            for code in sorted(CODES):
                print(f"{code:30} {CODES[code]}  [{CODES.origin(code)}]")
        return EXIT_OK
    try:
        if args.command in ("upload", "branches", "delete-branch"):
            return _remote_command(args)
        if args.command == "evaluate":
            return _evaluate_command(args, registry)
        return _local_command(args, registry)
    except PredportError as e:
        print(f"predport: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # (`predport ... | head`: the reader left; what was done stands, the rest is unread)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_USAGE



def _evaluate_command(args: argparse.Namespace, registry: Any) -> int:
    from predport.core.evaluate import evaluate, output
    from predport.core.problems import Problems

    settings = {"match": args.match, "iou": args.iou, "confidence": args.confidence, "protocol": args.protocol,
                "oks_sigma": args.oks_sigma, "options": {"class_map": args.class_map, "image_map": args.image_map},
                "registry": registry, "reader_args": getattr(args, "reader_args", [])}
    read = Problems()
    if args.project:
        from predport.core.evaluate import remote
        from predport.core.validate import check_branch

        if not args.branch or args.sources or args.truth:
            print("predport: error: evaluate --project needs --branch NAME (MAIN is the truth), and no files",
                  file=sys.stderr)
            return EXIT_USAGE
        read.extend(check_branch(args.branch))
        conn = _connection(args)
        project = conn.open()
        ontology: Any = args.ontology or Ontology.from_dict(project.ontology_structure.to_dict(),
                                                            f"project {args.project} ontology")
        if isinstance(ontology, str):
            ontology = Ontology.load(ontology)
        truth_units = remote.branch_units(project, conn, "main", ontology, read)
        pred_units = remote.branch_units(project, conn, args.branch, ontology, read)
        ev = evaluate([], [], ontology, pred_units=pred_units, truth_units=truth_units, **settings)
    else:
        if not args.sources or not args.truth or not args.ontology:
            print("predport: error: evaluate needs PRED..., --truth TRUTH... and --ontology (or --project and "
                  "--branch)", file=sys.stderr)
            return EXIT_USAGE
        ev = evaluate(args.sources, args.truth, args.ontology, fmt=args.fmt, truth_fmt=args.truth_fmt, **settings)
    problems = Problems()
    problems.extend(read)
    problems.extend(ev.problems)
    if not problems.ok:
        if args.output == "json":
            _dump({"ok": False, "problems": [p.as_dict() for p in problems]})
        else:
            for p in problems:
                print(p)
            print(f"{problems.errors} error(s): nothing evaluated", file=sys.stderr)
        return EXIT_DATA
    if args.out:
        output.write(ev, Path(args.out))
    if args.output == "json":
        _dump({**ev.as_dict(), "problems": [p.as_dict() for p in problems]})
    else:
        for p in problems:
            print(p, file=sys.stderr)
        print(output.text(ev))
        if args.out:
            print(f"wrote {args.out}", file=sys.stderr)
    return EXIT_OK


def _local_command(args: argparse.Namespace, registry: Any) -> int:
    options = {"class_map": args.class_map, "image_map": args.image_map, "min_confidence": args.min_confidence,
               "top_k": args.top_k, **{k: getattr(args, k, None) for k in ("model", "model_version", "note")}}
    run = {"registry": registry, "reader_args": getattr(args, "reader_args", [])}
    progress = None if args.quiet or not sys.stderr.isatty() else Progress()
    if args.command == "validate":
        report = validate(args.sources, args.ontology, args.fmt, args.branch, options, args.plugins, args.workers,
                          progress, **run)
        if progress:
            progress.done()
        _print(report, args.output)
        return EXIT_OK if report.ok else EXIT_DATA
    if not args.out and not args.project:
        print("predport: error: convert needs --out DIR, --project HASH, or both", file=sys.stderr)
        return EXIT_USAGE
    project = None
    ontology: Any = args.ontology
    if args.project:
        conn = _connection(args)
        project = conn.open()
        if ontology is None:
            ontology = Ontology.from_dict(project.ontology_structure.to_dict(), f"project {args.project} ontology")
    elif ontology is None:
        print("predport: error: convert needs --ontology (or --project)", file=sys.stderr)
        return EXIT_USAGE
    from predport.core import upload

    sent: list[Any] = []

    def send(rows: Path) -> None:  # straight through: the rows just written go to the project's branch
        if progress:
            progress.done()
        sent.append(upload.upload(rows, conn, args.dry_run, args.bundle_size, project=project))

    # without --out the rows stay in the run's staging directory (under the temporary directory), uploaded
    # from there and removed after
    out = args.out or Path(tempfile.gettempdir()) / "predport-upload"
    if args.dask:
        from predport.core.cluster import is_url

        if not args.out or (project is not None and is_url(args.out)):
            print("predport: error: --dask needs --out FILE.jsonl (a local one to upload with --project)",
                  file=sys.stderr)
            return EXIT_USAGE
        report = convert(args.sources, ontology, args.branch, args.out, args.fmt, options, args.plugins,
                         args.workers, args.keep_going, dask=args.dask, reader_args=run["reader_args"])
    else:
        report = convert(args.sources, ontology, args.branch, out, args.fmt, options, args.plugins, args.workers,
                         args.keep_going, progress, then=None if args.out or project is None else send, **run)
    if progress:
        progress.done()
    if project is not None and args.out and report.written is not None:
        send(Path(report.written))
    if not sent:
        _print(report, args.output)
        return EXIT_OK if report.ok else EXIT_DATA
    if args.output == "json":  # one document
        _dump({**_report_json(report), "ok": report.ok and sent[0].ok, "upload": _upload_json(sent[0])})
    else:
        _print(report, args.output)
        _print_upload(sent[0], args.output)
    return EXIT_OK if sent[0].ok and report.ok else EXIT_DATA


def run() -> None:
    """The command's entry point: :func:`main`, then the exit without the interpreter's teardown, which frees every
    object of the run one at a time (0.04 s after converting the bench's 500k boxes) -- once the output is
    flushed, and unless Dask's client was used (its exit handlers close the connections). What the run would
    free only to exit is left for the exit (:data:`predport.core.reader.EXITS_UNFREED`).

    OpenBLAS gets one thread unless the environment says otherwise: nothing here multiplies matrices, and the
    threads numpy's import starts spin for a while, which cost 0.08 s of the other core (0.16-0.20 CPU-s for the
    import against 0.08-0.11 s with one thread) while a run with workers parses on both."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from predport.core import reader

    reader.EXITS_UNFREED = True
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # (a reader of the output that went away; a closed stream)
        pass
    if "distributed" in sys.modules:
        sys.exit(code)
    os._exit(code or 0)


if __name__ == "__main__":
    run()
