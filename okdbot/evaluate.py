"""Answer quality, measured: question sets, scoring, and the report.

A question set is a YAML file (see eval/*.yaml and docs/quality.md):

    name: okd-note               # optional (default: the file name)
    questions:
      - q: 컨테이너 이미지를 저장소 간에 복사하는 도구는?
        evidence:                # any one is enough
          - {file: Day26.md, text: "Skopeo :"}
        paraphrase: true         # optional: does not name what it asks about
        holdout: true            # optional: not used for tuning
        lang: ko                 # optional: ko when the question has Hangul, else en
        cross: true              # optional: asked in the other language than the answer's
        tags: [chatty, typo]     # optional: how it is asked (for reading failures)
      - q: How do I peer two Azure virtual networks?
        unanswerable: true
      - q: 그거 관리하는 Operator는?
        after: Prometheus가 뭐야?  # optional: a follow-up, read with the question(s) it replies to
        evidence: {file: Day26.md, text: "Prometheus Operator :"}

A question *hits at k* when one of the first k passages shown (the quoted
text of `okdbot query --json`) comes from an evidence file and contains its
text. Anything that answers questions (okdbot or a baseline) is scored the
same way through the `System` protocol.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import yaml

from .config import compose_yaml
from .errors import BadQuestion, EvalError
from .lexical import has_hangul
from .question import check_question, clean_text
from .redact import scrub

HIT_AT = (1, 3, 5)
_QUESTION_KEYS = {"q", "after", "evidence", "unanswerable", "lang", "paraphrase", "holdout", "note", "cross", "tags"}
_SET_KEYS = {"name", "questions"}


@dataclass(frozen=True)
class Evidence:
    file: str  # relative to the source root, as in the index
    text: str  # a substring the quoted passage must contain


@dataclass(frozen=True)
class Question:
    text: str
    evidence: tuple[Evidence, ...]
    unanswerable: bool
    lang: str
    paraphrase: bool = False
    holdout: bool = False
    line: int = 0
    after: str = ""  # a follow-up's earlier question(s)
    cross: bool = False  # asked in the other language than the answer's


@dataclass(frozen=True)
class QuestionSet:
    path: Path
    name: str
    questions: tuple[Question, ...]


@dataclass(frozen=True)
class Returned:
    """One passage as the user sees it."""

    file: str
    start_line: int
    end_line: int
    heading: str
    text: str


@dataclass(frozen=True)
class Answer:
    answered: bool
    passages: list[Returned]


class System(Protocol):
    name: str

    def search(self, question: str, k: int, after: str = "") -> Answer: ...


@dataclass
class Outcome:
    question: Question
    answer: Answer
    seconds: float
    rank: int | None  # 1-based rank of the first passage holding evidence

    @property
    def declined(self) -> bool:
        return not self.answer.answered or not self.answer.passages


@dataclass
class Metrics:
    questions: int
    answerable: int
    unanswerable: int
    hit: dict[int, float | None]
    mrr: float | None
    declined: int
    declined_answerable: float | None  # share of the answerable questions declined
    nf_precision: float | None
    nf_recall: float | None
    quoted_unanswerable: int
    ms_mean: float
    ms_p95: float


@dataclass
class Report:
    name: str
    k: int
    slices: dict[str, Metrics]
    outcomes: list[Outcome] = field(repr=False)


# ---------------------------------------------------------------- loading

def load_questions(path: str | Path) -> QuestionSet:
    """Read and check a question set; EvalError (one line, naming the line) on any problem."""
    path = Path(path)
    root = compose_yaml(path, "question file", EvalError, missing="pass an existing YAML file")
    if root is None:
        raise EvalError(f"{path}: no questions; add a 'questions:' list")
    top = _mapping(root, path, "the question file", _SET_KEYS)
    if "questions" not in top:
        raise EvalError(f"{path}:{root.start_mark.line + 1}: no 'questions:' list")
    items = top["questions"]
    if not isinstance(items, yaml.SequenceNode) or not items.value:
        raise EvalError(f"{path}:{items.start_mark.line + 1}: 'questions' must be a non-empty list")
    return QuestionSet(
        path=path,
        name=_scalar(top["name"], path, "name", str) if "name" in top else path.stem,
        questions=tuple(_question(item, path) for item in items.value),
    )


def _question(node: yaml.Node, path: Path) -> Question:
    line = node.start_mark.line + 1
    fields = _mapping(node, path, "a question", _QUESTION_KEYS)
    if "q" not in fields:
        raise EvalError(f"{path}:{line}: a question needs 'q' (the question text)")
    text = _scalar(fields["q"], path, "q", str).strip()
    if not clean_text(text):  # nothing left once read as people see it (e.g. only zero-width spaces)
        raise EvalError(f"{path}:{line}: 'q' is empty")
    try:
        check_question(text)
    except BadQuestion as exc:  # too long: refused here, before any model loads
        raise EvalError(f"{path}:{line}: {exc}") from None
    unanswerable = _scalar(fields["unanswerable"], path, "unanswerable", bool) if "unanswerable" in fields else False
    evidence = _evidence(fields["evidence"], path) if "evidence" in fields else ()
    if unanswerable and evidence:
        raise EvalError(f"{path}:{line}: a question is either unanswerable or has evidence, not both")
    if not unanswerable and not evidence:
        raise EvalError(f"{path}:{line}: give 'evidence: [{{file: …, text: …}}]' or 'unanswerable: true'")
    lang = _scalar(fields["lang"], path, "lang", str) if "lang" in fields else ("ko" if has_hangul(text) else "en")
    if lang not in ("ko", "en"):
        raise EvalError(f"{path}:{fields['lang'].start_mark.line + 1}: 'lang' must be ko or en")
    flags = {key: _scalar(fields[key], path, key, bool) for key in ("paraphrase", "holdout", "cross") if key in fields}
    after = _scalar(fields["after"], path, "after", str).strip() if "after" in fields else ""
    return Question(text, evidence, unanswerable, lang, line=line, after=after, **flags)


def _evidence(node: yaml.Node, path: Path) -> tuple[Evidence, ...]:
    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    out = []
    for item in items:
        fields = _mapping(item, path, "an evidence", {"file", "text"})
        if set(fields) != {"file", "text"}:
            raise EvalError(f"{path}:{item.start_mark.line + 1}: evidence needs both 'file' and 'text'")
        file, text = (_scalar(fields[k], path, k, str) for k in ("file", "text"))
        if not file.strip() or not text.strip():
            raise EvalError(f"{path}:{item.start_mark.line + 1}: evidence 'file' and 'text' must not be empty")
        out.append(Evidence(file, text))
    return tuple(out)


def _mapping(node: yaml.Node, path: Path, what: str, keys: set[str]) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        raise EvalError(f"{path}:{node.start_mark.line + 1}: {what} must be a mapping of keys")
    out = {}
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            raise EvalError(f"{path}:{key.start_mark.line + 1}: a key in {what} must be a plain name")
        if key.value not in keys:
            raise EvalError(f"{path}:{key.start_mark.line + 1}: unknown key '{key.value}' in {what}; "
                            f"expected one of: {', '.join(sorted(keys))}")
        out[key.value] = value
    return out


def _scalar(node: yaml.Node, path: Path, key: str, kind: type):
    value = yaml.SafeLoader("").construct_object(node) if isinstance(node, yaml.ScalarNode) else node
    if kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, kind):
        raise EvalError(f"{path}:{node.start_mark.line + 1}: '{key}' must be a "
                        f"{'true/false' if kind is bool else 'text'}")
    return value


# ---------------------------------------------------------------- scoring

class OkdbotSystem:
    """okdbot's retriever, scored on exactly what `okdbot query --json` shows."""

    name = "okdbot"

    def __init__(self, retriever):
        self.retriever = retriever

    def search(self, question: str, k: int, after: str = "") -> Answer:
        from .answer import to_json

        data = to_json(self.retriever.search(question, k, context=after))
        return Answer(data["answered"], [
            Returned(p["file"], p["start_line"], p["end_line"], p["heading"], p["text"])
            for p in data["passages"]])


