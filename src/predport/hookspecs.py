"""The plugin contract: every hook predport calls, and the only place hooks are declared.

predport uses pluggy under the project name ``"predport"``. A plugin is a module (or object) with
functions marked ``@predport.hookimpl`` whose names match the specs below. Built-in readers are plugins
registered exactly like third-party ones:

* built-ins: one line each in ``plugins.yaml`` (``name: module``), shipped inside the wheel;
* installed packages: an entry point in the group ``predport`` (``name = "package.module"``);
* unpackaged plugins: a local plugins file given with ``--plugins FILE``, same layout as ``plugins.yaml``,
  whose values may also be paths to ``.py`` files (relative to that file).

A plugin that fails to import, a misspelt hook, and two plugins or readers with the same name are
errors that name the plugin(s) involved; nothing is skipped silently.

A minimal reader plugin::

    import predport

    class MyReader(predport.Reader):
        name = "myformat"
        description = "My model's JSON lines"

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

    Called once when the plugin manager is built. Each reader is an instance of
    :class:`predport.Reader` (or any object with the same attributes):

    * ``name`` (str): the format name users give to ``--from``; unique across all plugins, lower case;
    * ``description`` (str): one line for ``predport formats``;
    * ``detect(path) -> Detection``: how sure the reader is that it can read ``path`` (a file or a
      directory), as a score in [0, 1] with a human-readable reason, also when it declines (score 0). Must
      be cheap: read at most the first few KB. When ``--from`` is omitted, the highest score wins; a tie
      or no positive score is an error that lists every reader's reason;
    * ``read(path, ctx) -> Iterator[DataUnit]``: yield data units (dicts valid against
      ``schemas/data_unit.schema.json``) one at a time, so memory does not grow with the input. Report
      input problems through ``ctx.report(code, message, location, severity, group=...)`` and keep going;
      every input entity must end up either in a yielded unit or in a reported problem (``group``, e.g. the
      input's category, makes it count as reported in the run's per-category counts; give records the same
      ``group`` in their ``source`` so that converted ones count too). Many plain boxes per unit may go in
      the unit's ``boxes`` table (columns; see the schema and :mod:`predport.core.boxes`) instead of one
      object record each: it means the same and is much cheaper. Raise only for "cannot proceed".
      With ``--workers`` the run forks after the first unit is yielded and each process keeps its share
      of the units; ``ctx.mine(title)`` says whether this process wants a unit, so a reader may skip
      building the others (optional: the pipeline drops them anyway);
    * ``add_arguments(group)`` (optional): add the reader's own command-line options to an argparse
      argument group; their values reach ``read`` as ``ctx.options``.

    :return: a list of readers (may be empty).
    """
