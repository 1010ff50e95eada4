"""The plugin contract: every hook predport calls, and the only place hooks are declared.

predport uses pluggy under the project name ``"predport"``. A plugin is a module (or object) with
functions marked ``@predport.hookimpl`` whose names match the specs below. Built-in readers are plugins
registered exactly like third-party ones:

* built-ins: one line each in ``plugins.yaml`` (``name: module``), shipped inside the wheel;
* installed packages: an entry point in the group ``predport`` (``name = "package.module"``);
* unpackaged plugins: a local plugins file given with ``--plugins FILE``, same layout as ``plugins.yaml``,
  whose values may also be paths to ``.py`` files (relative to that file).

Plugins are loaded once per run. A plugin that fails to import, a misspelt hook, a reader that lacks a
required member, two plugins or readers with the same name, and two declarations of one problem code with
different meanings are errors that name the plugin(s) involved; nothing is skipped silently.

A minimal reader plugin::

    import predport

    class MyReader(predport.BaseReader):
        name = "myformat"
        description = "My model's JSON lines"
        codes = {"myformat.bad_line": "a line that is not a detection"}
        capabilities = predport.Capabilities(frozenset({"bounding_box"}), confidence=True)

        def add_arguments(self, group):
            group.add_argument("--images", metavar="DIR", help="where the images are")

        def detect(self, path):
            if path.suffix != ".myjsonl":
                return predport.Detection(0, "not a .myjsonl file")
            return predport.Detection(1.0, "a .myjsonl file")

        def read(self, path, ctx):
            for unit in ...:
                yield unit            # dicts following schemas/data_unit.schema.json

    @predport.hookimpl
    def predport_readers():
        return [MyReader()]

and its conformance test, one line in the plugin's test suite (see :mod:`predport.testing`)::

    TestMyReader = predport.testing.conformance("myformat", [predport.testing.Sample(
        "tests/data/sample.myjsonl", "tests/data/ontology.json", entities=12)])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from predport.core.reader import Reader

hookspec = pluggy.HookspecMarker("predport")
hookimpl = pluggy.HookimplMarker("predport")


@hookspec
def predport_readers() -> list[Reader]:  # type: ignore[empty-body]
    """Return the readers this plugin provides.

    Called once when the plugin manager is built. A reader is any object that follows the
    :class:`predport.Reader` protocol (checked when the plugin is loaded); :class:`predport.BaseReader` is a
    convenience base class. Required members:

    * ``name`` (str): the format name users give to ``--from``; unique across all plugins; lower case letters,
      digits, ``-`` and ``_``, starting with a letter;
    * ``description`` (str): one line for ``predport formats``;
    * ``detect(path) -> Detection``: how sure the reader is that it can read ``path`` (a file or a
      directory), as a score in [0, 1] with a human-readable reason, also when it declines (score 0). Must
      be cheap: read at most the first few KB (``predport.file_head(path)``, ``predport.head_lines(path)``),
      never the whole file, since detection runs every reader on every source. When ``--from`` is omitted,
      the highest score wins; a tie or no positive score is an error that lists every reader's reason. An
      exception here counts as declining, with the exception as the reason;
    * ``read(path, ctx) -> Iterator[DataUnit]``: yield data units (dicts valid against
      ``schemas/data_unit.schema.json``) one at a time, so memory does not grow with the input. Values of
      JSON's own Python types (dict, list, str, int, float, bool, None) take the fast path. numpy scalars and
      arrays, tuples and subclasses of those types are taken as the JSON values they stand for (a float32 as
      the float64 it equals), after the compiled schema check has said no to them: correct, but slower. The
      conformance kit asks for the plain types.

    Optional members:

    * ``codes`` (mapping): the problem codes the reader emits beyond the core's, each with its meaning,
      prefixed with the reader's name (``"coco.traced"``). They join :data:`predport.CODES` when the plugin is
      loaded; a code is never renamed once released. Emitting an undeclared code is a bug the test suite
      catches for built-ins;
    * ``capabilities`` (:class:`predport.Capabilities`): what the reader's output can hold -- the shapes it
      yields, and whether it carries confidences, attribute answers, tracks (one instance over several
      frames) and classifications. ``predport formats`` shows it; before converting, predport warns
      (``reader.cannot_carry``) when the ontology requires what the reader cannot carry; the conformance kit
      (:mod:`predport.testing`) checks it both ways on the reader's samples;
    * ``add_arguments(group)``: add the reader's own command-line options to an argparse argument group.
      Each reader has its own parser: two readers may both offer an option of the same name (each gets its
      own value, with its own type and choices), as long as they take the same number of values; options of
      predport itself (``--branch``, ``--class-map``, ...) may not be redeclared. The values reach ``read``
      as ``ctx.options`` (by destination name, defaults filled in); the Python API passes them in
      ``options`` by destination name. With ``--from``, an option the chosen reader lacks is an error.

    While reading:

    * Report input problems through ``ctx.report(code, message, location, severity, group=..., entities=...)``
      and keep going; every input entity (an object on one frame, a classification) must end up either in a
      yielded unit or in a reported problem. ``group`` (the input's class) makes a problem count as that
      many entities reported in the run's per-class counts (an error: 1; a note that N entities were left out
      on purpose, such as MOT rows flagged 0: ``entities=N``); give records the same ``group`` in their
      ``source`` so that converted ones count too. The conformance kit checks that the counts add up to the
      entities of the reader's samples. Raise only for "cannot proceed" (:class:`predport.PredportError`);
      any other exception ends the run with the reader's name, the exception and its last frames, and nothing
      is written.
    * Folders: list them with ``predport.files_under(root, match)`` (a tree, in ``sorted(rglob())`` order) and
      ``predport.listing(folder)`` (one folder's entries), not ``glob``: a folder the system will not list is
      then reported (``source.unreadable`` at that folder, by the core, around ``read``) where ``glob`` leaves
      its files out without a word. The conformance kit makes each folder of a reader's directory samples
      unlistable in turn and checks that the entities and data units still add up, or that the folder is
      reported.
    * Class references: write the input's class name (``{"name": "car"}``); the core applies ``--class-map``
      to every reader's output. A reader whose input has class ids (COCO category ids, YOLO indices), or
      that needs the target class's shape to build a geometry, uses ``ctx.resolve_class(name, id, shapes)``
      or ``ctx.class_ref(name, id)`` instead, which apply the class map by id, then by name; ``shapes`` (the
      shapes the input's geometry can become, preferred first) chooses among ontology objects of one name
      that differ by shape. Records that name their class get the same choice by their geometry.
    * Titles: the core applies ``--image-map`` to every unit, by its title or by the input's own id of it,
      which a reader puts in the unit's ``source.record`` (COCO: the image id). Images it sends to frames of
      one video are merged; records with the same instance id on different frames are one track, so give
      ids that are unique across the input (or that name a track).
    * Many plain boxes per unit may go in the unit's ``boxes`` table (columns; see the schema and
      :mod:`predport.core.boxes`) instead of one object record each: it means the same and is much cheaper.
      A reader of a whole file of plain boxes may go further: one ``predport.SharedBoxes`` of numpy columns for
      the file, each unit's ``boxes`` a range of its rows (``shared.rows(start, stop)``), checked once for the
      file (on the bench's 500k boxes: validation 0.05 s instead of 0.55 s). It stands for the plain table of
      those rows, which is what :func:`predport.read` gives back and what filters and maps work on. Units of
      many files may share one (``units=`` where each begins, ``sources=`` each one's source, a ``line`` column):
      the YOLO reader's label files do, 512 at a time.
    * With ``--workers`` the run forks after the first unit is yielded and each process keeps its share of
      the units; ``ctx.mine(title)`` says whether this process wants a unit, so a reader may skip building
      the others (optional: the pipeline drops them anyway). A reader that knows its units before yielding
      any announces them with ``ctx.expect(titles, weights, cheap=...)``: each process then converts a range
      of titles; with ``cheap=True`` (building a unit costs little next to converting it, as a range of a
      shared table does) the units around each boundary go to whichever neighbour is free first, and both
      build them. ``ctx.decode_parts(path, msgspec_type, extract)`` parses one big JSON array in pieces that
      the ``ctx.workers`` processes take as they are free. With several sources into one file (or validated),
      each process instead takes whole sources, each a run of its own (as a Dask task is).
    * ``ctx.memo`` (a dict) lives for the run and is shared by all its sources (with workers taking whole
      sources: by the sources each process takes): keep there what every source would otherwise rebuild, such
      as a file all of them refer to, parsed and indexed (the COCO reader's ``--images``). Key it by the
      reader's name and what the value is made of (a file's path, size and modification time), and never
      change a value once it is there: later sources see it as it was made.

    :return: a list of readers (may be empty).
    """
