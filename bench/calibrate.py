"""Derive the fusion weights and the answer decision from the development questions.

    python bench/calibrate.py [--cache DIR]

Reads only the dev halves of the chat question sets (eval/chat/*-dev.yaml; the
holdouts are frozen, see eval/chat/HOLDOUT*.sha256) over their three corpora
(the bundled note, ../shared/corpora/okd-io and metanet-notes). Two steps:

1. Fusion: every combination of dense_weight and heading_boost on a small grid,
   every question answered, scored by the mean over corpora of passage-level MRR
   (the evidence must be in the quoted text, as `okdbot eval` scores it).
2. The decision, per language: a question is answered when the best passage holds
   coverage_threshold of its concepts or its cosine stands out by the gap threshold.
   The thresholds decline as many unanswerable questions as possible while at most
   MAX_DECLINED of the answerable ones (of that language) are declined: declining a
   question the notes answer is the worse mistake.

Prints what it chose and the dev numbers behind it; the defaults in okdbot/config.py
(RetrievalSettings) are these values.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import okdbot_index  # noqa: E402

DEV = {"okd-note": "eval/chat/okd-note-chat-dev.yaml", "okd-io": "eval/chat/okd-io-chat-dev.yaml",
       "metanet": "eval/chat/metanet-chat-dev.yaml"}
DENSE_WEIGHTS = (0.5, 1.0, 1.5, 2.0)
HEADING_BOOSTS = (0.0, 0.2, 0.4)
COVERAGE_THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 1.01)
MAX_DECLINED = 0.10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "okdbot-bench-quality")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)

    from okdbot.evaluate import OkdbotSystem, load_questions, run
    from okdbot.runtime import load_retriever

    retrievers, sets = {}, {}
    for corpus, path in DEV.items():
        settings = okdbot_index(corpus, args.cache)
        if settings:
            retrievers[corpus] = load_retriever(settings)
            sets[corpus] = load_questions(ROOT / path)
    always = {"coverage_threshold": 0.0}
    scores = {}
    for dense, heading in itertools.product(DENSE_WEIGHTS, HEADING_BOOSTS):
        per = {}
        for corpus, retriever in retrievers.items():
            retriever.settings = replace(retriever.settings, dense_weight=dense, heading_boost=heading, **always)
            per[corpus] = run(OkdbotSystem(retriever), sets[corpus]).slices["all"]
        scores[(dense, heading)] = per
        print(f"dense_weight {dense:<4} heading_boost {heading:<4} " + "  ".join(
            f"{c}: hit@3 {m.hit[3]:.3f} MRR {m.mrr:.3f}" for c, m in per.items()), file=sys.stderr)
    (dense, heading), per = max(scores.items(), key=lambda kv: (statistics.fmean(m.mrr for m in kv[1].values()),
                                                                -abs(kv[0][0] - 1.0)))
    print(f"fusion: dense_weight {dense}, heading_boost {heading} "
          f"(dev MRR {statistics.fmean(m.mrr for m in per.values()):.3f})")

    signals = []  # (lang, answerable, coverage, gap)
    for corpus, retriever in retrievers.items():
        retriever.settings = replace(retriever.settings, dense_weight=dense, heading_boost=heading)
        for q in sets[corpus].questions:
            result = retriever.search(q.text, context=q.after)
            signals.append((q.lang, not q.unanswerable, result.coverage, result.gap))
    print(decide(signals))
    return 0


def decide(signals) -> str:
    """The coverage threshold (shared) and gap thresholds (per language) that decline the most
    unanswerable questions with at most MAX_DECLINED of the answerable ones declined."""
    best = None
    for coverage in COVERAGE_THRESHOLDS:
        gaps, declined_right, total_unanswerable = {}, 0, 0
        for lang in ("ko", "en"):
            mine = [s for s in signals if s[0] == lang]
            answerable = [s for s in mine if s[1] and s[2] < coverage]  # those only the gap can answer
            allowed = int(MAX_DECLINED * sum(1 for s in mine if s[1]))
            gaps_needed = sorted(s[3] for s in answerable)
            gaps[lang] = gaps_needed[allowed] if len(gaps_needed) > allowed else 1.0
            unanswerable = [s for s in mine if not s[1]]
            declined_right += sum(1 for s in unanswerable if s[2] < coverage and s[3] < gaps[lang])
            total_unanswerable += len(unanswerable)
        key = (declined_right, coverage)
        if best is None or key > best[0]:
            best = (key, coverage, gaps, total_unanswerable)
    (right, _), coverage, gaps, total = best
    return (f"decision: coverage_threshold {coverage}, gap_threshold {gaps['en']:.4f}, "
            f"gap_threshold_korean {gaps['ko']:.4f} (dev: {right} of {total} unanswerable declined, "
            f"at most {MAX_DECLINED:.0%} of the answerable ones per language)")


if __name__ == "__main__":
    sys.exit(main())
