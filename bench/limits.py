"""What the current model and decision signals can reach, whatever the tuning: two diagnostics.

    python bench/limits.py [--cache DIR] [-k 5]

1. The answer decision. A question is answered when its best passage holds enough of its
   concepts (coverage) or its cosine stands out (gap). Over every chat question already
   reported (the dev halves and the retired holdouts: never the unread one), this prints,
   per corpus, the share of unanswerable questions the best pair of thresholds declines
   while at most 10/15/20/30% of the answerable ones are declined. The thresholds are
   chosen on the same questions they are scored on, so these shares are an upper bound.
2. Translation. okd-io-chat-dev-en.yaml is the okd.io dev set with each Korean question
   replaced by a literal English translation. It prints hit@3 and MRR of those questions
   in Korean and in English, beside the questions written in English, for okdbot and for
   the dense side alone: what translating a question before retrieval could buy.

Diagnostics only: nothing here sets a default. Indexes are cached under --cache (shared
with bench/quality.py).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import CORPUS, RETIRED_PARTS  # noqa: E402
from bench.quality import DenseOnly, okdbot_system  # noqa: E402
from okdbot.evaluate import load_questions, metrics, run  # noqa: E402

CHAT = {"okd-note": "okd-note-chat", "okd-io": "okd-io-chat", "metanet": "metanet-chat"}
CAPS = (0.10, 0.15, 0.20, 0.30)
COVERAGES = [round(0.025 * i, 3) for i in range(41)]
GAPS = [round(0.001 * i, 3) for i in range(61)]


def decision_signals(system, corpus: str) -> list[tuple[bool, bool, float, float]]:
    """(unanswerable, korean, coverage, gap) of every reported chat question over `corpus`."""
    out = []
    for part in ("dev", *RETIRED_PARTS):
        for q in load_questions(ROOT / "eval" / "chat" / f"{CHAT[corpus]}-{part}.yaml").questions:
            result = system.retriever.search(q.text, 5, q.after)
            out.append((q.unanswerable, result.korean, result.coverage, result.gap))
    return out


def best_tradeoff(signals, cap: float) -> tuple[float, float, float]:
    """(unanswerable declined, coverage threshold, gap threshold): the most unanswerable
    questions declined while at most `cap` of the answerable ones are."""
    answerable = [(c, g) for unanswerable, _, c, g in signals if not unanswerable]
    unanswerable = [(c, g) for u, _, c, g in signals if u]
    best = (0.0, 0.0, 0.0)
    for coverage, gap in itertools.product(COVERAGES, GAPS):
        declined = sum(c < coverage and g < gap for c, g in answerable) / len(answerable)
        if declined <= cap:
            share = sum(c < coverage and g < gap for c, g in unanswerable) / len(unanswerable)
            best = max(best, (share, coverage, gap))
    return best


def decision_report(cache: Path) -> None:
    print("1. the answer decision, on every reported chat question (dev + retired holdouts), in-sample")
    for corpus in CHAT:
        system = okdbot_system(corpus, cache)
        signals = decision_signals(system, corpus)
        s = system.retriever.settings
        answerable = [x for x in signals if not x[0]]
        unanswerable = [x for x in signals if x[0]]

        def declined(rows):
            return sum(c < s.coverage_threshold and g < (s.gap_threshold_korean if ko else s.gap_threshold)
                       for _, ko, c, g in rows) / len(rows)
        print(f"{corpus:9} {len(answerable)} answerable, {len(unanswerable)} unanswerable; shipped thresholds: "
              f"answerable declined {declined(answerable):.3f}, unanswerable declined {declined(unanswerable):.3f}")
        for cap in CAPS:
            share, coverage, gap = best_tradeoff(signals, cap)
            print(f"          answerable declined <= {cap:.2f}: at best {share:.3f} of unanswerable declined "
                  f"(coverage {coverage}, gap {gap})")


def translation_report(cache: Path, k: int) -> None:
    print("\n2. okd.io dev: the Korean questions, and the same questions translated literally to English")
    original = load_questions(ROOT / "eval" / "chat" / "okd-io-chat-dev.yaml")
    translated = load_questions(ROOT / "eval" / "chat" / "okd-io-chat-dev-en.yaml")
    system = okdbot_system("okd-io", cache)
    for name, each in (("okdbot", system), ("dense-e5", DenseOnly(system.retriever))):
        before, after = run(each, original, k).outcomes, run(each, translated, k).outcomes
        korean = [i for i, o in enumerate(before) if o.question.lang == "ko" and not o.question.unanswerable]
        english = [o for o in before if o.question.lang == "en" and not o.question.unanswerable]
        for label, group in (("Korean, as asked", [before[i] for i in korean]),
                             ("Korean, translated", [after[i] for i in korean]),
                             ("written in English", english)):
            m = metrics(group, k)
            print(f"{name:9} {label:20} n={m.answerable:<3} hit@3 {m.hit[3]:.3f}  MRR {m.mrr:.3f}  "
                  f"answerable declined {m.declined_answerable:.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "okdbot-bench-quality")
    parser.add_argument("-k", type=int, default=5, help="passages per question (default 5)")
    args = parser.parse_args()
    missing = [c for c in CHAT if not CORPUS[c][0].is_dir()]
    if missing:
        sys.exit(f"needs the shared corpora ({', '.join(missing)} missing under ../shared/corpora)")
    args.cache.mkdir(parents=True, exist_ok=True)
    decision_report(args.cache)
    translation_report(args.cache, args.k)
    return 0


if __name__ == "__main__":
    sys.exit(main())
