"""Documentation that is generated must match the code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_asyncapi_document_matches_the_contracts():
    spec = importlib.util.spec_from_file_location("asyncapi_gen", ROOT / "scripts/asyncapi.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (ROOT / "docs/asyncapi.yaml").read_text("utf-8")
    assert committed == module.render(), "docs/asyncapi.yaml is stale: run scripts/asyncapi.py > docs/asyncapi.yaml"


def test_every_topic_is_documented():
    from fengqiao.events import Topics

    text = (ROOT / "docs/asyncapi.yaml").read_text("utf-8")
    for topic in Topics.all():
        assert f"address: {topic}\n" in text
