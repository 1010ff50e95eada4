"""Matching and accumulation on faster-coco-eval's C++ core (bit-identical to pycocotools' COCOeval).

For each family of shapes, both sides become COCO datasets (one image per paired data unit and frame, one
category per ontology class) and a :class:`Evaluator` runs them. Its similarity matrices are COCO's own for
boxes, masks and keypoints and predport's for the shapes COCO lacks; attribute agreement under the match mode
is an eligibility mask on them (an ineligible pair gets similarity 0, so it can never match). The evaluator
keeps every (image, class) matrix, raw and masked, with the order of its rows (predictions by descending
score, stable) and columns (truths), for the per-prediction outcomes (:func:`outcomes`).

Protocol ``encord``: one area range (all), no cap on predictions per image, IoU thresholds 0.50:0.05:0.95 and
T. Protocol ``coco``: COCO's parameters (area ranges, maxDets 1/10/100, or 20 for keypoints).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from predport.core.evaluate import similarity
from predport.core.evaluate.instances import Instance, differing

STANDARD = tuple(float(t) for t in np.linspace(0.5, 0.95, 10))


def _quiet(*args: Any, **kwargs: Any) -> None:
    pass


@dataclass
class Kept:
    """One (image, class) similarity matrix: the predictions (rows, by descending score), the truths (columns),
    the raw similarities and the ones the attributes allow."""

    dts: list[int]  # instance indices
    gts: list[int]
    raw: np.ndarray[Any, Any]
    allowed: np.ndarray[Any, Any]


def evaluator_class() -> type:
    from faster_coco_eval import COCOeval_faster

    class Evaluator(COCOeval_faster):  # type: ignore[misc]
        """COCOeval_faster with predport's similarities, attribute eligibility and kept matrices."""

        def setup(self, family: str, preds: list[Instance], truths: list[Instance], mode: str,
                  oks_sigma: float) -> None:
            self.family, self.preds, self.truths, self.mode, self.oks_sigma = family, preds, truths, mode, oks_sigma
            self.kept: dict[tuple[int, int], Kept] = {}
            # (attributes decide nothing when no instance has any: box tables, most results files)
            self.attributes = mode != "geometry" and (any(i.attrs for i in preds) or any(i.attrs for i in truths))

        def _ordered(self, image: int, cat: int, keypoints: bool) -> tuple[list[Any], list[Any]]:
            p = self.params
            if keypoints:
                gts, dts = self.gt_dataset.get(image, cat), self.dt_dataset.get(image, cat)
            else:
                gts = self.gt_dataset.get_instances([image], [cat], True)[0][0]
                dts = self.dt_dataset.get_instances([image], [cat], True)[0][0]
            dts = [dts[i] for i in np.argsort([-d["score"] for d in dts], kind="mergesort")][: p.maxDets[-1]]
            return dts, gts

        def evaluate(self) -> None:
            """For boxes, every (image, class) matrix at once (numpy), then faster-coco-eval's C++ matching and
            accumulation; other families through its own per-pair loop. (Measured on bench/run.py's 500k boxes:
            the per-pair Python loop -- the evaluator's and ours -- was most of the evaluation's time.)"""
            if self.family != "bbox":
                super().evaluate()
                return
            import copy

            import faster_coco_eval.faster_eval_api_cpp as cpp

            p = self.params
            p.imgIds, p.catIds, p.maxDets = list(np.unique(p.imgIds)), list(np.unique(p.catIds)), sorted(p.maxDets)
            self._prepare()
            self.ious = self._boxes_at_once()
            ious = [[self.ious.get((i, c), []) for c in p.catIds] for i in p.imgIds]
            self._paramsEval = copy.deepcopy(p)
            self.eval = cpp.COCOevalEvaluateAccumulate(self._paramsEval, ious, self.gt_dataset, self.dt_dataset,
                                                       p.imgIds, p.catIds, bool(p.useCats))

        def _boxes_at_once(self) -> dict[tuple[int, int], Any]:
            """Every (image, class) IoU matrix (predictions by descending score, stable; truths in the dataset's
            order), computed together with pycocotools' bbIou arithmetic (so bit-identical), masked by the
            attributes, and kept."""
            p = self.params
            gts = self.cocoGt.loadAnns(self.cocoGt.getAnnIds(imgIds=p.imgIds, catIds=p.catIds))
            dts = self.cocoDt.loadAnns(self.cocoDt.getAnnIds(imgIds=p.imgIds, catIds=p.catIds))
            if not gts or not dts:
                return {}
            gkey = np.array([(g["image_id"], g["category_id"]) for g in gts], dtype=np.int64)
            dkey = np.array([(d["image_id"], d["category_id"]) for d in dts], dtype=np.int64)
            keys, inverse = np.unique(np.concatenate([gkey, dkey]), axis=0, return_inverse=True)
            inverse = inverse.reshape(-1)
            ggroup, dgroup = inverse[: len(gts)], inverse[len(gts):]
            gorder = np.argsort(ggroup, kind="stable")
            score = np.array([d["score"] for d in dts])
            dorder = np.lexsort((np.arange(len(dts)), -score, dgroup))  # group, then score down, then input order
            g_counts = np.bincount(ggroup, minlength=len(keys))
            d_counts = np.minimum(np.bincount(dgroup, minlength=len(keys)), p.maxDets[-1])
            d_first = np.concatenate([[0], np.cumsum(np.bincount(dgroup, minlength=len(keys)))[:-1]])
            g_first = np.concatenate([[0], np.cumsum(g_counts)[:-1]])
            both = np.flatnonzero((g_counts > 0) & (d_counts > 0))
            # the predictions kept (maxDets per pair) and, for each, its truths: one flat list of pairs
            rows = np.concatenate([dorder[d_first[k]: d_first[k] + d_counts[k]] for k in both]) if len(both) else \
                np.zeros(0, dtype=np.int64)
            per_row = np.repeat(g_counts[both], d_counts[both])
            row_group_first = np.repeat(g_first[both], d_counts[both])
            pair_first = np.concatenate([[0], np.cumsum(per_row)[:-1]])
            col = np.arange(per_row.sum()) - np.repeat(pair_first, per_row)
            g_idx = gorder[np.repeat(row_group_first, per_row) + col]
            d_idx = np.repeat(rows, per_row)
            gb = np.array([g["bbox"] for g in gts], dtype=np.float64)[g_idx]
            db = np.array([d["bbox"] for d in dts], dtype=np.float64)[d_idx]
            crowd = np.array([bool(g.get("iscrowd", 0)) for g in gts])[g_idx]
            # pycocotools' bbIou, operation for operation
            w = np.fmin(db[:, 2] + db[:, 0], gb[:, 2] + gb[:, 0]) - np.fmax(db[:, 0], gb[:, 0])
            h = np.fmin(db[:, 3] + db[:, 1], gb[:, 3] + gb[:, 1]) - np.fmax(db[:, 1], gb[:, 1])
            inter = w * h
            da, ga = db[:, 2] * db[:, 3], gb[:, 2] * gb[:, 3]
            with np.errstate(invalid="ignore", divide="ignore"):
                iou = np.where((w > 0) & (h > 0), inter / np.where(crowd, da, da + ga - inter), 0.0)
            out: dict[tuple[int, int], Any] = {}
            dt_ids = np.array([d["id"] - 1 for d in dts])[d_idx]
            gt_ids = np.array([g["id"] - 1 for g in gts])[g_idx]
            start = 0
            mask = self._mask
            for k, d, g in zip(both.tolist(), d_counts[both].tolist(), g_counts[both].tolist(), strict=True):
                end = start + d * g
                key = (int(keys[k][0]), int(keys[k][1]))
                out[key] = mask(key, dt_ids[start:end:g].tolist(), gt_ids[start: start + g].tolist(),
                                iou[start:end].reshape(d, g))
                start = end
            return out

        def computeIoU(self, image: int, cat: int) -> Any:
            if self.family in ("bbox", "segm"):
                raw = super().computeIoU(image, cat)
                dts, gts = self._ordered(image, cat, False)
            else:
                dts, gts = self._ordered(image, cat, False)
                raw = similarity.custom([self.preds[d["id"] - 1] for d in dts],
                                        [self.truths[g["id"] - 1] for g in gts], self.oks_sigma) if dts and gts else []
            return self._keep(image, cat, dts, gts, raw)

        def computeOks(self, image: int, cat: int) -> Any:
            raw = super().computeOks(image, cat)
            dts, gts = self._ordered(image, cat, True)
            return self._keep(image, cat, dts, gts, raw)

        def _keep(self, image: int, cat: int, dts: list[Any], gts: list[Any], raw: Any) -> Any:
            if len(raw) == 0:
                return raw
            return self._mask((image, cat), [a["id"] - 1 for a in dts], [a["id"] - 1 for a in gts],
                              np.asarray(raw, dtype=float))

        def _mask(self, key: tuple[int, int], d: list[int], g: list[int], raw: np.ndarray[Any, Any]) -> Any:
            allowed = raw
            if self.attributes:
                preds, truths = self.preds, self.truths
                if any(preds[i].attrs for i in d) or any(truths[j].attrs for j in g):
                    ok = np.array([[not differing(preds[i].attrs, truths[j].attrs, self.mode) for j in g]
                                   for i in d], dtype=bool)
                    allowed = np.where(ok, raw, 0.0)
            self.kept[key] = Kept(d, g, raw, allowed)
            return allowed

    return Evaluator


