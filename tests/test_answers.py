"""Retrieval with the real model over the bundled note: questions asked the way
people ask, in Korean, without naming the component they are about."""

from __future__ import annotations

import pytest

from dataclasses import replace

from okdbot.answer import quote_lines, to_text
from okdbot.errors import BadQuestion
from okdbot.retrieve import Retriever

from .conftest import indexed_notes

# (question, the component line the first passage must quote)
PARAPHRASES = [
    ("컨테이너 이미지를 저장소 간에 복사하는 도구는?", "Skopeo :"),
    ("데몬 없이 루트 권한 없이도 컨테이너를 다루는 도구가 뭐야?", "Podman :"),
    ("컨테이너 이미지를 빌드하는 명령줄 도구 알려줘", "Buildah :"),
    ("가벼운 컨테이너 런타임은 뭐야?", "Cri-O :"),
    ("시스템 모니터링하고 경고 보내주는 오픈소스 도구는?", "Prometheus :"),
    ("데이터를 그래프랑 대시보드로 시각화하는 플랫폼은?", "Grafana :"),
    ("분산형 검색 및 분석 엔진이 뭐였지?", "Elastic Search :"),
    ("여러 소스에서 로그 데이터를 모으는 소프트웨어는?", "FluentD :"),
    ("지속적 통합이랑 지속적 배포 도구는 뭐야?", "Jenkins :"),
    ("쿠버네티스 환경의 CI/CD 프레임워크는?", "Tekton :"),
    ("서비스 간 통신과 보안, 관측성을 제공하는 서비스 메시 플랫폼", "Istio :"),
    ("서비스 메시를 관리하는 웹 기반 플랫폼은?", "Kiali :"),
    ("분산 시스템에서 트랜잭션을 추적하는 시스템", "Jaeger :"),
    ("서버리스 애플리케이션을 구축하고 배포하는 플랫폼", "Knative :"),
    ("이벤트 기반으로 자동 스케일링을 해주는 프로젝트는?", "Keda :"),
    ("소스 코드를 컨테이너 이미지로 변환해주는 도구", "S2i :"),
    ("대규모 분산 스토리지 시스템은 뭐가 있어?", "Ceph :"),
    ("클라우드 네이티브 환경에서 스토리지를 관리하는 프로젝트", "Rook :"),
    ("네트워크 가상화를 지원하는 가상 스위치", "OVS :"),
    ("클러스터에서 가상 머신을 실행하고 관리하려면 뭘 써?", "KubeVirt :"),
    ("알람을 관리하고 라우팅하는 도구는?", "AlertManager :"),
    ("호스트 머신의 리소스 사용량을 수집해서 보내는 에이전트", "Node-export"),
]


@pytest.mark.parametrize("question, expected", PARAPHRASES, ids=[e for _, e in PARAPHRASES])
def test_paraphrased_korean_question_quotes_the_component(retriever, question, expected):
    result = retriever.search(question)
    assert result.answered, question
    top = result.passages[0]
    assert any(expected in line.text for line in top.lines), [l.text for l in top.lines]
    assert top.url.endswith(f"Day26.md?plain=1#L{top.start_line}-L{top.end_line}")


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


def test_unanswerable_question_is_not_answered(retriever):
    result = retriever.search("Azure 가상 네트워크 피어링은 어떻게 설정해?")
    assert not result.answered and not result.passages
    assert 1 <= len(result.suggestions) <= 3
    assert "찾지 못했습니다" in to_text(result)


def test_long_passages_are_trimmed_to_relevant_lines(retriever):
    result = retriever.search("OKD4 모니터링 구성요소 AlertManager")
    top = result.passages[0]
    shown = quote_lines(top, 3)
    assert any("AlertManager" in line for line in shown)
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
    undefined = Retriever(retriever.index_dir, replace(retriever.settings, definition_boost=0.0),
                          retriever.encoder, retriever.analyzer)
    if question != "Prometheus Operator는 뭐야?":  # without the boost, a mere mention comes first
        assert not undefined.search(question).passages[0].lines[0].text.startswith(definition)


def test_a_section_titled_with_the_term_defines_it(tmp_path, model, analyzer):
    metallb = "\n".join([
        "# Day42", "## MetalLB", "### MetalLB란?", "- 베어메탈 클러스터에 로드 밸런서 서비스를 제공하는 도구", "",
        "### MetalLB 설치", "- MetalLB 설치: kubectl apply로 MetalLB manifest를 적용해서 MetalLB를 띄운다",
        "- MetalLB 주소 풀은 ConfigMap에 적고 MetalLB speaker가 알린다", ""])
    settings = indexed_notes(tmp_path, model, analyzer, {"Day42.md": metallb})
    result = Retriever(settings.index_dir, settings.retrieval, model, analyzer).search("what is MetalLB")
    assert result.passages[0].heading.endswith("MetalLB > MetalLB란?"), result.passages[0].heading


@pytest.mark.parametrize("earlier, follow_up, expected", [
    ("Prometheus가 뭐야?", "그거 관리하는 Operator는?", "Prometheus Operator :"),
    ("FCOS가 뭐야?", "업그레이드는 어떻게 해?", "Container Linux의 자동화된 원격 업그레이드"),
])
def test_a_follow_up_is_read_with_the_question_before_it(retriever, earlier, follow_up, expected):
    def top_lines(result):
        return [line.text for line in result.passages[0].lines] if result.passages else []

    assert not any(expected in line for line in top_lines(retriever.search(follow_up)))  # alone: another passage
    result = retriever.search(follow_up, context=earlier)
    assert result.question == follow_up and result.context == earlier
    assert any(expected in line for line in top_lines(result)), top_lines(result)


def test_context_never_answers_a_follow_up_the_notes_do_not_cover(retriever):
    result = retriever.search("Azure 가상 네트워크 피어링은?", context="Skopeo가 뭐야?")
    assert not result.answered and not result.passages


@pytest.mark.parametrize("question", ["", "   \n", "질" * 1001])
def test_bad_questions_raise(retriever, question):
    with pytest.raises(BadQuestion):
        retriever.search(question)
