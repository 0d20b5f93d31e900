"""Answer quality: `okdbot eval` metrics, question-set files, synonyms, and the
quality gate of issue 4 over the bundled note (real model, real index)."""

from __future__ import annotations

import copy
import json
import re
import shutil
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from okdbot.config import ModelSettings, load_settings
from okdbot.errors import ConfigError, EvalError
from okdbot.evaluate import OkdbotSystem, failures, format_report, load_questions, report_json, run
from okdbot.lexical import Analyzer, LexicalIndex
from okdbot.retrieve import Retriever
from okdbot.synonyms import load_synonyms

from .conftest import BUNDLED_NOTE, ROOT, SHARED_CORPORA

NOTE_TEXT = BUNDLED_NOTE.read_text(encoding="utf-8")


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def _repo_retriever(bundled_index, model):
    """The bundled index searched with the repository's okdbot.yaml retrieval settings."""
    settings = load_settings(ROOT / "okdbot.yaml", env={})
    return Retriever(bundled_index.index_dir, settings.retrieval, model, Analyzer().load())


# ---------------------------------------------------------------- metrics

TINY = """
    questions:
      - q: "Skopeo가 뭐야?"
        evidence: {file: Day26.md, text: "Skopeo :"}
      - q: "what is Skopeo?"
        evidence: {file: Day26.md, text: "Skopeo :"}
      - q: "Skopeo가 뭐야?"            # a known miss: the evidence names another line
        evidence: {file: Day26.md, text: "Kiali :"}
      - q: "오늘 점심 메뉴 추천해줘"   # answerable on paper, declined in fact
        evidence: {file: Day26.md, text: "OVS :"}
      - q: "오늘 점심 메뉴 추천해줘"
        unanswerable: true
      - q: "Tekton이 뭐야?"            # marked unanswerable, but the note answers it
        unanswerable: true
"""


def test_metrics_of_a_tiny_question_set(tmp_path, retriever):
    report = run(OkdbotSystem(retriever), load_questions(_write(tmp_path, "tiny.yaml", TINY)), k=3)
    overall = report.slices["all"]
    assert (overall.questions, overall.answerable, overall.unanswerable) == (6, 4, 2)
    assert overall.hit == {1: 0.5, 3: 0.5, 5: None}  # 2 of 4 answerable hit; @5 is beyond k=3
    assert overall.mrr == 0.5
    # declined: the lunch question twice (once answerable, once not)
    assert overall.declined == 2 and overall.nf_precision == 0.5 and overall.nf_recall == 0.5
    assert overall.quoted_unanswerable == 1
    assert report.slices["en"].answerable == 1 and report.slices["en"].hit[1] == 1.0
    assert report.slices["ko"].answerable == 3


def test_a_miss_is_listed_with_what_was_returned(tmp_path, retriever):
    report = run(OkdbotSystem(retriever), load_questions(_write(tmp_path, "tiny.yaml", TINY)), k=3)
    listed = failures(report)
    assert [(o.question.line, o.question.unanswerable) for o in listed] == [(6, False), (8, False), (12, True)]
    miss = listed[0]
    assert miss.answer.answered and "Skopeo :" in miss.answer.passages[0].text
    text = format_report(report)
    assert "MISS [ko] line 6: Skopeo가 뭐야?" in text and 'expected: Day26.md "Kiali :"' in text
    assert re.search(r"returned 1: Day26\.md:29-29 +- Skopeo :", text)
    assert "MISS [ko] line 8" in text and "returned: nothing (answered: not found)" in text
    assert "QUOTED for unanswerable [ko] line 12: Tekton이 뭐야?" in text
    data = report_json(report)
    assert data["slices"]["all"]["hit"] == {"@1": 0.5, "@3": 0.5, "@5": None}
    assert [f["line"] for f in data["failures"]] == [6, 8, 12]
    assert "Skopeo :" in data["failures"][0]["returned"][0]["text"]