@dataclass
class Family:
    """One family's evaluation: its datasets, the evaluator after evaluate() and accumulate(), and which
    category id is which class."""

    name: str
    cat_ids: dict[str, int]  # class name -> category id
    evaluator: Any
    thresholds: tuple[float, ...]
    gt: Any
    stats: list[float] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # build (the COCO datasets), match (the evaluation)


def run(name: str, images: list[dict[str, Any]], categories: list[dict[str, Any]], truths: list[Instance],
        preds: list[Instance], protocol: str, mode: str, thresholds: tuple[float, ...], oks_sigma: float,
        kpt_sigmas: np.ndarray[Any, Any] | None) -> Family:
    """Evaluate one family (instances know their COCO image id): build the COCO datasets, run the evaluator,
    keep its matrices."""
    import time

    from faster_coco_eval import COCO

    t0 = time.perf_counter()
    cat_ids = {c["name"]: c["id"] for c in categories}
    if name == "bbox":
        gt_anns = similarity.box_annotations(truths, cat_ids, True)
        dt_anns = similarity.box_annotations(preds, cat_ids, False)
    else:
        gt_anns = [similarity.annotation(t, name, k + 1, t.image, cat_ids[t.cls.name], True)
                   for k, t in enumerate(truths)]
        dt_anns = [similarity.annotation(p, name, k + 1, p.image, cat_ids[p.cls.name], False)
                   for k, p in enumerate(preds)]
    gt = COCO(print_function=_quiet)
    gt.dataset = {"images": images, "categories": categories, "annotations": gt_anns}
    gt.createIndex()
    dt = gt.loadRes(dt_anns)
    iou_type = {"segm": "segm", "keypoints": "keypoints"}.get(name, "bbox")
    ev = evaluator_class()(gt, dt, iou_type, print_function=_quiet,
                           kpt_oks_sigmas=list(kpt_sigmas) if kpt_sigmas is not None else None)
    ev.setup(name, preds, truths, mode, oks_sigma)
    p = ev.params
    p.catIds = sorted(cat_ids.values())
    p.iouThrs = np.array(thresholds)
    if protocol == "encord":
        p.areaRng, p.areaRngLbl = [[0.0, 1e30]], ["all"]
        p.maxDets = [max(1, len(preds))]
    t1 = time.perf_counter()
    ev.evaluate()
    ev.accumulate()
    family = Family(name, cat_ids, ev, thresholds, gt, seconds={"build": t1 - t0, "match": time.perf_counter() - t1})
    if protocol == "coco" and tuple(thresholds) == STANDARD:
        ev.summarize()
        family.stats = [float(s) for s in ev.stats]
    return family


