from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(Path(__file__).parent))


def load(path: Path) -> Any:
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def example_ontology_path() -> Path:
    return DATA / "encord" / "reference" / "ontology.json"
