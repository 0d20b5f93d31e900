"""Retrieval with the real model over the bundled note: questions asked the way
people ask, in Korean, without naming the component they are about."""

from __future__ import annotations

import pytest


from okdbot.answer import quote_lines, to_text
from okdbot.errors import BadQuestion
from okdbot.retrieve import Retriever

from .conftest import BUNDLED_NOTE, indexed_copy

# Paraphrases that share no content word with the line that answers them (the test checks that),
# in Korean and in English about the Korean note: only the multilingual dense side can find them.
# (question, the component line one of the first three passages must quote)
PARAPHRASES = [
    ("쿠베 위에서 VM 띄우고 싶으면 뭐 써?", "KubeVirt :"),
    ("which utility moves container images from one registry to another?", "Skopeo :"),
    ("what do we use to draw charts and panels from collected numbers?", "Grafana :"),
    ("how can I run virtual machines next to pods?", "KubeVirt :"),
]


def _answer_line(expected: str) -> str:
    return next(line for line in BUNDLED_NOTE.read_text(encoding="utf-8").split("\n") if line.startswith("- " + expected))


@pytest.mark.parametrize("question, expected", PARAPHRASES, ids=[q[:24] for q, _ in PARAPHRASES])
def test_a_paraphrase_sharing_no_word_with_its_answer_is_found(retriever, analyzer, question, expected):
    assert not set(analyzer.tokens(question)) & set(analyzer.tokens(_answer_line(expected)))
    result = retriever.search(question, k=3)
    assert result.answered, question
    assert any(expected in line.text for p in result.passages for line in p.lines), question


def test_a_section_title_finds_the_section_as_one_merged_passage(retriever):
    result = retriever.search("FCOS 주요기능")
    top = result.passages[0]
    assert top.heading.endswith("FCOS(Fedora CoreOS) > 주요기능")
    assert (top.start_line, top.end_line) == (57, 62)
    # adjacent hits of one section are merged, never repeated
    spans = [(p.file, p.start_line, p.end_line) for p in result.passages]
    for i, a in enumerate(spans):
        for b in spans[i + 1:]:
            assert a[0] != b[0] or a[2] < b[1] - 1 or b[2] < a[1] - 1, spans


@pytest.mark.parametrize("question", ["오늘 점심 메뉴 추천해줘", "What is the capital of France?", "???!!!", "-- ?"])
def test_a_question_the_notes_do_not_cover_is_declined_with_nearest_sections(retriever, question):
    result = retriever.search(question)
    assert not result.answered and not result.passages
    assert 1 <= len(result.suggestions) <= 3
    assert ("찾지 못했습니다" if result.korean else "couldn't find") in to_text(result)


def test_long_passages_are_trimmed_to_relevant_lines(bundled_index, tmp_path, model, analyzer):
    tools = ["- 모니터링 도구 모음"] + [f"    - 도구{i} : 평범한 설명 {i}" for i in range(12)]
    tools[7] = "    - Zabbix : 서버 상태를 감시하는 도구"
    settings = indexed_copy(bundled_index, tmp_path, model, analyzer, {"Tools.md": "# 도구\n" + "\n".join(tools) + "\n"})
    top = Retriever(settings.index_dir, settings.retrieval, model, analyzer).search("Zabbix가 뭐야?").passages[0]
    assert top.file == "Tools.md" and top.end_line - top.start_line + 1 == len(tools)
    shown = quote_lines(top, 3)
    assert any("Zabbix" in line for line in shown)
    assert "…" in shown and len([s for s in shown if s != "…"]) <= 3


@pytest.mark.parametrize("question, definition", [
    ("Podman이 뭐야?", "- Podman :"),  # also named in FCOS's list of container tools
    ("What is Prometheus?", "- Prometheus :"),  # also named by six monitoring components
    ("Grafana가 뭐야?", "- Grafana :"),  # also a bare "- Grafana" line under monitoring
    ("what is cri-o", "- Cri-O :"),  # also "Cri-O 컨테이너 엔진 내장" under FCOS
    ("Prometheus Operator는 뭐야?", "- Prometheus Operator :"),  # not the definition of Prometheus alone
])
def test_asking_what_something_is_quotes_its_definition_first(retriever, question, definition):
    first = retriever.search(question).passages[0]
    assert first.lines[0].text.startswith(definition), [line.text for line in first.lines]


