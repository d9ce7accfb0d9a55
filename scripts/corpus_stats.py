"""Size tables of the hand-written complaint corpus (socialitsm/classify/data/corpus/*.jsonl).

python scripts/corpus_stats.py           # print the tables
python scripts/corpus_stats.py --write   # refresh the tables inside corpus/SOURCE.md
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent / "socialitsm" / "classify" / "data" / "corpus"
LANGS = ("en", "fr", "de", "es")
LABELS = ("complaint", "not_complaint")
BEGIN = "<!-- corpus-stats:begin (scripts/corpus_stats.py --write) -->"
END = "<!-- corpus-stats:end -->"


def load(corpus: Path = CORPUS) -> list[dict]:
    rows: list[dict] = []
    for lang in LANGS:
        path = corpus / f"{lang}.jsonl"
        if path.exists():
            rows.extend(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return rows


def _table(header: list[str], body: list[list[object]]) -> list[str]:
    aligns = ["--:" if isinstance(cell, int) else "---" for cell in body[0]] if body else ["---"] * len(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(aligns) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in body]
    return lines


def render(rows: list[dict]) -> str:
    """Markdown tables: per language and label/split, per family and language, per service."""
    by = Counter((r["lang"], r["label"], r["split"]) for r in rows)
    out = [f"Total: **{len(rows)}** posts.", ""]
    body = []
    for lang in (*LANGS, "all"):
        langs = LANGS if lang == "all" else (lang,)

        def n(label: str | None = None, split: str | None = None, langs: tuple[str, ...] = langs) -> int:
            return sum(
                c for (lg, lb, sp), c in by.items() if lg in langs and label in (None, lb) and split in (None, sp)
            )

        total = n()
        share = f"{100 * n('complaint') / total:.0f}%" if total else "-"
        body.append([lang, total, n("complaint"), n("not_complaint"), share, n(split="train"), n(split="eval")])
    out += _table(["lang", "posts", "complaint", "not_complaint", "complaint share", "train", "eval"], body)

    out.append("")
    families = Counter((r["family"], r["label"]) for r in rows)
    per = Counter((r["family"], r["lang"]) for r in rows)
    evals = Counter(r["family"] for r in rows if r["split"] == "eval")
    order = sorted(families, key=lambda key: (LABELS.index(key[1]), key[0]))
    body = [[fam, label, *(per[fam, lang] for lang in LANGS), families[fam, label], evals[fam]] for fam, label in order]
    out += _table(["family", "label", *LANGS, "all", "of which eval"], body)

    out.append("")
    services = Counter((r["service"] or "(none)", r["label"]) for r in rows)
    names = sorted({s for s, _ in services}, key=lambda s: (s == "(none)", s))
    body = [[s, services[s, "complaint"], services[s, "not_complaint"]] for s in names]
    out += _table(["service", "complaint", "not_complaint"], body)
    return "\n".join(out) + "\n"


def refresh(source: Path, tables: str) -> str:
    text = source.read_text(encoding="utf-8")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start] + "\n" + tables + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="refresh the tables in corpus/SOURCE.md")
    args = parser.parse_args(argv)
    tables = render(load())
    if args.write:
        source = CORPUS / "SOURCE.md"
        source.write_text(refresh(source, tables), encoding="utf-8")
    else:
        sys.stdout.write(tables)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
