"""okdbot against what a user would build instead, on the same questions, in one table.

    python bench/quality.py [--cache DIR] [-k 5] [--json] [--holdout]

Systems, each scored by okdbot.evaluate on the text it would show:
  okdbot           the configured pipeline (okdbot.yaml's settings and glossary)
  dense-e5         the same index read by the dense side alone (multilingual-e5-small
                   cosine, no lexical side, no answer decision)
  bm25-whitespace  BM25 (bm25s) over lowercased whitespace tokens
  langchain-e5     the LangChain recipe with okdbot's model: FAISS (flat, inner product)
  langchain-minilm the LangChain recipe with all-MiniLM-L6-v2 (HuggingFaceEmbeddings' usual choice)
The bm25 and LangChain baselines index fixed 500-character chunks with 50 characters of
overlap, as a typical LangChain recipe does, and always answer with their top k chunks;
they read a follow-up (`after:`) as the earlier question and the follow-up joined.

Question sets (bench/common.py): the chat sets written blind to okdbot (eval/chat/*-dev.yaml)
and the older own sets, over the bundled note, ../shared/corpora/okd-io and
../shared/corpora/metanet-notes; a set whose notes are absent is skipped with a message.
--holdout adds the unread frozen holdout (bench/common.py HOLDOUT_SETS; its checksums are checked
first): run it once, to report, never to tune. Indexes and baseline vectors are cached under --cache.
"""

from __future__ import annotations

import argparse
import copy
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

from bench.common import CORPUS, HOLDOUT_DIGESTS, HOLDOUT_SETS, QUESTION_SETS, okdbot_index  # noqa: E402
from okdbot.evaluate import (COLUMNS, Answer, OkdbotSystem, Returned, load_questions, report_json,  # noqa: E402
                             row, run, table)

CHUNK_CHARS, OVERLAP = 500, 50
SLICES = ["ko", "en", "cross", "all", "follow-up", "dev", "holdout"]


def question_sets(holdout: bool) -> list[tuple[str, Path, str]]:
    """(name, question file, corpus) of each set whose notes are here."""
    sets = dict(QUESTION_SETS)
    if holdout:
        _check_holdout()
        sets.update(HOLDOUT_SETS)
    present = []
    for name, corpus in sets.items():
        if CORPUS[corpus][0].is_dir():
            present.append((name, ROOT / "eval" / f"{name}.yaml", corpus))
        else:
            print(f"skipping {name}: {CORPUS[corpus][0]} is not on this machine", file=sys.stderr)
    return present


def _check_holdout() -> None:
    """The holdout files are the ones frozen before any tuning (their sha256 was committed)."""
    for line in (ROOT / "eval" / "chat" / HOLDOUT_DIGESTS).read_text(encoding="utf-8").splitlines():
        digest, name = line.split()
        actual = hashlib.sha256((ROOT / "eval" / "chat" / name).read_bytes()).hexdigest()
        if actual != digest:
            sys.exit(f"eval/chat/{name} is not the frozen holdout (sha256 {actual[:12]}…, expected {digest[:12]}…)")


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
    """The LangChain recipe: fixed chunks, one embedding model, FAISS."""

    def __init__(self, name: str, chunks: list[tuple[str, str]], model, cache: Path):
        self.name = name
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


def okdbot_system(corpus: str, cache: Path):
    """okdbot as configured in okdbot.yaml, over `corpus`, index cached under `cache`."""
    from okdbot.runtime import load_retriever

    return OkdbotSystem(load_retriever(okdbot_index(corpus, cache)))


class DenseOnly(OkdbotSystem):
    """okdbot's index and chunks read by the dense side alone: ranked by cosine, always answering."""

    name = "dense-e5"

    def __init__(self, retriever):
        from dataclasses import replace

        dense = copy.copy(retriever)
        dense.settings = replace(retriever.settings, lexical_weight=0.0, heading_boost=0.0, definition_boost=0.0,
                                 coverage_threshold=0.0)
        dense.refresh = lambda: False  # keep these settings (a new generation would bring its own)
        super().__init__(dense)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "okdbot-bench-quality",
                        help="where indexes and baseline vectors are kept between runs")
    parser.add_argument("-k", type=int, default=5, help="passages per question (default 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--holdout", action="store_true", help="add the frozen holdout sets (report once)")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)

    from okdbot.embed.sbert import SentenceTransformerEmbedder
    from okdbot.config import ModelSettings

    minilm = SentenceTransformerEmbedder(ModelSettings(name="all-MiniLM-L6-v2"))
    rows, reports, baselines = [], {}, {}
    for name, questions_file, corpus in question_sets(args.holdout):
        questions = load_questions(questions_file)
        started = time.perf_counter()
        okdbot = okdbot_system(corpus, args.cache)
        if corpus not in baselines:
            chunks = fixed_chunks(CORPUS[corpus][0])
            baselines[corpus] = [Bm25Whitespace(chunks), Dense500("langchain-e5", chunks, okdbot.retriever.encoder,
                                                                  args.cache),
                                 Dense500("langchain-minilm", chunks, minilm, args.cache)]
        systems = [okdbot, DenseOnly(okdbot.retriever), *baselines[corpus]]
        if any(q.after for q in questions.questions):
            systems.append(FollowUpAlone(okdbot.retriever))
        print(f"{name}: {len(questions.questions)} questions, systems ready in {time.perf_counter() - started:.0f} s",
              file=sys.stderr)
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
        print(f"{key}: okdbot {'beats' if won else 'does NOT beat'} every baseline on MRR")
    return 0


def _verdicts(reports) -> dict[str, bool]:
    """Per set: does okdbot have the best MRR over all its questions, strictly?"""
    out = {}
    for key, report in reports.items():
        set_name, system = key.rsplit("/", 1)
        if system != "okdbot":
            continue
        mine = report.slices["all"]
        others = [r.slices["all"] for k, r in reports.items()
                  if k.rsplit("/", 1)[0] == set_name and k.rsplit("/", 1)[1] not in ("okdbot", FollowUpAlone.name)]
        out[set_name] = all(mine.mrr > o.mrr for o in others)
    return out


if __name__ == "__main__":
    sys.exit(main())