@pytest.fixture(scope="module")
def metallb(tmp_path_factory, bundled_index, model, analyzer):
    """The bundled note plus a MetalLB note, indexed once for the module (read-only)."""
    metallb = "\n".join([
        "# Day42", "## MetalLB", "### MetalLB란?", "- 베어메탈 클러스터에 로드 밸런서 서비스를 제공하는 도구", "",
        "### MetalLB 설치", "- MetalLB 설치: kubectl apply로 MetalLB manifest를 적용해서 MetalLB를 띄운다",
        "- MetalLB 주소 풀은 ConfigMap에 적고 MetalLB speaker가 알린다", "",
        "### MetalLB 모드", "- MetalLB L2 모드와 BGP 모드: MetalLB가 주소를 알리는 두 방법", ""])
    return indexed_copy(bundled_index, tmp_path_factory.mktemp("metallb"), model, analyzer, {"Day42.md": metallb})


def test_a_section_titled_with_the_term_defines_it(metallb, model, analyzer):
    retriever = Retriever(metallb.index_dir, metallb.retrieval, model, analyzer)
    assert retriever.search("what is MetalLB").passages[0].heading.endswith("MetalLB > MetalLB란?")


@pytest.mark.parametrize("question", ["What is MetalLB?", "MetalLB가 뭐야?", "MetalLB 설치는?", "Skopeo가 뭐야?"])
def test_asking_for_more_passages_never_changes_the_first_ones(metallb, model, analyzer, question):
    retriever = Retriever(metallb.index_dir, metallb.retrieval, model, analyzer)
    shown = {k: [(p.file, p.start_line, p.end_line) for p in retriever.search(question, k=k).passages]
             for k in (1, 2, 3, 5, 10)}
    for k, passages in shown.items():
        assert passages == shown[10][:k], (k, passages, shown[10])


@pytest.mark.parametrize("earlier, follow_up, expected", [
    ("Prometheus가 뭐야?", "그거 관리하는 Operator는?", ("Prometheus Operator :",)),
    ("FCOS가 뭐야?", "업그레이드는 어떻게 해?", ("Container Linux의 자동화된 원격 업그레이드", "rpm-ostree 시스템을 사용한")),
])
def test_a_follow_up_is_read_with_the_question_before_it(retriever, earlier, follow_up, expected):
    def top_lines(result):
        return [line.text for line in result.passages[0].lines] if result.passages else []

    result = retriever.search(follow_up, context=earlier)
    assert result.question == follow_up and result.context == earlier
    assert any(e in line for e in expected for line in top_lines(result)), top_lines(result)
    assert top_lines(retriever.search(follow_up)) != top_lines(result)  # read alone, another passage comes first


def test_context_never_answers_a_follow_up_the_notes_do_not_cover(retriever):
    result = retriever.search("오늘 점심 메뉴 추천해줘", context="Skopeo가 뭐야?")
    assert not result.answered and not result.passages


@pytest.mark.parametrize("question", ["", "   \n", "질" * 1001])
def test_bad_questions_raise(retriever, question):
    with pytest.raises(BadQuestion):
        retriever.search(question)


def test_a_long_conversation_is_read_from_its_last_words_never_from_inside_one():
    from okdbot.retrieve import CONTEXT_CHARS, _recent_words

    words = " ".join(f"word{i:03d}" for i in range(100))
    recent = _recent_words(words)
    assert len(recent) <= CONTEXT_CHARS and words.endswith(recent) and recent.startswith("word")
    assert _recent_words("  짧은   대화  ") == "짧은 대화"


def test_a_terminal_answer_shows_escape_codes_from_notes_without_running_them():
    """A note (perhaps from a remote others edit) can hold escape sequences that set the
    terminal's title, clear it or write its clipboard: the terminal answer shows them."""
    from okdbot.answer import to_text
    from okdbot.results import Line, Passage, Result

    line = "- Escfoo : x \x1b]0;PWNED\x07 \x1b[2J\x1b[31mred\x1b[0m \x9b2J \u202eevil"
    passage = Passage(rank=1, score=1.0, source="n", file="e.md", heading="Esc \x1b[2J > Escfoo", start_line=3,
                      end_line=3, url="https://example.org/e.md#L3", lines=[Line(3, line, True)])
    shown = to_text(Result("Escfoo가 뭐야?", True, [passage], korean=True))
    assert not any(ch in shown for ch in "\x1b\x07\x9b\u202e"), repr(shown)
    assert "\\x1b[2J" in shown and "red" in shown and "Escfoo" in shown


def test_a_conversation_without_spaces_is_kept_not_thrown_away():
    from okdbot.retrieve import CONTEXT_CHARS, _recent_words

    assert _recent_words("가" * 400) == "가" * CONTEXT_CHARS