def class_ap(family: Family, class_name: str, threshold: float | None) -> float | None:
    """The class's AP (area all, the last maxDets) at one threshold, or averaged over the standard ones;
    None when the class has no truth here."""
    precision = family.evaluator.eval["precision"]  # [T, R, K, A, M]
    k = sorted(family.cat_ids.values()).index(family.cat_ids[class_name])
    if threshold is None:
        rows = [i for i, t in enumerate(family.thresholds) if any(abs(t - s) < 1e-9 for s in STANDARD)]
    else:
        rows = [i for i, t in enumerate(family.thresholds) if abs(t - threshold) < 1e-9]
    values = [precision[i, :, k, 0, -1] for i in rows]
    aps = [float(v[v > -1].mean()) for v in values if (v > -1).any()]
    return sum(aps) / len(aps) if aps and len(aps) == len(values) else None


def curve(family: Family, class_name: str, threshold: float) -> tuple[list[float], list[float]]:
    """The class's interpolated precision at COCO's 101 recall points, at ``threshold`` (for the plots)."""
    precision = family.evaluator.eval["precision"]
    k = sorted(family.cat_ids.values()).index(family.cat_ids[class_name])
    i = next(i for i, t in enumerate(family.thresholds) if abs(t - threshold) < 1e-9)
    p = precision[i, :, k, 0, -1]
    recall = family.evaluator.params.recThrs
    return [float(r) for r, v in zip(recall, p, strict=True) if v > -1], [float(v) for v in p if v > -1]


