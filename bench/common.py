"""Helpers shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT.parent / "shared" / "corpora"
METANET = CORPORA / "metanet-notes" / "docs"
METANET_URL = "https://github.com/JoEunSae/Metanet-Internship/blob/main/docs/"
OKD_IO = CORPORA / "okd-io"
OKD_IO_URL = "https://github.com/okd-project/okd.io/blob/main/"
# corpus → (notes folder, link base); question files name their evidence relative to the folder
CORPUS = {"okd-note": (ROOT / "corpus", METANET_URL), "okd-io": (OKD_IO, OKD_IO_URL), "metanet": (METANET, METANET_URL)}
# question set → corpus; the chat sets were written blind to okdbot (eval/chat/), the others are older
QUESTION_SETS = {
    "okd-note": "okd-note", "okd-follow-ups": "okd-note", "metanet-notes": "metanet",
    "chat/okd-note-chat-dev": "okd-note", "chat/okd-io-chat-dev": "okd-io", "chat/metanet-chat-dev": "metanet",
}
# the holdout that is still unread: the third one, written blind on 2026-11-30 after the second was
# reported, and frozen (eval/chat/HOLDOUT3.sha256) before any further change. It is kept for the next
# change to retrieval (a stronger model, a reranker): run --holdout once, after that change.
HOLDOUT_SETS = {"chat/okd-note-chat-holdout3": "okd-note", "chat/okd-io-chat-holdout3": "okd-io",
                "chat/metanet-chat-holdout3": "metanet"}
HOLDOUT_DIGESTS = "HOLDOUT3.sha256"
# holdouts already reported once (the first on 2026-11-29, the second on 2026-11-30, with
# HOLDOUT.sha256 and HOLDOUT2.sha256): usable for diagnostics (bench/limits.py), never for tuning
RETIRED_PARTS = ("holdout", "holdout2")


def okdbot_index(corpus: str, cache: Path, **settings_overrides):
    """Settings of an okdbot index over `corpus` (okdbot.yaml's settings, the corpus as its
    one source), built or brought up to date under `cache`; None when the notes are absent."""
    from dataclasses import replace

    from okdbot.build import build_index
    from okdbot.config import load_settings

    notes, url = CORPUS[corpus]
    if not notes.is_dir():
        print(f"skipping {corpus}: {notes} is not on this machine", file=sys.stderr)
        return None
    settings = load_settings(ROOT / "okdbot.yaml", corpus=notes, source_url=url, index=cache / f"okdbot-{corpus}",
                             env={})
    if settings_overrides:
        settings = replace(settings, retrieval=replace(settings.retrieval, **settings_overrides))
    build_index(settings, progress=False)
    return settings

QUESTIONS = [
    "컨테이너 이미지를 저장소 간에 복사하는 도구는?", "Skopeo가 뭐야?", "쿠버네티스 파드란?",
    "도커 이미지 빌드 방법", "Azure 가상 머신 만드는 법", "리눅스 파일 권한 변경 명령어",
    "What is Tekton?", "How do I scale a deployment in Kubernetes?", "서비스 메시가 뭐야",
    "테라폼으로 인프라를 코드로 관리하는 방법", "ansible 플레이북 작성법", "로그 수집 도구",
    "OKD4 모니터링 구성요소", "FCOS 주요기능", "What is a persistent volume?", "VLAN이란?",
    "RAID 레벨 차이", "가상화 하이퍼바이저 종류", "docker compose up", "CI/CD 파이프라인 도구",
]


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def run(cmd: list[str], **kw) -> tuple[float, subprocess.CompletedProcess]:
    """Wall time of a whole process."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **kw.pop("env", {})}
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, **kw)
    return time.perf_counter() - started, proc


def measure(cmd: list[str], env: dict | None = None, cwd: str | None = None) -> tuple[float, float, float, str]:
    """(wall seconds, peak RSS MB of its largest process, CPU seconds, stdout) of one
    whole process; the RSS and CPU include the children it waited for."""
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=cwd,
                                env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        assert os.waitstatus_to_exitcode(status) == 0, err.read().decode()
        return seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, out.read().decode()


def okdbot_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "okdbot", *args]


def peak_rss_mb(children: bool = False) -> float:
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def corpus_or_bundled() -> tuple[Path, str, str]:
    """(notes folder, link base, label): the 44-day notes when present, else the bundled note."""
    if METANET.is_dir():
        return METANET, METANET_URL, "metanet-notes (44 days)"
    print("note: ../shared/corpora not found; measuring the bundled note only", file=sys.stderr)
    return ROOT / "corpus", METANET_URL, "bundled Day26.md"


def machine_speed() -> str:
    """How fast this (shared, virtual) machine is right now, to compare runs made at
    different times: a fixed compute task (numpy matrix products), and the rate at which
    one core reads memory far larger than the CPU's caches (what a question's encode
    waits on)."""
    import numpy as np

    a = np.random.default_rng(0).random((256, 256), dtype=np.float32)
    big = np.ones(64 * 2**20 // 4, dtype=np.float32)  # 64 MB: twice this CPU's last-level cache
    compute, read = [], []
    for _ in range(7):
        started = time.perf_counter()
        for _ in range(50):
            a @ a
        compute.append(time.perf_counter() - started)
        started = time.perf_counter()
        big.sum()
        read.append(time.perf_counter() - started)
    return (f"machine speed now: 50 matmuls 256² {statistics.median(compute) * 1000:.0f} ms, "
            f"memory read {big.nbytes / statistics.median(read) / 1e9:.1f} GB/s, "
            f"load average {os.getloadavg()[0]:.2f}")