def first_hit(question: Question, passages: list[Returned]) -> int | None:
    """1-based rank of the first passage that holds an evidence text from its file."""
    for rank, passage in enumerate(passages, 1):
        if any(passage.file == e.file and e.text in passage.text for e in question.evidence):
            return rank
    return None


def run(system: System, questions: QuestionSet, k: int = 5) -> Report:
    """Ask every question (after one untimed warm-up) and score the answers."""
    system.search(questions.questions[0].text, k)
    outcomes = []
    for question in questions.questions:
        started = time.perf_counter()
        answer = system.search(question.text, k, question.after)
        seconds = time.perf_counter() - started
        rank = None if question.unanswerable or not answer.answered else first_hit(question, answer.passages)
        outcomes.append(Outcome(question, answer, seconds, rank))
    return summarize(questions.name, outcomes, k)


def summarize(name: str, outcomes: list[Outcome], k: int) -> Report:
    """Metrics per language, overall, and for the dev/holdout split when the set has one."""
    slices = {lang: [o for o in outcomes if o.question.lang == lang] for lang in ("ko", "en")}
    slices["all"] = outcomes
    slices["cross"] = [o for o in outcomes if o.question.cross]
    follow_ups = [o for o in outcomes if o.question.after]
    if follow_ups and len(follow_ups) < len(outcomes):  # a set of follow-ups only: that is "all"
        slices["follow-up"] = follow_ups
    if any(o.question.holdout for o in outcomes):
        slices["dev"] = [o for o in outcomes if not o.question.holdout]
        slices["holdout"] = [o for o in outcomes if o.question.holdout]
    return Report(name, k, {key: metrics(group, k) for key, group in slices.items() if group}, outcomes)