# -- per prediction ---------------------------------------------------------------------------------------

@dataclass(slots=True)
class Outcome:
    """What became of one prediction at threshold T (``truth``: the truth it matched, or -- for ``attributes``
    and ``class`` -- the truth it fits best; ``similarity``: to that truth, or the best one for ``iou``)."""

    pred: int
    kind: str  # tp | fp | ignored
    reason: str = ""  # fp: iou | duplicate | attributes | class | no_truth; ignored: crowd | max_dets
    truth: int | None = None
    similarity: float | None = None
    attributes: list[str] = field(default_factory=list)
    row: int = -1  # (a false positive before explain(): its row in the kept matrix of its (image, class))
    key: tuple[int, int] | None = None


def outcomes(family: Family, threshold: float, max_dets: int | None
             ) -> tuple[list[Outcome], dict[int, int], set[int]]:
    """COCO's greedy matching at one threshold, per (image, class), on the kept matrices: predictions by
    descending score take the still-unmatched truth they fit best; a prediction that matches an ignored truth
    (a crowd, which may take any number of them, or keypoints without a visible one) is ignored. Also: truth
    -> the prediction that matched it; the ignored truths. False positives get their reasons from
    :func:`explain` (only when someone asks: it costs as much as the matching)."""
    ev = family.evaluator
    preds = ev.preds
    t = min(threshold, 1 - 1e-10)
    by_pair: dict[tuple[int, int], list[int]] = defaultdict(list)  # the predictions of each (image, class)
    for ann in ev.cocoDt.dataset["annotations"]:
        by_pair[(ann["image_id"], ann["category_id"])].append(ann["id"] - 1)
    crowd = {ann["id"] - 1 for ann in family.gt.dataset["annotations"] if ann.get("iscrowd")}
    ignore = set(crowd)
    if family.name == "keypoints":  # (COCO ignores truths without a visible keypoint)
        ignore |= {ann["id"] - 1 for ann in family.gt.dataset["annotations"] if not ann.get("num_keypoints")}
    out: list[Outcome] = []
    add = out.append
    matched: dict[int, int] = {}
    kept_of = ev.kept
    for key, d_all in by_pair.items():
        order = sorted(d_all, key=lambda i: -preds[i].confidence)  # (stable: input order among ties)
        if max_dets is not None and len(order) > max_dets:
            out.extend(Outcome(i, "ignored", "max_dets") for i in order[max_dets:])
            order = order[:max_dets]
        kept = kept_of.get(key)
        if kept is None:  # predictions without truths of their class here
            out.extend(Outcome(i, "fp", "no_truth") for i in order)
            continue
        g_ids = kept.gts
        gts = sorted(range(len(g_ids)), key=lambda j: g_ids[j] in ignore) if ignore else range(len(g_ids))
        allowed = kept.allowed.tolist()
        taken: set[int] = set()
        for row, i in enumerate(kept.dts):
            best, m, r = t, -1, allowed[row]
            for j in gts:
                g = g_ids[j]
                if j in taken and g not in crowd:
                    continue
                if m > -1 and g in ignore and g_ids[m] not in ignore:
                    break
                if r[j] < best:
                    continue
                best, m = r[j], j
            if m == -1:
                add(Outcome(i, "fp", "", row=row, key=key))
                continue
            taken.add(m)
            g = g_ids[m]
            if g in ignore:
                add(Outcome(i, "ignored", "crowd", g, float(kept.raw[row, m])))
            else:
                matched[g] = i
                add(Outcome(i, "tp", "", g, float(kept.raw[row, m])))
    return out, matched, ignore


def explain(family: Family, out: list[Outcome], threshold: float, ignore: set[int]) -> None:
    """Give each false positive its reason: ``duplicate`` (the truth it fits was taken by a more confident
    prediction), ``attributes`` (it fits a truth but for its attributes: the keys that differ), ``class`` (it
    overlaps a truth of another class at >= T), ``iou`` (the best similarity to a truth of its class, below T)
    or ``no_truth``."""
    ev = family.evaluator
    t = min(threshold, 1 - 1e-10)
    for k, o in enumerate(out):
        if o.kind == "fp" and o.key is not None:
            out[k] = _why(o.pred, o.row, ev.kept[o.key], ignore, t, ev.preds, ev.truths, ev.mode)
    _classes(family, out, t)


