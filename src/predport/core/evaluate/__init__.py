"""``predport evaluate``: predictions against ground truth, with strict, partial or geometry attribute matching.

Both sides are read and validated exactly as ``predport validate`` does; on any error nothing is evaluated.
Data units are paired by data hash, else by title; frames by index. Per data unit, frame and class,
predictions by descending confidence (stable for ties) each take the still-unmatched *eligible* truth they
overlap most; eligible: similarity >= T and the attributes agree under the mode (``strict``: over the union
of both objects' attribute keys, every nesting level, dynamic answers on that frame; ``partial``: over the
prediction's keys; ``geometry``: attributes ignored). See :mod:`.similarity` for the similarity of each shape,
:mod:`.engine` for the matching and accumulation (faster-coco-eval's C++ core, pycocotools' numbers) and
:mod:`.classifications` for classifications.

Metrics per class: TP, FP, FN counting predictions with confidence >= ``confidence``; precision, recall, F1
(None where undefined); AP at T with COCO's 101-point interpolation over all predictions, and averaged over
T = 0.50:0.05:0.95. ``map`` and ``map_50_95`` average the classes that have truth; classes with predictions
but no truth are listed apart. Protocol ``coco`` reproduces COCOeval's numbers (crowds, area ranges, maxDets)
for boxes, masks and keypoints.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from predport.core.evaluate import classifications as classmod
from predport.core.evaluate import engine, similarity
from predport.core.evaluate.instances import FAMILY, Instance, Sides, build
from predport.core.model import DataUnit
from predport.core.ontology import Ontology
from predport.core.problems import Location, PredportError, Problem, Problems

MODES = ("strict", "partial", "geometry")
PROTOCOLS = ("encord", "coco")
COCO_STATS = {"bbox": ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"],
              "keypoints": ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]}
COCO_STATS["segm"] = COCO_STATS["bbox"]


@dataclass
class ClassMetrics:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    ap: float | None = None
    ap_50_95: float | None = None

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p is not None and r is not None and p + r > 0 else (
            0.0 if p is not None and r is not None else None)

    def as_dict(self) -> dict[str, Any]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": self.precision, "recall": self.recall,
                "f1": self.f1, "ap": self.ap, "ap_50_95": self.ap_50_95}


@dataclass(slots=True)
class Match:
    """One prediction's outcome, or one false negative (``kind`` fn)."""

    unit: str
    frame: int
    cls: str
    instance: str  # the prediction's instance id (the truth's, for a false negative)
    confidence: float | None
    kind: str  # tp | fp | fn | ignored | below_confidence
    reason: str = ""
    truth: str | None = None  # the truth instance it matched (or fits best, for its reason)
    similarity: float | None = None
    attributes: list[str] = field(default_factory=list)


@dataclass
class Evaluation:
    """What ``evaluate`` found: the problems of the inputs (when there are errors nothing else is filled in),
    the summary, the per-class table, classifications, COCO's numbers, and every prediction's outcome."""

    match: str
    iou: float
    protocol: str
    confidence: float
    problems: Problems = field(default_factory=Problems)
    summary: dict[str, Any] = field(default_factory=dict)
    objects: dict[str, ClassMetrics] = field(default_factory=dict)  # classes with truth
    without_truth: dict[str, ClassMetrics] = field(default_factory=dict)  # classes with predictions only
    classifications: dict[str, Any] = field(default_factory=dict)
    coco: dict[str, Any] | None = None
    curves: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)  # class -> (recall, precision)
    #: the families' matchings, turned into :attr:`matches` and :attr:`confusion` when first asked for
    _pending: list[Any] = field(default_factory=list, repr=False)
    _matches: list[Match] | None = field(default=None, repr=False)
    _confusion: tuple[list[str], list[list[int]]] | None = field(default=None, repr=False)
    _labels: list[str] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return self.problems.ok

    @property
    def matches(self) -> list[Match]:
        """Every prediction's outcome (and reason) and every false negative."""
        if self._matches is None:
            self._explain()
        return self._matches or []

    @property
    def confusion(self) -> tuple[list[str], list[list[int]]]:
        """Class labels (then "background") and the counts of truth class (rows) x predicted class (columns) at T:
        matches, false positives of another class's truth (reason ``class``) or of none, false negatives."""
        if self._confusion is None:
            self._explain()
        return self._confusion or ([], [])

    def _explain(self) -> None:
        matches: list[Match] = []
        counts: Counter[tuple[str, str]] = Counter()
        for run, preds, truths, found, matched, ignored, titles in self._pending:
            engine.explain(run, found, self.iou, ignored)
            least, add = self.confidence, matches.append
            for o in found:
                p = preds[o.pred]
                truth = truths[o.truth] if o.truth is not None else None
                kind, name = o.kind, p.cls.name
                if kind != "ignored" and p.confidence < least:
                    kind = "below_confidence"
                if kind == "tp":
                    counts[(name, name)] += 1
                elif kind == "fp":
                    counts[(truth.cls.name if o.reason == "class" and truth else "background", name)] += 1
                add(Match(titles[p.pair], p.frame, name, p.ident, p.confidence, kind, o.reason,
                          truth.ident if truth else None, o.similarity, o.attributes))
            for j, g in enumerate(truths):
                by = matched.get(j)
                if j in ignored or (by is not None and preds[by].confidence >= least):
                    continue
                counts[(g.cls.name, "background")] += 1
                add(Match(titles[g.pair], g.frame, g.cls.name, g.ident, None, "fn"))
        labels = [*self._labels, "background"]
        self._matches, self._pending = matches, []
        self._confusion = (labels, [[counts[(a, b)] for b in labels] for a in labels])

    @property
    def map(self) -> float | None:
        aps = [m.ap for m in self.objects.values()]
        return sum(a for a in aps if a is not None) / len(aps) if aps and None not in aps else None

    @property
    def map_50_95(self) -> float | None:
        aps = [m.ap_50_95 for m in self.objects.values()]
        return sum(a for a in aps if a is not None) / len(aps) if aps and None not in aps else None

    def as_dict(self) -> dict[str, Any]:
        """The JSON document (``schemas/evaluation.schema.json``)."""
        return {"match": self.match, "iou": self.iou, "protocol": self.protocol, "confidence": self.confidence,
                "summary": self.summary, "objects": {k: v.as_dict() for k, v in self.objects.items()},
                "objects_without_truth": {k: v.as_dict() for k, v in self.without_truth.items()},
                "map": self.map, "map_50_95": self.map_50_95, "classifications": self.classifications,
                "coco": self.coco}


