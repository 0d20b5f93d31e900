"""The torch-free query path: same vectors and same answers as sentence-transformers,
no torch in a query process, and a safe fallback when the exported model is damaged."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from okdbot.build import build_index
from okdbot.chunk import chunk_note
from okdbot.config import load_settings
from okdbot.onnx_embed import DATA_FILE, MODEL_FILE, OnnxEncoder
from okdbot.retrieve import Retriever
from okdbot.runtime import make_query_encoder, query_path
from okdbot.index.reader import live_manifest

from .conftest import BUNDLED_NOTE, ROOT, run_cli, settings_for
from .test_answers import PARAPHRASES

QUESTIONS = [q for q, _ in PARAPHRASES] + [
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
def onnx_encoder(bundled_index):
    manifest = live_manifest(bundled_index.index_dir)
    record = manifest["query_model"]
    return OnnxEncoder(bundled_index.index_dir / record["path"], record)


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float((a * b).sum(axis=1).min())


def test_every_chunk_window_gets_the_same_vector(model, onnx_encoder):
    chunks = chunk_note("notes", "Day26.md", BUNDLED_NOTE.read_text(encoding="utf-8"))
    windows = [w for c in chunks for w in model.windows(c.embed_text)]
    assert len(windows) >= len(chunks) > 40
    assert _min_cosine(model.encode_documents(windows), onnx_encoder.encode(windows)) >= 0.9999


def test_a_hundred_questions_get_the_same_vectors(model, onnx_encoder):
    assert len(set(QUESTIONS)) == 100
    assert _min_cosine(model.encode_queries(QUESTIONS), onnx_encoder.encode_queries(QUESTIONS)) >= 0.9999


def test_a_hundred_questions_get_identical_top5_answers(bundled_index, model, analyzer, onnx_encoder):
    torch_side = Retriever(bundled_index.index_dir, bundled_index.retrieval, model, analyzer)
    onnx_side = Retriever(bundled_index.index_dir, bundled_index.retrieval, onnx_encoder, analyzer)

    def ranking(result):
        return (result.answered, [(p.file, p.start_line, p.end_line, [l.relevant for l in p.lines])
                                  for p in result.passages],
                [s.url for s in result.suggestions])

    answered = 0
    for question in QUESTIONS:
        expected, got = torch_side.search(question, 5), onnx_side.search(question, 5)
        assert ranking(got) == ranking(expected), question
        assert got.top_score == pytest.approx(expected.top_score, abs=1e-4)
        answered += expected.answered
    assert 30 < answered < 100  # the set has answerable and unanswerable questions


SYS_MODULES = textwrap.dedent("""
    import json, sys
    from okdbot.cli import main
    code = main(["query", "--index", sys.argv[1], "--json", sys.argv[2]])
    heavy = ["torch", "transformers", "sentence_transformers", "bm25s", "scipy", "kiwipiepy"]
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


@pytest.fixture
def copied_index(bundled_index, tmp_path):
    """A private copy of the bundled index (with its exported model) to damage."""
    shutil.copytree(bundled_index.index_dir.parent, tmp_path / "ws", ignore=shutil.ignore_patterns("*.py"))
    return tmp_path / "ws"


def _model_file(index_dir, name=MODEL_FILE):
    return index_dir / live_manifest(index_dir)["query_model"]["path"] / name