def _why(i: int, row: int, kept: Kept, ignore: set[int], t: float, preds: list[Instance], truths: list[Instance],
         mode: str) -> Outcome:
    allowed, raw = kept.allowed[row].tolist(), kept.raw[row].tolist()
    regular = [j for j, g in enumerate(kept.gts) if g not in ignore]
    fits = [j for j in regular if allowed[j] >= t]
    if fits:  # it fits a truth that a more confident prediction took
        j = max(fits, key=allowed.__getitem__)
        return Outcome(i, "fp", "duplicate", kept.gts[j], raw[j])
    close = [j for j in regular if raw[j] >= t]
    if close:  # it fits a truth but for its attributes
        j = max(close, key=raw.__getitem__)
        g = kept.gts[j]
        return Outcome(i, "fp", "attributes", g, raw[j], differing(preds[i].attrs, truths[g].attrs, mode))
    if not regular:
        return Outcome(i, "fp", "no_truth")
    j = max(regular, key=raw.__getitem__)
    return Outcome(i, "fp", "iou", kept.gts[j], raw[j])


def _classes(family: Family, out: list[Outcome], t: float) -> None:
    """Turn ``iou`` / ``no_truth`` false positives that overlap a truth of another class at >= t into ``class``
    (one similarity matrix per image: those predictions against the image's other truths)."""
    if family.name not in ("bbox", "segm", "rbox"):
        return  # (points, lines and keypoints are not areas: their classes are not compared)
    ev = family.evaluator
    gt_by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for ann in family.gt.dataset["annotations"]:
        if not ann.get("iscrowd"):
            gt_by_image[ann["image_id"]].append(ann)
    dt_ann = ev.cocoDt.dataset["annotations"]  # (loadRes numbered them 1.. in this order)
    candidates: dict[int, list[Outcome]] = defaultdict(list)
    for o in out:
        if o.kind == "fp" and o.reason in ("iou", "no_truth"):
            candidates[dt_ann[o.pred]["image_id"]].append(o)
    for image, found in candidates.items():
        gts = gt_by_image.get(image)
        if not gts:
            continue
        dts = [dt_ann[o.pred] for o in found]
        if family.name == "bbox":
            sim = box_iou(np.array([d["bbox"] for d in dts], dtype=float),
                          np.array([g["bbox"] for g in gts], dtype=float))
        elif family.name == "segm":
            from pycocotools import mask as cocomask

            sim = np.asarray(cocomask.iou([d["rle"] for d in dts], [g["rle"] for g in gts], [0] * len(gts)),
                             dtype=float).reshape(len(dts), len(gts))
        else:
            sim = similarity.custom([ev.preds[o.pred] for o in found], [ev.truths[g["id"] - 1] for g in gts],
                                    ev.oks_sigma)
        same = np.array([d["category_id"] for d in dts])[:, None] == np.array([g["category_id"] for g in gts])[None, :]
        sim = np.where(same, -1.0, sim)
        best = sim.argmax(axis=1)
        for o, j, v in zip(found, best.tolist(), sim[np.arange(len(found)), best].tolist(), strict=True):
            if v >= t:
                o.reason, o.truth, o.similarity, o.attributes = "class", gts[j]["id"] - 1, v, []


def box_iou(d: np.ndarray[Any, Any], g: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """IoU of [x, y, w, h] boxes (predictions x truths), pycocotools' bbIou arithmetic (no crowds)."""
    d, g = d[:, None, :], g[None, :, :]
    w = np.fmin(d[..., 2] + d[..., 0], g[..., 2] + g[..., 0]) - np.fmax(d[..., 0], g[..., 0])
    h = np.fmin(d[..., 3] + d[..., 1], g[..., 3] + g[..., 1]) - np.fmax(d[..., 1], g[..., 1])
    inter = w * h
    with np.errstate(invalid="ignore", divide="ignore"):
        out: np.ndarray[Any, Any] = np.where((w > 0) & (h > 0),
                                             inter / (d[..., 2] * d[..., 3] + g[..., 2] * g[..., 3] - inter), 0.0)
    return out