def evaluate(pred: Sequence[str | Path], truth: Sequence[str | Path], ontology: Ontology | str | Path, *,
             match: str = "strict", iou: float = 0.5, confidence: float = 0.0, protocol: str = "encord",
             fmt: str | None = None, truth_fmt: str | None = None, options: dict[str, Any] | None = None,
             plugins: Sequence[str | Path] | None = None, registry: Any = None,
             reader_args: Sequence[Sequence[str]] = (), oks_sigma: float = 0.05,
             pred_units: Iterable[DataUnit] | None = None, truth_units: Iterable[DataUnit] | None = None
             ) -> Evaluation:
    """Evaluate predictions (``pred``: anything predport reads, or ``pred_units`` in memory) against ground
    truth (``truth`` / ``truth_units``). ``options`` and ``reader_args`` go to the readers of both sides; a
    COCO results file needs no ``images`` when the truth is one COCO file (it serves as its images).
    Raises :class:`PredportError` for bad settings; data problems come back in ``.problems``."""
    import gc

    # Like conversion: millions of small objects, no reference cycles among them; the cyclic collector would
    # walk every live object again and again (superlinear: 50k boxes 1.6 s, 500k 25 s with it running)
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _evaluate(pred, truth, ontology, match, iou, confidence, protocol, fmt, truth_fmt, options, plugins,
                         registry, reader_args, oks_sigma, pred_units, truth_units)
    finally:
        if collecting:
            gc.enable()


