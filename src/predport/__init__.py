"""predport: model predictions in any format -> validated Encord label rows on a prediction branch.

The Python API mirrors the CLI: :func:`validate`, :func:`convert`, :func:`evaluate` (and :func:`read` for the
normalised data units, :func:`open_output` for what convert wrote). Plugins implement the hooks of
:mod:`predport.hookspecs` with :data:`hookimpl`; a reader follows :class:`Reader` (:class:`BaseReader` is a
convenience base class).
"""

__version__ = "0.1.0"

from predport.core.boxes import SharedBoxes
from predport.core.model import DataUnit
from predport.core.ontology import Ontology
from predport.core.output import open_output
from predport.core.pipeline import Report, Tally, convert, read, validate
from predport.core.problems import CODES, Location, PredportError, Problem, Problems
from predport.core.reader import (
    BaseReader,
    Capabilities,
    Detection,
    ReadContext,
    Reader,
    file_head,
    files_under,
    head_lines,
    listing,
)
from predport.hookspecs import hookimpl


def evaluate(*args: object, **kwargs: object) -> object:
    """Predictions against ground truth: see :func:`predport.core.evaluate.evaluate` (imported only when called:
    it brings numpy and faster-coco-eval)."""
    from predport.core.evaluate import evaluate as run

    return run(*args, **kwargs)  # type: ignore[arg-type]

__all__ = [
    "CODES", "BaseReader", "Capabilities", "DataUnit", "Detection", "Location", "Ontology", "PredportError",
    "Problem", "Problems", "ReadContext", "Reader", "Report", "SharedBoxes", "Tally", "__version__", "convert",
    "evaluate",
    "file_head", "files_under", "head_lines", "hookimpl", "listing", "open_output", "read", "validate",
]