@pytest.mark.parametrize("text, needle", [
    ("questions:\n  - q: [broken\n", "malformed YAML"),
    ("questions:\n  - q: hi\n", "bad.yaml:2: give 'evidence"),
    ("questions:\n  - q: hi\n    evidence: {file: Day26.md}\n", "bad.yaml:3: evidence needs both"),
    ("questions:\n  - q: hi\n    unanswerable: true\n    colour: red\n", "bad.yaml:4: unknown key 'colour'"),
    ("questions:\n  - q: hi\n    unanswerable: yes please\n", "bad.yaml:3: 'unanswerable' must be a true/false"),
    ("questions:\n  - q: hi\n    lang: fr\n    unanswerable: true\n", "bad.yaml:3: 'lang' must be ko or en"),
    ("questions: []\n", "bad.yaml:1: 'questions' must be a non-empty list"),
    ("name: x\n", "no 'questions:' list"),
    ("questions:\n  - q: " + "x" * 1001 + "\n    unanswerable: true\n", "bad.yaml:2: the question is 1001 characters"),
    ("questions:\n  - q: \"\\u200b\\u200b\"\n    unanswerable: true\n", "bad.yaml:2: 'q' is empty"),
    ("questions:\n  - ? [q]\n    : hi\n", "bad.yaml:2: a key in a question must be a plain name"),
])
def test_bad_question_files_are_one_line_errors_naming_the_line(tmp_path, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(EvalError) as err:
        load_questions(path)
    assert needle in str(err.value) and "\n" not in str(err.value)


# ---------------------------------------------------------------- synonyms

QUESTION = "미러링은 뭘로 해?"  # the note says 복사 (copy), never 미러링


def _lexical_top(settings, model, analyzer, question):
    """The first passage's lines with the dense side off: what the words alone find."""
    retriever = Retriever(settings.index_dir, replace(settings.retrieval, dense_weight=0.0), model, analyzer)
    retriever.settings = replace(retriever.settings, dense_weight=0.0)
    result = retriever.search(question)
    return [line.text for line in result.passages[0].lines] if result.passages else []


def test_the_synonyms_file_is_read_at_build_and_travels_with_the_index(bundled_index, tmp_path, model, analyzer):
    from okdbot.build import build_index
    from okdbot.freshness import check_freshness

    from .conftest import copy_of_bundled, settings_for

    synonyms = _write(tmp_path, "synonyms.yaml", "- [image, 이미지]\n")
    settings = settings_for(copy_of_bundled(bundled_index, tmp_path / "a", analyzer))
    settings = replace(settings, retrieval=replace(settings.retrieval, synonyms=synonyms))
    build_index(settings, lambda: model, analyzer=analyzer, progress=False)
    assert not any("Skopeo :" in line for line in _lexical_top(settings, model, analyzer, QUESTION))
    synonyms.write_text("- [image, 이미지]\n- [mirroring, 미러링, 복사]\n", encoding="utf-8")
    assert "the synonyms file changed" in check_freshness(settings).settings  # --watch and doctor see it
    build_index(settings, lambda: model, analyzer=analyzer, progress=False)
    assert any("Skopeo :" in line for line in _lexical_top(settings, model, analyzer, QUESTION))
    synonyms.write_text("- [미러링]\n", encoding="utf-8")  # a mistake: the build stops before any work
    with pytest.raises(ConfigError, match="synonyms.yaml:1: a synonym group needs at least two terms"):
        build_index(settings, lambda: model, analyzer=analyzer, progress=False)
    assert any("Skopeo :" in line for line in _lexical_top(settings, model, analyzer, QUESTION))


def test_glosses_the_notes_write_join_the_glossary(bundled_index, tmp_path, model, analyzer):
    from okdbot.index.reader import live_manifest

    from .conftest import indexed_copy

    settings = indexed_copy(bundled_index, tmp_path, model, analyzer,
                            {"Day9.md": "# Day9\n- 가용성 높이려면 SPOF(Single Point Of Failure)를 없앤다\n"
                                        "- 모든 지표(metric)는 스크레이핑으로 모은다\n"})
    glossary = live_manifest(settings.index_dir)["glossary"]
    mined = [g for g in glossary["groups"] if len(glossary["groups"]) - glossary["mined"] <= glossary["groups"].index(g)]
    assert ["SPOF", "Single Point Of Failure"] in mined and ["지표", "metric"] in mined
    top = _lexical_top(settings, model, analyzer, "what is a single point of failure")
    assert any("SPOF" in line for line in top), top


def test_a_phrase_synonym_matches_only_where_all_its_words_are(tmp_path, analyzer):
    groups = load_synonyms(_write(tmp_path, "s.yaml", "- [autoscaling, 자동 스케일링]\n"))
    analyzer = Analyzer(synonyms=groups).load()
    concepts = analyzer.concepts("autoscaling 프로젝트")
    assert frozenset({tuple(analyzer.tokens("autoscaling")), ("자동", "스케일링")}) in concepts
    index = LexicalIndex.build([["자동", "스케일링", "이벤트"], ["자동", "업그레이드"], ["스케일링"], ["프로젝트"]])
    _, coverage = index.score([c for c in concepts if ("자동", "스케일링") in c])
    assert list(np.round(coverage, 3)) == [1.0, 0.0, 0.0, 0.0]


def test_korean_question_words_reach_their_synonyms_too(tmp_path):
    groups = load_synonyms(_write(tmp_path, "s.yaml", "- [registry, 레지스트리, 저장소]\n"))
    concepts = Analyzer(synonyms=groups).load().concepts("레지스트리로 옮기려면")
    assert frozenset({("registri",), ("레지스트리",), ("저장소",)}) in concepts


@pytest.mark.parametrize("text, needle", [
    ("- [image, 이미지\n", "s.yaml:2: malformed YAML"),
    ("image: 이미지\n", "s.yaml:1: the synonyms file must be a list of groups"),
    ("- [image, 이미지]\n- [registry]\n", "s.yaml:2: a synonym group needs at least two terms"),
    ("- [image, 이미지]\n- image\n", "s.yaml:2: a synonym group must be a list of terms"),
    ("- [image, [이미지]]\n", "s.yaml:1: each synonym must be a non-empty word"),
])
def test_malformed_synonyms_file_is_one_line_naming_the_line(tmp_path, text, needle):
    with pytest.raises(ConfigError) as err:
        load_synonyms(_write(tmp_path, "s.yaml", text))
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_a_synonym_without_searchable_words_is_named_with_its_line(tmp_path):
    groups = load_synonyms(_write(tmp_path, "s.yaml", "- [image, 이미지]\n- [the, 은]\n"))
    with pytest.raises(ConfigError) as err:
        Analyzer(synonyms=groups).load()
    assert "s.yaml:2" in str(err.value) and "'the'" in str(err.value)


def test_missing_synonyms_file_is_a_config_error(tmp_path):
    from okdbot.glossary import read_glossary_file

    _write(tmp_path, "okdbot.yaml", "retrieval:\n  synonyms: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="nowhere.yaml not found"):
        read_glossary_file(load_settings(tmp_path / "okdbot.yaml", env={}).retrieval.synonyms)


def test_the_shipped_glossary_is_the_default_and_serves_no_single_question():
    """A glossary group that only one question of our own sets uses was written for that
    question: the shipped glossary has none (issue 11)."""
    from okdbot.synonyms import DEFAULT_FILE

    assert load_settings(ROOT / "okdbot.yaml", env={}).retrieval.synonyms is None  # the shipped one
    groups = load_synonyms(DEFAULT_FILE)
    analyzer = Analyzer(synonyms=groups).load()  # every term has a searchable word
    assert len(groups) > 100
    questions = [q.text + " " + q.after for name in ("okd-note", "okd-follow-ups", "metanet-notes")
                 for q in load_questions(ROOT / "eval" / f"{name}.yaml").questions]
    tokens = [set(analyzer.tokens(q)) for q in questions]
    for group in groups:
        phrases = [tuple(analyzer.tokens(t)) for t in group.terms]
        users = sum(1 for held in tokens if any(all(t in held for t in p) for p in phrases))
        assert users != 1, (group.where, group.terms)


def test_unknown_long_terms_also_match_the_notes_misspellings():
    index = LexicalIndex.build([["queier", "thano"], ["fault"], ["docker"]])
    widened = index.with_misspellings([frozenset({("querier",)}), frozenset({("vault",)}),
                                       frozenset({("dokcer",)}), frozenset({("thano",)})])
    assert widened == [frozenset({("querier",), ("queier",)}), frozenset({("vault",)}),  # too short to guess
                       frozenset({("dokcer",), ("docker",)}), frozenset({("thano",)})]


def test_a_question_reaches_a_component_the_note_misspells(bundled_index, model):
    result = _repo_retriever(bundled_index, model).search("what is thanos querier")  # the note: "Thanos Queier"
    assert result.answered and "Thanos Queier" in result.passages[0].lines[0].text


# ---------------------------------------------------------------- passages

LEAD_NOTE = """# Day12

## 디스크 사용량 확인

**디스크의 남은 공간 측정**
- `df [옵션] [파일시스템]`
  - -h 블록의 크기를 알기 쉬운 형태로 보여줌

**디스크 사용량 측정**
- `du [옵션] 디렉토리명`
"""


def test_a_bold_lead_in_line_brings_the_block_it_introduces(tmp_path, model, analyzer):
    from okdbot.build import build_index

    from .conftest import settings_for, write_config

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "Day12.md").write_text(LEAD_NOTE, encoding="utf-8")
    write_config(tmp_path)
    settings = settings_for(tmp_path)
    build_index(settings, lambda: model, analyzer=analyzer, progress=False)
    result = Retriever(settings.index_dir, settings.retrieval, model, analyzer).search("디스크 남은 공간 확인하는 명령어")
    top = result.passages[0]
    assert [line.text for line in top.lines][:2] == ["**디스크의 남은 공간 측정**", "- `df [옵션] [파일시스템]`"]
    assert (top.start_line, top.end_line) == (5, 7)


# ---------------------------------------------------------------- models

def test_configured_prompts_are_applied_to_queries_and_documents(minilm):
    model = minilm
    prompted = copy.copy(model)
    prompted.settings = ModelSettings(query_prompt="query: ", document_prompt="passage: ")
    assert np.allclose(prompted.encode_queries(["Skopeo"]), model.encode_queries(["query: Skopeo"]), atol=1e-5)
    assert np.allclose(prompted.encode_documents(["Skopeo"]), model.encode_documents(["passage: Skopeo"]), atol=1e-5)
    assert not np.allclose(prompted.encode_queries(["Skopeo"]), model.encode_queries(["Skopeo"]), atol=1e-3)


# ---------------------------------------------------------------- the question sets

def _component(evidence_text: str) -> str | None:
    """"Skopeo :" → "Skopeo": the component a component-line evidence names."""
    m = re.fullmatch(r"([A-Za-z][\w .-]*?)\s*:", evidence_text.strip())
    return m.group(1) if m else None


def test_okd_note_set_has_the_shape_the_issue_asks_for():
    questions = load_questions(ROOT / "eval" / "okd-note.yaml").questions
    assert len(questions) >= 80 and sum(q.unanswerable for q in questions) >= 15
    for lang in ("ko", "en"):
        answerable = [q for q in questions if q.lang == lang and not q.unanswerable]
        assert answerable and sum(q.paraphrase for q in answerable) * 2 >= len(answerable), lang
    for q in questions:
        for e in q.evidence:
            assert e.text in NOTE_TEXT, (q.line, e)
            name = _component(e.text)
            if q.paraphrase and name:
                assert name.lower() not in q.text.lower(), (q.line, name)


def test_metanet_set_evidence_is_in_the_notes():
    questions = load_questions(ROOT / "eval" / "metanet-notes.yaml").questions
    assert len(questions) >= 40 and {q.lang for q in questions} == {"ko", "en"}
    docs = SHARED_CORPORA / "metanet-notes" / "docs"
    if not docs.is_dir():
        pytest.skip("../shared/corpora is not on this machine")
    for q in questions:
        for e in q.evidence:
            assert e.text in (docs / e.file).read_text(encoding="utf-8"), (q.line, e)


# ---------------------------------------------------------------- the quality gate

def test_quality_gate_on_the_bundled_note(bundled_index, model):
    """The older own set (written before the chat sets): hit@3 ≥ 0.95 in each language, MRR ≥ 0.9,
    no answerable question declined and every decline right. The decision is calibrated on the
    chat dev set to decline few answerable questions: most of this set's unanswerable ones are
    quoted with their nearest passage (docs/quality.md)."""
    report = run(OkdbotSystem(_repo_retriever(bundled_index, model)), load_questions(ROOT / "eval" / "okd-note.yaml"))
    s = report.slices
    assert s["ko"].hit[3] >= 0.95 and s["en"].hit[3] >= 0.95, format_report(report)
    assert s["all"].mrr >= 0.9 and s["all"].declined_answerable == 0, format_report(report)
    assert s["all"].nf_precision >= 0.9, format_report(report)


class _FollowUpAlone(OkdbotSystem):
    """okdbot reading each follow-up on its own, as if it were a new question."""

    def search(self, question, k, after=""):
        return super().search(question, k)


def test_follow_ups_are_answered_from_the_conversation(bundled_index, model):
    questions = load_questions(ROOT / "eval" / "okd-follow-ups.yaml")
    assert all(q.after for q in questions.questions) and len(questions.questions) >= 20
    for q in questions.questions:
        assert all(e.text in NOTE_TEXT for e in q.evidence), (q.line, q.evidence)
    retriever = _repo_retriever(bundled_index, model)
    read_with = run(OkdbotSystem(retriever), questions).slices["all"]
    alone = run(_FollowUpAlone(retriever), questions).slices["all"]
    assert read_with.hit[1] >= 0.9 and read_with.hit[1] > alone.hit[1], (read_with, alone)
    assert read_with.nf_precision >= 0.9 and read_with.declined_answerable == 0, read_with


# ---------------------------------------------------------------- the command

def test_eval_command_prints_json_and_fails_fast_on_a_bad_file(tmp_path, okdbot_cli):
    shutil.copy(ROOT / "okdbot.yaml", tmp_path / "okdbot.yaml")
    shutil.copytree(ROOT / "corpus", tmp_path / "corpus")
    bad = _write(tmp_path, "bad.yaml", "questions:\n  - q: hi\n")
    proc = okdbot_cli("eval", str(bad), cwd=tmp_path)
    assert proc.returncode == 2 and "bad.yaml:2" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "index").exists()  # failed before building or loading anything
    tiny = _write(tmp_path, "tiny.yaml", TINY)
    proc = okdbot_cli("eval", str(tiny), "--json", "-k", "3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["k"] == 3 and data["slices"]["all"]["questions"] == 6
    assert [f["line"] for f in data["failures"]] == [6, 8, 12]
