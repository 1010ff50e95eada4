"""What ``predport evaluate`` prints and writes: the table, the JSON document, and with ``--out DIR``:
``evaluation.json``, ``matches.csv`` (every prediction and every false negative), precision-recall curves per
class (``pr-<class>.png``) and the class confusion matrix (``confusion.png``). The directory is written all
or nothing, like ``convert``'s (a staging directory swapped in)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from predport.core.evaluate import Evaluation

COLUMNS = ["unit", "frame", "class", "instance", "confidence", "outcome", "reason", "truth_instance", "similarity",
           "attributes"]


def _num(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def text(ev: Evaluation) -> str:
    """The per-class table and the totals."""
    lines = [f"match {ev.match}, IoU {ev.iou:g}, confidence >= {ev.confidence:g}, protocol {ev.protocol}"]
    s = ev.summary
    units = s.get("data_units", {})
    lines.append(f"data units: {units.get('paired', 0)} paired, {units.get('prediction_only', 0)} with predictions "
                 f"only, {units.get('truth_only', 0)} with truth only; {s.get('frames', 0)} frame(s), "
                 f"{s.get('predictions', 0)} prediction(s), {s.get('truths', 0)} truth object(s)")
    rows = [("class", "tp", "fp", "fn", "precision", "recall", "f1", f"AP@{ev.iou:g}", "AP@[.5:.95]")]
    for name, m in ev.objects.items():
        rows.append((name, str(m.tp), str(m.fp), str(m.fn), _num(m.precision), _num(m.recall), _num(m.f1),
                     _num(m.ap), _num(m.ap_50_95)))
    if len(rows) > 1:
        widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
        for r in rows:
            lines.append("  ".join(c.ljust(widths[0]) if k == 0 else c.rjust(widths[k]) for k, c in enumerate(r)))
        lines.append(f"mAP@{ev.iou:g} {_num(ev.map)}   mAP@[.5:.95] {_num(ev.map_50_95)}")
    for name, m in ev.without_truth.items():
        lines.append(f"no truth for {name}: {m.fp} prediction(s)")
    for name, result in ev.classifications.items():
        parts = [f"{opt} tp {c['tp']} fp {c['fp']} fn {c['fn']}" for opt, c in result.items() if opt != "accuracy"]
        lines.append(f"classification {name}: accuracy {_num(result['accuracy'])}; " + "; ".join(parts))
    if ev.coco:
        stats = ev.coco if all(isinstance(v, float) for v in ev.coco.values()) else None
        for family, values in ({"": stats}.items() if stats else ev.coco.items()):
            numbers = " ".join(f"{k} {v:.4f}" for k, v in values.items())
            lines.append("COCO " + (f"{family} " if family else "") + numbers)
    if s.get("not_evaluated"):
        lines.append("not evaluated under the COCO protocol (no COCO metric for the shape): "
                     + ", ".join(f"{k} ({v})" for k, v in s["not_evaluated"].items()))
    return "\n".join(lines)


def matches_csv(ev: Evaluation) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for m in ev.matches:
        w.writerow([m.unit, m.frame, m.cls, m.instance, "" if m.confidence is None else repr(m.confidence), m.kind,
                    m.reason, m.truth or "", "" if m.similarity is None else repr(m.similarity),
                    " ".join(m.attributes)])
    return buf.getvalue()


def write(ev: Evaluation, out: Path) -> Path:
    """Everything into ``out``, all or nothing."""
    from predport.core.staging import Staging, disk_errors

    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "evaluation.json").is_file())):
        from predport.core.problems import PredportError

        raise PredportError(f"{out} exists and is not a predport evaluation directory; choose another --out")
    with disk_errors(str(out)):
        staging = Staging(out)
        try:
            (staging.path / "evaluation.json").write_text(json.dumps(ev.as_dict(), indent=2) + "\n", "utf-8")
            (staging.path / "matches.csv").write_text(matches_csv(ev), "utf-8")
            plots(ev, staging.path)
            return staging.commit()
        finally:
            staging.discard()


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "class"


def plots(ev: Evaluation, directory: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # (files only: no display needed)
    import matplotlib.pyplot as plt

    for name, (recall, precision) in ev.curves.items():
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot(recall, precision, drawstyle="steps-post")
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision",
               title=f"{name}: AP@{ev.iou:g} {_num(ev.objects[name].ap if name in ev.objects else None)}")
        fig.tight_layout()
        fig.savefig(directory / f"pr-{_file_name(name)}.png", dpi=100)
        plt.close(fig)
    labels, matrix = ev.confusion
    if labels:
        size = max(4.0, 0.45 * len(labels) + 2)
        fig, ax = plt.subplots(figsize=(size, size))
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(len(labels)), labels, rotation=90)
        ax.set_yticks(range(len(labels)), labels)
        ax.set(xlabel="predicted", ylabel="truth", title=f"classes at IoU {ev.iou:g}")
        for i, row in enumerate(matrix):
            for j, v in enumerate(row):
                if v:
                    ax.text(j, i, str(v), ha="center", va="center", fontsize=7)
        fig.tight_layout()
        fig.savefig(directory / "confusion.png", dpi=100)
        plt.close(fig)


def document(ev: Evaluation) -> dict[str, Any]:
    return ev.as_dict()