def _evaluate(pred: Sequence[str | Path], truth: Sequence[str | Path], ontology: Ontology | str | Path, match: str,
              iou: float, confidence: float, protocol: str, fmt: str | None, truth_fmt: str | None,
              options: dict[str, Any] | None, plugins: Sequence[str | Path] | None, registry: Any,
              reader_args: Sequence[Sequence[str]], oks_sigma: float, pred_units: Iterable[DataUnit] | None,
              truth_units: Iterable[DataUnit] | None) -> Evaluation:
    from predport.core.pipeline import _ontology, _registry, resolve

    if match not in MODES:
        raise PredportError(f"--match must be one of {', '.join(MODES)}, not {match!r}")
    if protocol not in PROTOCOLS:
        raise PredportError(f"--protocol must be one of {', '.join(PROTOCOLS)}, not {protocol!r}")
    if not 0 < iou <= 1 or not 0 <= confidence <= 1 or not oks_sigma > 0:
        raise PredportError("--iou must be in (0, 1], --confidence in [0, 1] and --oks-sigma above 0")
    t0 = time.perf_counter()
    ont = _ontology(ontology)
    result = Evaluation(match, iou, protocol, confidence)
    reg = _registry(plugins, registry) if pred_units is None or truth_units is None else None
    truth_resolved, truth_report = resolve(truth, ont, truth_fmt, options, registry=reg, reader_args=reader_args,
                                           units=truth_units)
    pred_opts = _with_images(dict(options or {}), pred, truth, fmt, truth_fmt, reg, reader_args)
    pred_resolved, pred_report = resolve(pred, ont, fmt, pred_opts, registry=reg, reader_args=reader_args,
                                         units=pred_units)
    result.problems.extend(truth_report.problems)
    result.problems.extend(pred_report.problems)
    if not result.ok:
        return result
    sides = build(truth_resolved, pred_resolved)
    too_large = [i for i in (*sides.truth, *sides.pred) if FAMILY[i.cls.shape] == "segm"
                 and i.size[0] * i.size[1] > _max_pixels()]
    for i in too_large[:1]:
        result.problems.append(Problem("frame.too_large", "error", f"a mask of {i.cls.name!r} is on a frame of "
                                       f"{i.size[0]}x{i.size[1]} pixels, more than predport decodes",
                                       Location(sides.pairs[i.pair].title)))
    if not result.ok:
        return result
    t1 = time.perf_counter()
    spent = _objects(result, sides, ont, oks_sigma)
    result.classifications = classmod.score(sides.truth_classifications, sides.pred_classifications, match,
                                            confidence)
    result.summary.update(_summary(sides, result))
    # read: both sides read and validated; then the instances paired and the COCO datasets built; then matching,
    # accumulation and every prediction's outcome
    result.summary["seconds"] = {"read": round(t1 - t0, 3), "build": round(spent["build"], 3),
                                 "match": round(spent["match"], 3), "evaluate": round(time.perf_counter() - t1, 3)}
    return result


def _max_pixels() -> int:
    from predport.core.rle import MAX_PIXELS

    return MAX_PIXELS


def _with_images(options: dict[str, Any], pred: Sequence[str | Path], truth: Sequence[str | Path], fmt: str | None,
                 truth_fmt: str | None, registry: Any, reader_args: Sequence[Sequence[str]]) -> dict[str, Any]:
    """A COCO results file against one COCO ground-truth file: the truth serves as the results' --images."""
    if registry is None or "images" in options or any(a and a[0] == "--images" for a in reader_args):
        return options
    if len(truth) != 1 or not pred:
        return options
    try:
        pred_reader = registry.reader(fmt) if fmt else registry.detect(Path(pred[0]))
        truth_reader = registry.reader(truth_fmt) if truth_fmt else registry.detect(Path(truth[0]))
    except PredportError:
        return options  # (the read says why, with every reader's reason)
    if pred_reader.name == truth_reader.name == "coco" and Path(truth[0]).is_file():
        options["images"] = str(truth[0])
    return options