def metrics(outcomes: list[Outcome], k: int) -> Metrics:
    answerable = [o for o in outcomes if not o.question.unanswerable]
    unanswerable = [o for o in outcomes if o.question.unanswerable]
    declined = [o for o in outcomes if o.declined]
    declined_right = sum(1 for o in unanswerable if o.declined)
    ms = sorted(o.seconds * 1000 for o in outcomes)

    def share(n: float, of: int) -> float | None:
        return round(n / of, 4) if of else None

    return Metrics(
        questions=len(outcomes), answerable=len(answerable), unanswerable=len(unanswerable),
        hit={at: share(sum(1 for o in answerable if o.rank and o.rank <= at), len(answerable)) if at <= k else None
             for at in HIT_AT},
        mrr=share(sum(1 / o.rank for o in answerable if o.rank), len(answerable)),
        declined=len(declined),
        declined_answerable=share(sum(1 for o in answerable if o.declined), len(answerable)),
        nf_precision=share(declined_right, len(declined)),
        nf_recall=share(declined_right, len(unanswerable)),
        quoted_unanswerable=len(unanswerable) - declined_right,
        ms_mean=round(statistics.fmean(ms), 1),
        ms_p95=round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 1),
    )


def failures(report: Report) -> list[Outcome]:
    """Answerable questions without a hit in the first k passages, and
    unanswerable questions that were answered with quotes."""
    return [o for o in report.outcomes if (o.question.unanswerable and not o.declined)
            or (not o.question.unanswerable and o.rank is None)]


# ---------------------------------------------------------------- output

COLUMNS = ("n", "answerable", "hit@1", "hit@3", "hit@5", "MRR", "ans-declined", "nf-prec", "nf-recall",
           "quoted-unans", "ms-mean", "ms-p95")


def row(m: Metrics) -> list[str]:
    def f(x):
        return "-" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)

    return [str(m.questions), str(m.answerable), f(m.hit[1]), f(m.hit[3]), f(m.hit[5]), f(m.mrr),
            f(m.declined_answerable), f(m.nf_precision), f(m.nf_recall), str(m.quoted_unanswerable), f"{m.ms_mean:.0f}", f"{m.ms_p95:.0f}"]


def table(rows: list[tuple[list[str], list[str]]], heads: list[str]) -> str:
    """A plain aligned text table: rows of (leading cells, metric cells)."""
    lines = [heads] + [lead + cells for lead, cells in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(heads))]
    return "\n".join("  ".join(c.ljust(w) if i < len(heads) - len(COLUMNS) else c.rjust(w)
                               for i, (c, w) in enumerate(zip(line, widths))) for line in lines)


def format_report(report: Report) -> str:
    out = [f"{report.name}: {len(report.outcomes)} questions, k={report.k}", "",
           table([([name], row(m)) for name, m in report.slices.items()], ["slice", *COLUMNS])]
    missed = failures(report)
    if missed:
        out += ["", f"{len(missed)} failure(s):"]
        for o in missed:
            out.append(_describe(o))
    return "\n".join(out)


def _describe(o: Outcome) -> str:
    q = o.question
    kind = "QUOTED for unanswerable" if q.unanswerable else "MISS"
    lines = [f"- {kind} [{q.lang}] line {q.line}: {q.text}"]
    if not q.unanswerable:
        lines.append("    expected: " + " or ".join(f'{e.file} "{e.text}"' for e in q.evidence))
    if o.declined:
        lines.append("    returned: nothing (answered: not found)")
    for i, p in enumerate(o.answer.passages, 1):
        first = next((line for line in p.text.split("\n") if line.strip() and line != "…"), "")
        lines.append(f"    returned {i}: {p.file}:{p.start_line}-{p.end_line}  {scrub(first.strip())[:90]}")
    return "\n".join(lines)


def report_json(report: Report) -> dict:
    return {
        "set": report.name, "k": report.k,
        "slices": {name: {**asdict(m), "hit": {f"@{at}": v for at, v in m.hit.items()}}
                   for name, m in report.slices.items()},
        "failures": [{
            "question": o.question.text, "line": o.question.line, "lang": o.question.lang,
            "unanswerable": o.question.unanswerable,
            "expected": [asdict(e) for e in o.question.evidence],
            "answered": not o.declined,
            "returned": [{"file": p.file, "start_line": p.start_line, "end_line": p.end_line, "text": p.text}
                         for p in o.answer.passages],
        } for o in failures(report)],
    }