@pytest.mark.parametrize("damage", ["flip a byte", "delete"])
def test_a_damaged_export_falls_back_to_sentence_transformers_with_a_warning(copied_index, damage):
    if damage == "delete":
        _model_file(copied_index / "index").unlink()
    else:
        weights = _model_file(copied_index / "index", DATA_FILE)
        data = bytearray(weights.read_bytes())
        data[len(data) // 2] ^= 0xFF  # onnxruntime would load this and answer wrongly
        weights.write_bytes(bytes(data))
    settings = settings_for(copied_index)
    assert query_path(settings).startswith("sentence-transformers: ")
    proc = run_cli("query", "--json", "Skopeo가 뭐야?", cwd=copied_index)
    assert proc.returncode == 0, proc.stderr
    assert "Skopeo" in json.loads(proc.stdout)["passages"][0]["text"]
    assert "warning:" in proc.stderr and "using sentence-transformers" in proc.stderr
    assert ("damaged" if damage != "delete" else "cannot be read") in proc.stderr
    forced = run_cli("query", "Skopeo가 뭐야?", cwd=copied_index, env={"OKDBOT_BACKEND": "onnx"})
    assert forced.returncode != 0 and "model.backend is onnx" in forced.stderr
    assert len(forced.stderr.strip().splitlines()) == 1


def test_paths_can_be_forced_and_are_reported(bundled_index):
    assert query_path(bundled_index).startswith("onnx: ")
    torch_settings = load_settings(bundled_index.config_path, env={"OKDBOT_BACKEND": "torch"})
    assert query_path(torch_settings) == "sentence-transformers: model.backend is torch"
    assert type(make_query_encoder(torch_settings)).__name__ == "SentenceTransformerEmbedder"


def test_the_export_is_made_once_and_reused_until_damaged(workspace, model, analyzer, caplog):
    settings = settings_for(workspace)
    with caplog.at_level("INFO", logger="okdbot"):
        build_index(settings, lambda: model, analyzer=analyzer, progress=False)
    model_file = _model_file(workspace / "index")
    first = (model_file.stat().st_ino, model_file.stat().st_mtime_ns)
    note = workspace / "notes" / "Day26.md"
    note.write_text(note.read_text(encoding="utf-8") + "\n- Quay : 컨테이너 이미지 레지스트리\n", encoding="utf-8")
    calls = []
    report = build_index(settings, lambda: calls.append(1) or model, analyzer=analyzer, progress=False)
    assert report.embedded == 1
    assert _model_file(workspace / "index") == model_file
    assert (model_file.stat().st_ino, model_file.stat().st_mtime_ns) == first
    assert len(list((workspace / "index" / "models").iterdir())) == 1
    model_file.write_bytes(b"not a model")  # damaged: the next build heals it without re-embedding
    caplog.clear()
    with caplog.at_level("INFO", logger="okdbot"):
        report = build_index(settings, lambda: model, analyzer=analyzer, progress=False)
    assert report.embedded == 0 and "re-exporting" in caplog.text
    assert query_path(settings).startswith("onnx: ")


def test_an_export_that_disagrees_with_the_model_is_refused(model, tmp_path, monkeypatch):
    from okdbot import embed

    monkeypatch.setattr(embed, "PARITY_MIN_COSINE", 1.01)  # no export can pass: it must be refused
    with pytest.raises(embed.ModelError, match="disagrees"):
        embed.export_onnx(model, tmp_path / "export")


def test_the_export_is_fused_and_falls_back_to_the_plain_graph(model, tmp_path, monkeypatch):
    """The fused graph (one operator per attention, layer norm and GELU) is what queries run;
    when onnxruntime's optimizer fails, the plain graph is exported instead, just as exact."""
    import onnx

    from okdbot import embed

    def operators(folder):
        return {node.op_type for node in onnx.load(str(folder / MODEL_FILE), load_external_data=False).graph.node}

    fused = embed.export_onnx(model, tmp_path / "fused")
    assert fused["fused"] is True and fused["parity_min_cosine"] >= embed.PARITY_MIN_COSINE
    assert {"Attention", "SkipLayerNormalization"} <= operators(tmp_path / "fused")
    from onnxruntime.transformers import optimizer

    monkeypatch.setattr(optimizer, "optimize_model", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no")))
    plain = embed.export_onnx(model, tmp_path / "plain")
    assert plain["fused"] is False and plain["parity_min_cosine"] >= embed.PARITY_MIN_COSINE
    assert "Attention" not in operators(tmp_path / "plain")
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == sorted(
        [DATA_FILE, MODEL_FILE, "export.json", "tokenizer.json"])


def test_an_export_of_an_older_format_is_replaced_without_re_embedding(workspace, model, analyzer, monkeypatch):
    from okdbot import build, embed

    settings = settings_for(workspace)
    build_index(settings, lambda: model, analyzer=analyzer, progress=False)
    old = live_manifest(workspace / "index")["query_model"]["path"]
    monkeypatch.setattr(embed, "EXPORT_FORMAT", embed.EXPORT_FORMAT + 1)
    monkeypatch.setattr(build, "EXPORT_FORMAT", embed.EXPORT_FORMAT)
    report = build_index(settings, lambda: model, analyzer=analyzer, progress=False)
    new = live_manifest(workspace / "index")["query_model"]
    assert report.embedded == 0 and new["path"] != old and new["format"] == embed.EXPORT_FORMAT
    assert query_path(settings).startswith(f"onnx: {workspace / 'index' / new['path']}")
    assert (workspace / "index" / old).exists()  # the generation before still names it (readers mid-switch)
    note = workspace / "notes" / "Day26.md"
    note.write_text(note.read_text(encoding="utf-8") + "\n- Quay : 컨테이너 이미지 레지스트리\n", encoding="utf-8")
    build_index(settings, lambda: model, analyzer=analyzer, progress=False)
    assert not (workspace / "index" / old).exists()  # no kept generation names it any more
    assert (workspace / "index" / new["path"]).exists()


def _env():
    import os

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for key in ("OKDBOT_CONFIG", "OKDBOT_INDEX", "OKDBOT_BACKEND"):
        env.pop(key, None)
    return env


PREFETCH = textwrap.dedent("""
    import json, os, sys
    from okdbot import lexical
    question, break_child = sys.argv[1], sys.argv[2] == "broken"
    parent, real = os.getpid(), lexical._new_kiwi

    def new_kiwi():
        if break_child and os.getpid() != parent:
            raise RuntimeError("no Kiwi in the child")
        return real()

    lexical._new_kiwi = new_kiwi
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
