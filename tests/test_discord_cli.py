"""`okdbot discord` and its token: from the environment only, never shown."""

from __future__ import annotations

import logging

import discord
import pytest
import simcord
from discord.http import HTTPClient

from okdbot import cli, discord_bot
from okdbot.discord_bot import run
from okdbot.errors import DiscordError

from .conftest import run_cli, settings_for
from .test_discord import World, bot_settings, make_bot

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


def leak(token: str):
    """Raise an exception whose message, and the one chained under it, hold the token."""
    try:
        raise ValueError(f"Authorization: Bot {token}")
    except ValueError as exc:
        raise RuntimeError(f"login failed using token {token}") from exc


def test_a_token_inside_an_exception_never_reaches_the_cli_log_stream(workspace, monkeypatch, capfd, quiet_loggers):
    """Through `okdbot -v discord` itself: the CLI's own handler and formatter on the
    real stderr, the one-line internal error and the chained traceback that -v adds."""

    async def login(self, token):
        leak(token)

    monkeypatch.setattr(HTTPClient, "static_login", login)
    monkeypatch.setenv("DISCORD_TOKEN", TOKEN)
    monkeypatch.chdir(workspace)
    assert cli.main(["-v", "discord"]) == 70
    err = capfd.readouterr().err
    assert "internal error: RuntimeError: login failed using token <token>" in err
    assert "ValueError: Authorization: Bot <token>" in err  # the chained exception, from exc_info
    assert "The above exception was the direct cause" in err and TOKEN not in err


class LeakyRetriever:
    def search(self, question, k=None, context=""):
        leak(TOKEN)


async def test_a_failing_answer_is_logged_with_the_token_masked(workspace, tmp_path, capfd, quiet_loggers):
    """The bot on simcord with the logging `okdbot discord` sets up: the CLI's
    handler on stderr, then the bot's routing of discord.py's records."""
    cli._setup_logging(verbose=False, quiet=False)
    discord_bot._route_logs(TOKEN)
    async with simcord.run(make_bot(bot_settings(settings_for(workspace), tmp_path), LeakyRetriever())) as env:
        w = World(env)
        result = await w.alice.slash(w.channel, "ask", question="Skopeo가 뭐야?")
        assert result.acknowledged and len(env.errors) == 1
        logging.getLogger("discord").warning("gateway said %s", TOKEN, exc_info=env.errors[0])
    err = capfd.readouterr().err
    assert "okdbot: error: /ask failed" in err and "RuntimeError: login failed using token <token>" in err
    assert "ValueError: Authorization: Bot <token>" in err and "gateway said <token>" in err
    assert TOKEN not in err


def test_feedback_before_any_answer_lists_nothing_and_says_why(workspace):
    proc = run_cli("feedback", "--json", cwd=workspace, timeout=20)
    assert proc.returncode == 0 and proc.stdout == ""
    assert "no feedback yet" in proc.stderr and "feedback.sqlite" in proc.stderr


@pytest.mark.parametrize("args", [
    ["invite", "--client-id", TOKEN],  # argparse's own usage error
    ["query", "--config", TOKEN, "Skopeo가 뭐야?"],  # okdbot's one-line error
    ["doctor", "--no-discord", "--index", f"/nonexistent/{TOKEN}"],  # a report on stdout
    ["health", "--heartbeat", f"/nonexistent/{TOKEN}"],
])
def test_the_token_pasted_into_a_flag_by_mistake_is_masked_in_every_output(workspace, args, okdbot_cli):
    proc = okdbot_cli(*args, cwd=workspace, env={"DISCORD_TOKEN": TOKEN})
    assert proc.returncode != 0 and "<token>" in proc.stdout + proc.stderr, proc
    assert TOKEN not in proc.stdout + proc.stderr