def _objects(result: Evaluation, sides: Sides, ont: Ontology, oks_sigma: float) -> dict[str, float]:
    """Evaluate the objects into ``result``; the seconds spent building the COCO datasets and matching."""
    protocol, t = result.protocol, result.iou
    images: dict[tuple[int, int], dict[str, Any]] = {}
    # image ids: the input's own (a COCO image id, in a unit's source.record) where every image unit has one,
    # so that COCO's order of images -- which breaks ties between equal scores -- is the same as COCOeval's
    own = _own_image_ids(sides)
    spare = iter(range(max(own.values(), default=0) + 1, 2 ** 62))
    groups: dict[tuple[str, tuple[str, ...]], tuple[list[Instance], list[Instance]]] = defaultdict(lambda: ([], []))
    for side, items in ((0, sides.truth), (1, sides.pred)):
        for inst in items:
            key = (inst.pair, inst.frame)
            im = images.get(key)
            if im is None:
                ident = own.get(key)
                im = images[key] = {"id": ident if ident is not None else next(spare), "width": inst.size[0],
                                    "height": inst.size[1]}
            inst.image = im["id"]
            family = FAMILY[inst.cls.shape]
            # keypoint classes of different templates cannot share one evaluation (one sigma per vertex)
            groups[(family, tuple(inst.cls.vertices) if family == "keypoints" else ())][side].append(inst)
    order = list(ont.objects.values())
    position = {o.name: k for k, o in reversed(list(enumerate(order)))}
    metrics: dict[str, ClassMetrics] = {}
    has_truth: set[str] = set()
    skipped: dict[str, str] = {}
    coco_stats: dict[str, Any] = {}
    seconds = {"build": 0.0, "match": 0.0}
    titles = [pair.title for pair in sides.pairs]
    ignored_total = 0
    for (family, vertices), (truths, preds) in groups.items():
        if protocol == "coco" and family not in COCO_STATS:
            for inst in (*truths, *preds):
                skipped[inst.cls.name] = inst.cls.shape
            continue
        # a class is its name: a polygon class and a bitmask class of one name are one class of masks
        classes = sorted({i.cls.name for i in (*truths, *preds)}, key=position.__getitem__)
        categories = [{"id": position[c] + 1, "name": c} for c in classes]
        family_images = [images[k] for k in sorted({(i.pair, i.frame) for i in (*truths, *preds)})]
        sig = similarity.sigmas(list(vertices), oks_sigma) if family == "keypoints" else None
        thresholds = engine.STANDARD if protocol == "coco" else tuple(sorted({*engine.STANDARD, t}))
        run = engine.run(family, family_images, categories, truths, preds, protocol, result.match, thresholds,
                         oks_sigma, sig)
        at_t = run
        if protocol == "coco":
            if run.stats:
                coco_stats[family] = dict(zip(COCO_STATS[family], run.stats, strict=True))
            if not any(abs(t - s) < 1e-9 for s in engine.STANDARD):  # AP at T: one more accumulation
                at_t = engine.run(family, family_images, categories, truths, preds, protocol, result.match, (t,),
                                  oks_sigma, sig)
        max_dets = run.evaluator.params.maxDets[-1] if protocol == "coco" else None
        t0 = time.perf_counter()
        found, matched, ignored = engine.outcomes(run, t, max_dets)
        for c in classes:
            m = metrics.setdefault(c, ClassMetrics())
            m.ap = engine.class_ap(at_t, c, t)
            m.ap_50_95 = engine.class_ap(run, c, None)
            if m.ap is not None:
                result.curves[c] = engine.curve(at_t, c, t)
        least = result.confidence
        tp: Counter[str] = Counter()
        fp: Counter[str] = Counter()
        for o in found:
            p = preds[o.pred]
            if o.kind == "ignored":
                ignored_total += 1
            elif p.confidence >= least:
                (tp if o.kind == "tp" else fp)[p.cls.name] += 1
        fn: Counter[str] = Counter()
        for j, g in enumerate(truths):
            if j in ignored:
                continue
            has_truth.add(g.cls.name)
            by = matched.get(j)
            if by is None or preds[by].confidence < least:
                fn[g.cls.name] += 1
        for c in classes:
            m = metrics[c]
            m.tp, m.fp, m.fn = m.tp + tp[c], m.fp + fp[c], m.fn + fn[c]
        result._pending.append((run, preds, truths, found, matched, ignored, titles))
        seconds["build"] += run.seconds["build"]
        seconds["match"] += run.seconds["match"] + time.perf_counter() - t0
    result.summary["ignored"] = ignored_total
    result.objects = {n: m for n, m in metrics.items() if n in has_truth}
    result.without_truth = {n: m for n, m in metrics.items() if n not in has_truth}
    if protocol == "coco":
        result.coco = next(iter(coco_stats.values())) if len(coco_stats) == 1 else coco_stats or None
        if skipped:
            result.summary["not_evaluated"] = skipped
    result._labels = sorted(metrics, key=position.__getitem__)
    return seconds


def _own_image_ids(sides: Sides) -> dict[tuple[int, int], int]:
    """(pair, 0) -> the input's integer image id, when every image unit says one (distinct); else nothing."""
    out: dict[tuple[int, int], int] = {}
    for k, pair in enumerate(sides.pairs):
        unit = (pair.truth or pair.pred).unit  # type: ignore[union-attr]
        source = unit.get("source") or {}
        record = source.get("record") if isinstance(source, dict) else None
        if unit["kind"] != "image" or type(record) is not int or record < 0:
            return {}
        out[(k, 0)] = record
    return out if len(set(out.values())) == len(out) else {}


def _summary(sides: Sides, result: Evaluation) -> dict[str, Any]:
    paired = sum(1 for p in sides.pairs if p.truth is not None and p.pred is not None)
    truth = {(i.pair, i.frame) for i in sides.truth} | {(c.pair, c.frame) for c in sides.truth_classifications}
    pred = {(i.pair, i.frame) for i in sides.pred} | {(c.pair, c.frame) for c in sides.pred_classifications}
    return {
        "data_units": {"paired": paired, "prediction_only": sum(1 for p in sides.pairs if p.truth is None),
                       "truth_only": sum(1 for p in sides.pairs if p.pred is None)},
        "frames": len(truth | pred),
        "frames_one_side": {"prediction_only": len(pred - truth), "truth_only": len(truth - pred)},
        "predictions": len(sides.pred), "truths": len(sides.truth),
        "below_confidence": sum(1 for p in sides.pred if p.confidence < result.confidence),
        "classifications": {"predicted": len(sides.pred_classifications),
                            "truth": len(sides.truth_classifications)},
    }
