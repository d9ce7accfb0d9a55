"""The hand-written complaint corpus: schema, catalogue slugs, coverage, no duplicates, no train/eval leak."""

from __future__ import annotations

import csv
import importlib
import importlib.util
import json
import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "socialitsm" / "classify" / "data" / "corpus"
LANGS = ("en", "fr", "de", "es")
KEYS = {"text", "lang", "label", "service", "family", "split"}
FAMILIES = {
    "outage": "complaint",
    "slowness": "complaint",
    "sarcasm": "complaint",
    "service_desk": "complaint",
    "indirect_service": "complaint",
    "follow_up": "complaint",
    "offtopic_personal": "not_complaint",
    "offtopic_weather_commute": "not_complaint",
    "offtopic_food": "not_complaint",
    "offtopic_home_tech": "not_complaint",
    "offtopic_other_company_outage": "not_complaint",
    "offtopic_outage_news": "not_complaint",
    "offtopic_sports": "not_complaint",
    "praise": "not_complaint",
    "question": "not_complaint",
    "announcement": "not_complaint",
    "joke": "not_complaint",
    "job_post": "not_complaint",
    "sarcasm_not_it": "not_complaint",
}
WORD = re.compile(r"\w+")


def _rows(lang: str) -> list[tuple[int, dict]]:
    lines = (CORPUS / f"{lang}.jsonl").read_text(encoding="utf-8").splitlines()
    return [(number, json.loads(line)) for number, line in enumerate(lines, 1) if line.strip()]


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return [row for lang in LANGS for _, row in _rows(lang)]


def _normal(text: str) -> str:
    return " ".join(text.casefold().split())


def _words(text: str) -> frozenset[str]:
    return frozenset(WORD.findall(text.casefold()))


def test_catalogue_slugs_come_from_the_default_catalogue() -> None:
    seeded = importlib.import_module("socialitsm.migrations.0002_default_catalogue").CATALOGUE
    assert "vpn" in {slug for slug, _, _ in seeded}


@pytest.mark.parametrize("lang", LANGS)
def test_every_line_has_the_schema(lang: str) -> None:
    slugs = {slug for slug, _, _ in importlib.import_module("socialitsm.migrations.0002_default_catalogue").CATALOGUE}
    for number, row in _rows(lang):
        where = f"{lang}.jsonl:{number}"
        assert set(row) == KEYS, where
        assert isinstance(row["text"], str) and row["text"] == row["text"].strip() and row["text"], where
        assert row["lang"] == lang, where
        assert row["family"] in FAMILIES, where
        assert row["label"] == FAMILIES[row["family"]], where
        assert row["service"] is None or row["service"] in slugs, where
        assert row["split"] in {"train", "eval"}, where


def test_every_line_is_valid_json_without_blank_lines() -> None:
    for lang in LANGS:
        text = (CORPUS / f"{lang}.jsonl").read_text(encoding="utf-8")
        assert text.endswith("\n") and "\n\n" not in text, lang
        for line in text.splitlines():
            assert isinstance(json.loads(line), dict)


def test_both_labels_both_splits_in_every_language(rows: list[dict]) -> None:
    seen = Counter((row["lang"], row["label"], row["split"]) for row in rows)
    for lang in LANGS:
        for label in ("complaint", "not_complaint"):
            for split in ("train", "eval"):
                assert seen[lang, label, split] > 0, (lang, label, split)


def test_about_a_quarter_of_each_language_is_eval(rows: list[dict]) -> None:
    for lang in LANGS:
        splits = Counter(row["split"] for row in rows if row["lang"] == lang)
        share = splits["eval"] / (splits["eval"] + splits["train"])
        assert 0.15 <= share <= 0.35, (lang, share)


def test_every_family_is_in_eval_in_every_language(rows: list[dict]) -> None:
    for lang in LANGS:
        families = {row["family"] for row in rows if row["lang"] == lang and row["split"] == "eval"}
        assert families == set(FAMILIES), lang


def test_no_exact_duplicates(rows: list[dict]) -> None:
    counts = Counter(_normal(row["text"]) for row in rows)
    assert [text for text, n in counts.items() if n > 1] == []


def test_no_train_eval_overlap(rows: list[dict]) -> None:
    # Same words in any order, or nine words in ten shared, count as the same post.
    for lang in LANGS:
        train = [_words(row["text"]) for row in rows if row["lang"] == lang and row["split"] == "train"]
        evals = [(row["text"], _words(row["text"])) for row in rows if row["lang"] == lang and row["split"] == "eval"]
        for text, words in evals:
            for other in train:
                assert len(words & other) < 0.9 * len(words | other), text


def test_eval_is_apart_from_the_posts_the_current_model_trains_on(rows: list[dict]) -> None:
    with (CORPUS.parent / "own_posts.csv").open(encoding="utf-8", newline="") as handle:
        own = [_words(row["text"]) for row in csv.DictReader(handle)]
    for row in rows:
        if row["split"] == "eval":
            words = _words(row["text"])
            for other in own:
                assert len(words & other) < 0.9 * len(words | other), row["text"]


def test_source_tables_are_current(rows: list[dict]) -> None:
    spec = importlib.util.spec_from_file_location("corpus_stats", ROOT / "scripts" / "corpus_stats.py")
    assert spec is not None and spec.loader is not None
    stats = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stats)
    source = CORPUS / "SOURCE.md"
    assert stats.refresh(source, stats.render(rows)) == source.read_text(encoding="utf-8")
