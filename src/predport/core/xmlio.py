"""Reading XML inputs (Pascal VOC, LabelMe, CVAT) safely: defusedxml refuses entity expansion and external
references, so a hostile file is reported as unreadable instead of exhausting memory or reading local files."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element


def root(path: Path) -> Element | None:
    """The document element, or None when the file is not readable, well-formed, harmless XML."""
    from defusedxml import ElementTree

    try:
        return ElementTree.parse(path).getroot()  # type: ignore[no-any-return]
    except Exception:  # (defusedxml and expat raise several kinds for broken or hostile XML)
        return None


def children(path: Path) -> Generator[tuple[str, Element], None, None]:
    """The document element's tag, then each of its children, complete, as ``(tag, element)``; each is cleared
    once the caller moves on, so a large file streams. Raises ``ValueError`` on broken or hostile XML."""
    from defusedxml import ElementTree

    depth = 0
    try:
        for event, el in ElementTree.iterparse(path, events=("start", "end")):
            if event == "start":
                if depth == 0:
                    yield "", el
                depth += 1
                continue
            depth -= 1
            if depth == 1:
                yield el.tag, el
                el.clear()
    except ValueError:
        raise
    except Exception as e:  # (ParseError, defusedxml's refusals, OSError)
        raise ValueError(f"{type(e).__name__}: {e}") from e
