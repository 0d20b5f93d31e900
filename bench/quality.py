"""okdbot against what a user would build instead, on the same questions, in one table.

    python bench/quality.py [--corpora DIR] [--cache DIR] [-k 5] [--json]

Systems, each scored by okdbot.evaluate on the text it would show:
  okdbot           the configured pipeline (okdbot.yaml: synonyms, weights, threshold)
  bm25-whitespace  BM25 (bm25s) over lowercased whitespace tokens
  dense-500        the same embedding model + FAISS (flat, inner product)
Both baselines index fixed 500-character chunks with 50 characters of overlap,
as a typical LangChain recipe does, and always answer with their top k chunks;
they read a follow-up (`after:`) as the earlier question and the follow-up joined.

For follow-up questions (`after:`) it also scores okdbot-alone: okdbot reading
each follow-up on its own, as a new question.

Question sets: eval/okd-note.yaml and eval/okd-follow-ups.yaml over corpus/, and
eval/metanet-notes.yaml over <corpora>/metanet-notes/docs (default corpora:
../shared/corpora next to the repository); a set whose notes are absent is
skipped with a message. Indexes
and baseline vectors are cached under --cache, so a second run embeds nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from okdbot.evaluate import (COLUMNS, Answer, OkdbotSystem, Returned, load_questions, report_json,  # noqa: E402
                             row, run, table)

CHUNK_CHARS, OVERLAP = 500, 50
SLICES = ["ko", "en", "all", "follow-up", "dev", "holdout"]
NOTE_URL = "https://github.com/JoEunSae/Metanet-Internship/blob/main/docs/"


def question_sets(corpora: Path) -> list[tuple[str, Path, Path]]:
    """(name, question file, notes folder) of each set whose notes are here."""
    sets = [("okd-note", ROOT / "eval" / "okd-note.yaml", ROOT / "corpus"),
            ("okd-follow-ups", ROOT / "eval" / "okd-follow-ups.yaml", ROOT / "corpus"),
            ("metanet-notes", ROOT / "eval" / "metanet-notes.yaml", corpora / "metanet-notes" / "docs")]
    present = []
    for name, questions, notes in sets:
        if notes.is_dir():
            present.append((name, questions, notes))
        else:
            print(f"skipping {name}: {notes} is not on this machine (pass --corpora DIR)", file=sys.stderr)
    return present


def fixed_chunks(notes: Path) -> list[tuple[str, str]]:
    """(file, text) windows of CHUNK_CHARS characters overlapping by OVERLAP, per note."""
    out = []
    for path in sorted(notes.rglob("*.md")):
        text = path.read_text(encoding="utf-8", errors="replace")
        file = path.relative_to(notes).as_posix()
        for start in range(0, max(len(text) - OVERLAP, 1), CHUNK_CHARS - OVERLAP):
            out.append((file, text[start:start + CHUNK_CHARS]))
    return out


class Bm25Whitespace:
    name = "bm25-whitespace"

    def __init__(self, chunks: list[tuple[str, str]]):
        import bm25s

        self.chunks = chunks
        self.bm25 = bm25s.BM25()
        self.bm25.index([text.lower().split() or [""] for _, text in chunks], show_progress=False)

    def search(self, question: str, k: int, after: str = "") -> Answer:
        tokens = [t for t in f"{after} {question}".lower().split() if t in self.bm25.vocab_dict]
        if not tokens:
            return Answer(True, [])
        scores = self.bm25.get_scores(tokens)
        return Answer(True, [_returned(self.chunks[i]) for i in np.argsort(-scores)[:k]])


class Dense500:
    name = "dense-500"

    def __init__(self, chunks: list[tuple[str, str]], model, cache: Path):
        import faiss

        self.chunks, self.model = chunks, model
        texts = [text for _, text in chunks]
        key = hashlib.sha256(json.dumps([model.model_id, texts]).encode()).hexdigest()[:16]
        file = cache / f"dense500-{key}.npy"
        if file.exists():
            vectors = np.load(file, allow_pickle=False)
        else:
            vectors = model.encode_documents(texts)  # truncated at the model's limit, as LangChain does
            np.save(file, vectors, allow_pickle=False)
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def search(self, question: str, k: int, after: str = "") -> Answer:
        _, ids = self.index.search(self.model.encode_queries([f"{after} {question}".strip()]), k)
        return Answer(True, [_returned(self.chunks[i]) for i in ids[0] if i >= 0])


class FollowUpAlone(OkdbotSystem):
    """okdbot reading a follow-up on its own (what okdbot did before follow-ups had context)."""

    name = "okdbot-alone"

    def search(self, question: str, k: int, after: str = "") -> Answer:
        return super().search(question, k)


def _returned(chunk: tuple[str, str]) -> Returned:
    file, text = chunk
    return Returned(file, 0, 0, "", text)


def okdbot_system(notes: Path, cache: Path, name: str, model):
    """okdbot as configured in okdbot.yaml, over `notes`, index cached under `cache`."""
    from okdbot.build import build_index
    from okdbot.config import load_settings
    from okdbot.lexical import Analyzer
    from okdbot.retrieve import Retriever
    from okdbot.runtime import load_synonyms

    settings = load_settings(ROOT / "okdbot.yaml", corpus=notes, source_url=NOTE_URL,
                             index=cache / f"okdbot-{name}", env={})
    analyzer = Analyzer(synonyms=load_synonyms(settings)).load()
    build_index(settings, lambda: model, analyzer=analyzer, progress=False)
    return OkdbotSystem(Retriever(settings.index_dir, settings.retrieval, model, analyzer))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpora", type=Path, default=ROOT.parent / "shared" / "corpora",
                        help="folder holding metanet-notes/ (default: ../shared/corpora)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "okdbot-bench-quality",
                        help="where indexes and baseline vectors are kept between runs")
    parser.add_argument("-k", type=int, default=5, help="passages per question (default 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)

    from okdbot.config import load_settings
    from okdbot.embed import SentenceTransformerEmbedder

    model = SentenceTransformerEmbedder(load_settings(ROOT / "okdbot.yaml", env={}).model)
    rows, reports = [], {}
    for name, questions_file, notes in question_sets(args.corpora):
        questions = load_questions(questions_file)
        chunks = fixed_chunks(notes)
        started = time.perf_counter()
        okdbot = okdbot_system(notes, args.cache, name, model)
        systems = [okdbot, Bm25Whitespace(chunks), Dense500(chunks, model, args.cache)]
        if any(q.after for q in questions.questions):
            systems.append(FollowUpAlone(okdbot.retriever))
        print(f"{name}: {len(questions.questions)} questions, {len(chunks)} fixed chunks, "
              f"systems ready in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        for system in systems:
            report = run(system, questions, args.k)
            reports[f"{name}/{system.name}"] = report
            for slice_name, metrics in report.slices.items():
                rows.append(([name, slice_name, system.name], row(metrics)))
    verdicts = _verdicts(reports)
    if args.json:
        print(json.dumps({"k": args.k, "reports": {key: report_json(r) for key, r in reports.items()},
                          "okdbot_wins": verdicts}, ensure_ascii=False))
        return 0
    sets = list(dict.fromkeys(r[0][0] for r in rows))
    rows.sort(key=lambda r: (sets.index(r[0][0]), SLICES.index(r[0][1])))
    print(table(rows, ["set", "slice", "system", *COLUMNS]))
    print()
    for key, won in verdicts.items():
        print(f"{key}: okdbot {'beats' if won else 'does NOT beat'} both baselines on hit@3 and MRR")
    return 0


def _verdicts(reports) -> dict[str, bool]:
    """Per set and language slice: does okdbot have the best hit@3 and MRR, strictly?"""
    out = {}
    for key, report in reports.items():
        set_name, system = key.split("/")
        if system != "okdbot":
            continue
        for slice_name in ("ko", "en"):
            mine = report.slices.get(slice_name)
            if mine is None or mine.answerable == 0:
                continue
            others = [r.slices[slice_name] for k, r in reports.items()
                      if k.startswith(set_name + "/") and k.split("/")[1] not in ("okdbot", FollowUpAlone.name)]
            out[f"{set_name}/{slice_name}"] = all(
                mine.hit[3] > o.hit[3] and mine.mrr > o.mrr for o in others)
    return out


if __name__ == "__main__":
    sys.exit(main())
