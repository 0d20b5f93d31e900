"""`okdbot discord` and its token: from the environment only, never shown."""

from __future__ import annotations

import logging

import discord
import pytest
from discord.http import HTTPClient

from okdbot.discord_bot import run
from okdbot.errors import DiscordError

from .conftest import run_cli, settings_for

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.secret.do-not-print-me"


def test_missing_token_is_a_one_line_error_before_any_model_loads(workspace):
    proc = run_cli("discord", cwd=workspace, env={"DISCORD_TOKEN": ""}, timeout=20)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "DISCORD_TOKEN is not set" in proc.stderr
    assert proc.stdout == "" and not (workspace / "index").exists()


class _Unauthorized:
    status = 401
    reason = "Unauthorized"
    headers: dict = {}


@pytest.fixture
def quiet_loggers():
    """run() routes discord.py's logging through okdbot's handlers; undo that afterwards."""
    saved = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).level,
                    logging.getLogger(name).propagate) for name in ("okdbot", "discord")}
    filters = {id(h): h.filters[:] for name in saved for h in saved[name][0]}
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate
        for h in handlers:
            h.filters[:] = filters[id(h)]


def test_a_rejected_token_is_a_one_line_error_that_never_shows_the_token(workspace, monkeypatch, capfd,
                                                                            quiet_loggers):
    """Discord answers 401 to a bad token at login (HTTP is faked here: no network in tests)."""
    requests = []

    async def unauthorized(self, route, **kwargs):
        requests.append((route.method, route.path, kwargs))
        raise discord.HTTPException(_Unauthorized(), {"message": "401: Unauthorized", "code": 0})

    monkeypatch.setattr(HTTPClient, "request", unauthorized)
    with pytest.raises(DiscordError) as info:
        run(settings_for(workspace), TOKEN)
    assert requests[0][:2] == ("GET", "/users/@me")
    message = str(info.value)
    assert "rejected the token" in message and "\n" not in message and TOKEN not in message
    out, err = capfd.readouterr()
    assert TOKEN not in out + err


def test_the_token_is_redacted_from_any_log_line(workspace, monkeypatch, capfd, quiet_loggers):
    handler = logging.StreamHandler()
    logging.getLogger("okdbot").handlers[:] = [handler]

    async def boom(self, route, **kwargs):
        raise discord.LoginFailure(f"bad token {TOKEN}")

    monkeypatch.setattr(HTTPClient, "static_login", boom)
    with pytest.raises(DiscordError):
        run(settings_for(workspace), TOKEN)
    logging.getLogger("discord").error("oops %s", TOKEN, exc_info=RuntimeError(TOKEN))
    logging.getLogger("okdbot").warning("token is " + TOKEN)
    err = capfd.readouterr().err
    assert "oops <token>" in err and "token is <token>" in err and TOKEN not in err


def test_feedback_before_any_answer_lists_nothing_and_says_why(workspace):
    proc = run_cli("feedback", "--json", cwd=workspace, timeout=20)
    assert proc.returncode == 0 and proc.stdout == ""
    assert "no feedback yet" in proc.stderr and "feedback.sqlite" in proc.stderr
