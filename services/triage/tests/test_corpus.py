"""The labelled triage corpus (services/triage/corpus): its schema, size, variety and privacy.

The corpus is plain JSON Lines read with the standard library; docs/labelling-guide.md says how it
was labelled.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from fengqiao.taxonomy import CATEGORY_LABELS, TYPE_LABELS, URGENCY_LABELS

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
FIELDS = {"id", "text", "type", "category", "urgency", "channel", "style", "split"}
TYPES = set(TYPE_LABELS) - {"other"}  # the six types a citizen's message has
CHANNELS = {"hotline", "web", "wechat", "letter", "walk_in"}
STYLES = {"spoken", "note", "letter", "dialect", "typo", "multi"}
SPLITS = {"train": (0.70, 0.80), "test": (0.12, 0.18), "late": (0.08, 0.12)}
MIN_ITEMS, MIN_PER_TYPE, MIN_PER_CATEGORY = 2000, 150, 80
NEAR_DUPLICATE = 0.8  # share of the shorter text's character 4-grams found in the other text


def _load() -> list[tuple[str, dict[str, str]]]:
    items = []
    for path in sorted(CORPUS.glob("items-*.jsonl")):
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            items.append((f"{path.name}:{number}", json.loads(line)))
    return items


ITEMS = _load()


def test_every_item_has_the_schema_and_labels_of_the_taxonomy():
    for where, item in ITEMS:
        assert set(item) == FIELDS, where
        assert all(isinstance(value, str) for value in item.values()), where
        assert re.fullmatch(r"fq-\d{3}-\d{2,3}", item["id"]), where
        assert 10 <= len(item["text"]) <= 600, (where, len(item["text"]))
        assert item["text"] == item["text"].strip() and "\n" not in item["text"], where
        assert item["type"] in TYPES, where
        assert item["category"] in CATEGORY_LABELS, where
        assert item["urgency"] in URGENCY_LABELS, where
        assert item["channel"] in CHANNELS, where
        assert item["style"] in STYLES, where
        assert item["split"] in SPLITS, where


def test_ids_are_unique():
    counts = Counter(item["id"] for _, item in ITEMS)
    assert [i for i, n in counts.items() if n > 1] == []


def test_size_and_coverage_minimums():
    assert len(ITEMS) >= MIN_ITEMS
    types = Counter(item["type"] for _, item in ITEMS)
    categories = Counter(item["category"] for _, item in ITEMS)
    assert {t: types[t] for t in TYPES if types[t] < MIN_PER_TYPE} == {}
    assert {c: categories[c] for c in CATEGORY_LABELS if categories[c] < MIN_PER_CATEGORY} == {}
    for urgency in URGENCY_LABELS:
        assert any(item["urgency"] == urgency for _, item in ITEMS), urgency


def test_splits_have_their_share_and_cover_every_label():
    splits = Counter(item["split"] for _, item in ITEMS)
    for split, (low, high) in SPLITS.items():
        assert low <= splits[split] / len(ITEMS) <= high, (split, splits[split])
    for split in ("test", "late"):
        held_out = [item for _, item in ITEMS if item["split"] == split]
        assert {item["type"] for item in held_out} == TYPES, split
        assert {item["category"] for item in held_out} == set(CATEGORY_LABELS), split


def test_late_split_is_the_files_written_last():
    """The late split is whole files, after every file of train and test (README: written last)."""
    split_of_file = defaultdict(set)
    for where, item in ITEMS:
        split_of_file[where.split(":")[0]].add(item["split"])
    kinds = ["late" if splits == {"late"} else "early" for _, splits in sorted(split_of_file.items())]
    assert all(splits in ({"late"}, {"train"}, {"test"}, {"train", "test"}) for splits in split_of_file.values())
    assert "late" in kinds and kinds == sorted(kinds), "late files must come after all the others"


def _four_grams(text: str) -> set[str]:
    text = "".join(text.split())
    return {text[i : i + 4] for i in range(len(text) - 3)} or {text}


def test_no_two_texts_are_near_duplicates():
    grams = [_four_grams(item["text"]) for _, item in ITEMS]
    holders = defaultdict(list)
    for index, gram_set in enumerate(grams):
        for gram in gram_set:
            holders[gram].append(index)
    pairs = []
    for index, gram_set in enumerate(grams):
        shared = Counter(other for gram in gram_set for other in holders[gram] if other > index)
        for other, count in shared.items():
            if count / min(len(gram_set), len(grams[other])) > NEAR_DUPLICATE:
                pairs.append((ITEMS[index][1]["id"], ITEMS[other][1]["id"]))
    assert pairs == []


def test_the_near_duplicate_check_can_fail():
    a = "楼上邻居每天晚上十二点以后还在拖动家具，我们一家老小根本睡不着"
    b = "楼上邻居每天晚上十二点以后还在拖动家具，我们全家老小根本睡不着"
    shared = len(_four_grams(a) & _four_grams(b)) / min(len(_four_grams(a)), len(_four_grams(b)))
    assert shared > NEAR_DUPLICATE


PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
PERSONAL = {
    "a run of 8+ digits (phone, ID card, bank card, QQ)": re.compile(r"\d{8,}"),
    "an unmasked mobile number": re.compile(r"1[3-9]\d[\d\s-]{8}"),
    "an e-mail address": re.compile(r"[\w.]+@[\w-]+\.\w+"),
    "an unmasked licence plate": re.compile(rf"[{PROVINCES}][A-Z]·?[0-9A-Z]{{5}}"),
}


@pytest.mark.parametrize("kind", sorted(PERSONAL))
def test_no_real_looking_personal_data(kind):
    pattern = PERSONAL[kind]
    found = [(item["id"], match.group()) for _, item in ITEMS for match in pattern.finditer(item["text"])]
    assert found == []


def test_masked_numbers_are_allowed_and_real_ones_are_caught():
    masked = "我电话138xxxx，或者1380000xxxx，车牌湘A·3XX**"
    real = "我电话13812345678，车牌湘A12345"
    assert not any(p.search(masked) for p in PERSONAL.values())
    assert PERSONAL["an unmasked mobile number"].search(real) and PERSONAL["an unmasked licence plate"].search(real)


def test_labels_follow_the_guide_where_it_is_mechanical():
    """Praise is never police_conduct (that category routes complaints about staff to the leader)."""
    assert [item["id"] for _, item in ITEMS if item["type"] == "praise" and item["category"] == "police_conduct"] == []


def test_readme_shows_the_current_counts():
    spec = importlib.util.spec_from_file_location("corpus_stats", CORPUS / "stats.py")
    assert spec and spec.loader
    stats = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stats)
    readme = (CORPUS / "README.md").read_text("utf-8")
    assert stats.report(stats.load()) in readme, "README.md is stale: paste the output of stats.py"
