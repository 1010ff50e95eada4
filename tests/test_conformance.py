"""The conformance kit (predport.testing) for every built-in reader and for the example third-party plugin, the
way a plugin author runs it: one line each."""

from __future__ import annotations

from conftest import DATA, ROOT
from predport.testing import Sample, conformance

TestCoco = conformance("coco")
TestEncord = conformance("encord")
TestPredport = conformance("predport")
TestYolo = conformance("yolo")
TestVoc = conformance("voc")
TestKitti = conformance("kitti")
TestMot = conformance("mot")
TestLabelMe = conformance("labelme")
TestCvatImages = conformance("cvat_images")
TestCvatVideo = conformance("cvat_video")
EXAMPLE = Sample(ROOT / "examples" / "detections.csv", ROOT / "examples" / "ontology.json", entities=3)
TestCsvBoxes = conformance("csvboxes", [EXAMPLE], plugins=[DATA / "plugins" / "csvboxes.yaml"])
