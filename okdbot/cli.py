"""Command line: `okdbot index`, `okdbot query`, …

Only this module (and the Discord bot) turns OkdbotError into messages: one
line on stderr, a non-zero exit, no traceback. Heavy libraries are imported
inside the commands that need them, so `okdbot --help` stays instant.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path

from . import __version__
from .cli_discord import discord_commands

log = logging.getLogger("okdbot")


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit code."""
    with _masking_the_token():
        return _dispatch(_parser().parse_args(argv))


def run() -> None:
    """The `okdbot` program. A query leaves without the interpreter's teardown
    (freeing the encoder, the index and every module took 70-100 ms of a 0.6 s
    query here), once its output is flushed; other commands exit normally."""
    # okdbot's numpy work is small; OpenBLAS's idle threads cost ~0.1 s of CPU in each process
    # that imports numpy (a Korean query has two), CPU that its other process then lacks.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    _start_korean_analysis(sys.argv[1:])
    try:
        with _masking_the_token():
            args = _parser().parse_args()
            code = _dispatch(args)
    finally:
        _stop_korean_analysis()  # a child no query took over (an error came first)
    if getattr(args, "quick_exit", False):
        _leave(code)
    sys.exit(code)


def _start_korean_analysis(argv: list[str]) -> None:
    """For `okdbot query` with a Hangul question, start the Korean analyser's child process
    before anything else is imported or read (a cold Korean query waits for its load, not
    for ours); the query's analyser takes it over (korean.start_early). Every Hangul
    argument is sent, since which one is the question is known only after parsing."""
    command = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if command is None or argv[command] != "query":
        return
    from .errors import BadQuestion
    from .korean import start_early
    from .question import check_question

    texts = []
    for arg in argv[command + 1:]:
        try:
            texts.append(check_question(arg))
        except BadQuestion:
            continue
    start_early(texts)  # it keeps the Hangul ones


def _stop_korean_analysis() -> None:
    korean = sys.modules.get("okdbot.korean")  # loaded only when a child was started
    if korean is not None:
        korean.stop_early()


@contextlib.contextmanager
def _masking_the_token():
    """$DISCORD_TOKEN never reaches stdout or stderr, whatever command prints it."""
    from .config import discord_token
    from .redact import add_secret, scrubbed_streams

    add_secret(discord_token())
    with scrubbed_streams():
        yield


def _leave(code: int) -> None:
    """Flush what was written, then end the process at once."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # a reader that stopped early; a closed stream
            pass
    logging.shutdown()
    os._exit(code)


def _dispatch(args: argparse.Namespace) -> int:
    _setup_logging(args.verbose, args.quiet)
    if not getattr(args, "func", None):
        _parser().print_help()
        return 2
    from .errors import OkdbotError
    from .redact import scrub

    try:
        return args.func(args) or 0
    except OkdbotError as exc:
        print(f"okdbot: error: {scrub(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("okdbot: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: one line, the traceback only with --verbose
        if isinstance(exc, OSError) and exc.filename:  # a path the system refused: permissions, full disk…
            from .errors import storage_error

            print(f"okdbot: error: {storage_error(exc, 'use')}", file=sys.stderr)
            return 1
        log.debug("traceback", exc_info=True)
        print(f"okdbot: internal error: {type(exc).__name__}: {scrub(str(exc))} (run with --verbose for details)",
              file=sys.stderr)
        return 70


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="okdbot", description="Answer questions about OKD from Markdown notes, with quotes and links.")
    parser.add_argument("--version", action="version", version=f"okdbot {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more (DEBUG)")
    parser.add_argument("-q", "--quiet", action="store_true", help="log only errors")
    logging_flags = argparse.ArgumentParser(add_help=False)  # also accepted after the command
    logging_flags.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log more (DEBUG)")
    logging_flags.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="log only errors")
    common = argparse.ArgumentParser(add_help=False, parents=[logging_flags])
    common.add_argument("--config", type=_path, metavar="PATH", help="okdbot.yaml to use (default: ./okdbot.yaml or $OKDBOT_CONFIG)")
    common.add_argument("--index", type=_path, metavar="DIR", help="index folder (default: from the config, or ./index)")
    sub = parser.add_subparsers(metavar="COMMAND")

    _add_init(sub, logging_flags)
    p = sub.add_parser("index", parents=[common], help="build or update the index (only changed notes are re-embedded)",
                       description="Build or update the index. Unchanged chunks are reused; only new or edited ones are embedded.")
    p.add_argument("--corpus", type=_path, metavar="DIR", help="index this folder instead of the configured sources")
    p.add_argument("--source-url", metavar="BASE", help="link base for --corpus, e.g. https://github.com/o/r/blob/main/docs/")
    p.add_argument("--full", action="store_true", help="re-embed everything instead of reusing unchanged chunks")
    p.add_argument("--json", action="store_true", help="print one JSON object with the build's numbers")
    p.add_argument("--watch", action="store_true",
                   help="then keep running: re-index whenever a note is added, edited, renamed or deleted")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("query", parents=[common], help="answer a question with quotes from the notes",
                       description="Answer QUESTION, or each line of stdin when QUESTION is omitted.")
    p.add_argument("question", nargs="?", metavar="QUESTION", help="the question (omit to read one per line from stdin)")
    p.add_argument("-k", type=int, metavar="N", help="at most N passages (default from config: 5)")
    p.add_argument("--json", action="store_true", help="one JSON object per question per line")
    p.set_defaults(func=cmd_query, quick_exit=True)

    discord_commands(sub, common)

    p = sub.add_parser("doctor", parents=[common], help="check config, notes, model, index, Discord token and libraries",
                       description="Check everything okdbot needs and say what to do about each problem. "
                                   "Exits 1 when any check fails.")
    p.add_argument("--json", action="store_true", help="one JSON object with every check")
    p.add_argument("--no-discord", action="store_true", help="skip the Discord checks (CLI-only setups)")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("health", parents=[common], help="is the running bot alive and connected? (Docker HEALTHCHECK)",
                       description="Exit 0 when the bot's heartbeat is fresh and says connected, else 1.")
    p.add_argument("--heartbeat", metavar="PATH", help="heartbeat file (default: $OKDBOT_HEARTBEAT or "
                                                       "heartbeat.json in the state folder)")
    p.add_argument("--max-age", type=_seconds, metavar="SECONDS", help="oldest acceptable heartbeat (default: 90)")
    p.set_defaults(func=cmd_health)

    p = sub.add_parser("eval", parents=[common], help="measure answer quality on a question set",
                       description="Ask every question of QUESTIONS.yaml and report hit@1/3/5, MRR, not-found "
                                   "precision/recall and latency per language, then each miss.")
    p.add_argument("questions", metavar="QUESTIONS.yaml", help="the question set, e.g. eval/okd-note.yaml")
    p.add_argument("-k", type=int, default=5, metavar="N", help="passages per question (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.set_defaults(func=cmd_eval)
    return parser


def _path(text: str) -> str:
    """A path flag: "" (an unset shell variable) would be this folder, so it is refused."""
    if not text:
        raise argparse.ArgumentTypeError("is empty; pass a path (. for this folder)")
    return text


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0, e.g. --max-age 90")
    return seconds


def _add_init(sub, logging_flags) -> None:
    p = sub.add_parser("init", parents=[logging_flags], help="write a commented okdbot.yaml for your own notes",
                       description="Write a commented okdbot.yaml that indexes the Markdown notes in DIR.")
    p.add_argument("folder", nargs="?", default=".", metavar="DIR", help="the folder of your notes (default: here)")
    p.add_argument("--url", metavar="BASE", help="the folder's web page, e.g. https://github.com/o/r/blob/main/docs/ "
                                                 "(default: from the Git remote, when it is GitHub or GitLab)")
    p.add_argument("--config", metavar="PATH", default="okdbot.yaml", help="the file to write (default: ./okdbot.yaml)")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.set_defaults(func=cmd_init)


def _setup_logging(verbose: bool, quiet: bool) -> None:
    from .redact import Redacting

    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(Redacting(_Formatter()))  # masks the Discord token in the finished line
    root = logging.getLogger("okdbot")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    if quiet:  # libraries' own warnings too
        logging.getLogger().setLevel(logging.ERROR)


class _Formatter(logging.Formatter):
    """`okdbot: message` for progress, `okdbot: warning: message` for problems."""

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        text = f"okdbot: {level}{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def _settings(args, **overrides):
    from .config import load_settings

    return load_settings(args.config, index=args.index, **overrides)


def cmd_init(args) -> int:
    from .scaffold import write_config

    url, (count, skipped) = write_config(Path(args.config), Path(args.folder), args.url, args.force)
    links = f"links open {url}" if url else "links are file:// links (set url: for web links)"
    left_out = f" ({skipped} file(s) will be skipped: `okdbot doctor` says why)" if skipped else ""
    print(f"wrote {args.config}: {count} note(s) in {args.folder}{left_out}; {links}")
    print('next: okdbot doctor --no-discord, then okdbot query "…" (the first query builds the index)')
    return 0


def cmd_index(args) -> int:
    from .gitnotes import fetch_sources
    from .runtime import build, settings_of_index

    settings = settings_of_index(_settings(args, corpus=args.corpus, source_url=args.source_url))
    fetch_sources(settings.sources)  # git: sources first
    if args.watch:
        return _index_and_watch(settings, args)
    _print_report(build(settings, full=args.full), args.json)
    return 0


def _print_report(report, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.public(), ensure_ascii=False), flush=True)
    elif report.unchanged:
        log.info("the index is up to date (%d files, %d chunks; nothing changed since generation %s), in %.1f s → %s",
                 report.files, report.chunks, report.generation, report.seconds, report.index)
    else:
        log.info("indexed %d files: %d chunks (%d embedded, %d reused, %d removed), %d glosses found in the "
                 "notes, in %.1f s → %s", report.files, report.chunks, report.embedded, report.reused,
                 report.removed, report.glossary, report.seconds, report.index)


def _index_and_watch(settings, args) -> int:
    """Build, then re-index on every change until SIGINT/SIGTERM (exit 0)."""
    import signal
    import threading

    from .runtime import settings_of_index
    from .watch import Rebuilder, watch, watched_roots

    watched_roots(settings)  # a missing notes folder is an error now, not in the loop
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    rebuilder = Rebuilder(settings)
    _print_report(rebuilder.build(full=args.full), args.json)
    rebuilder.preload()
    try:
        watch(settings, on_rebuilt=(lambda r: print(json.dumps(r.public(), ensure_ascii=False), flush=True))
              if args.json else None, stop_event=stop, rebuilder=rebuilder,
              reload=lambda: settings_of_index(_settings(args, corpus=args.corpus, source_url=args.source_url)))
    except KeyboardInterrupt:
        pass
    log.info("stopped watching")
    return 0


def cmd_doctor(args) -> int:
    from . import doctor

    checks = doctor.run_checks(args.config, args.index, discord=not args.no_discord)
    if args.json:
        print(json.dumps(doctor.to_json(checks), ensure_ascii=False))
    else:
        print(doctor.render(checks))
    return 1 if doctor.problems(checks) else 0


def cmd_health(args) -> int:
    from .config import heartbeat_path
    from .health import DEFAULT_MAX_AGE, check

    beat = Path(args.heartbeat) if args.heartbeat else heartbeat_path(_settings(args))
    health = check(beat, args.max_age or DEFAULT_MAX_AGE)
    print(f"okdbot: {'healthy' if health.healthy else 'unhealthy'}: {health.message}")
    return 0 if health.healthy else 1


def cmd_query(args) -> int:
    from .errors import BadQuestion
    from .question import check_question
    from .runtime import load_retriever

    settings = _settings(args)
    if args.question is not None:
        checked = check_question(args.question)  # fail fast, before loading any model
    if args.k is not None and not 1 <= args.k <= 50:
        raise BadQuestion("-k must be between 1 and 50")
    retriever = load_retriever(settings, build_if_missing=True,
                               questions=[checked] if args.question is not None else None)
    from .answer import answer_log_line, cut_words, to_json, to_text  # after load_retriever: it starts Kiwi first
    questions = [args.question] if args.question is not None else _stdin_questions()
    failed = 0
    for question in questions:
        if args.question is None and not question.strip():
            continue
        try:
            if isinstance(question, _Undecodable):
                raise BadQuestion(question.problem)
            started = time.perf_counter()
            result = retriever.search(question, args.k)
            log.debug("question: %s", question)
            log.debug(answer_log_line(result, (time.perf_counter() - started) * 1000))
        except BadQuestion as exc:
            if args.question is not None:
                raise
            failed += 1
            print(f"okdbot: error: {exc}", file=sys.stderr)
            if args.json:
                print(json.dumps({"question": cut_words(question, 200), "answered": False, "passages": [],
                                  "error": str(exc)}, ensure_ascii=False), flush=True)
            continue
        for file in result.changed:
            print(f"okdbot: warning: {file} changed since it was indexed, so the linked lines may have moved; "
                  "run `okdbot index`", file=sys.stderr)
        if args.json:
            print(json.dumps(to_json(result), ensure_ascii=False), flush=True)
        else:
            print(to_text(result), flush=True)
            if args.question is None:
                print()
    return 1 if failed else 0


class _Undecodable(str):
    """A stdin line that is not UTF-8: shown with replacement characters, answered with an error."""

    problem = ""


_STDIN_LINE_MAX = 64 * 1024  # bytes: a question is at most 1000 characters, once invisible ones are dropped


def _stdin_questions():
    """Each line of stdin, decoded on its own: one line that is not UTF-8 gets its
    own error and the batch goes on."""
    number = 0
    while raw := sys.stdin.buffer.readline(_STDIN_LINE_MAX):
        number += 1
        if len(raw) == _STDIN_LINE_MAX and not raw.endswith(b"\n"):  # far too long: skip it unread
            while (rest := sys.stdin.buffer.readline(_STDIN_LINE_MAX)) and not rest.endswith(b"\n"):
                pass
            bad = _Undecodable(raw[:4096].decode("utf-8", errors="ignore"))  # masked, then cut, when echoed
            bad.problem = f"line {number} of the input is over {_STDIN_LINE_MAX} bytes; ask in at most 1000 characters"
            yield bad
            continue
        line = raw.rstrip(b"\r\n")
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark
            line = line[3:]
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = _Undecodable(line.decode("utf-8", errors="replace"))
            bad.problem = (f"line {number} of the input is not UTF-8 (bad byte at offset {exc.start}); "
                           "send questions as UTF-8 text")
            yield bad


def cmd_eval(args) -> int:
    from .errors import BadQuestion
    from .evaluate import OkdbotSystem, format_report, load_questions, report_json, run
    from .runtime import load_retriever

    questions = load_questions(args.questions)  # fail fast, before loading any model
    if not 1 <= args.k <= 50:
        raise BadQuestion("-k must be between 1 and 50")
    retriever = load_retriever(_settings(args), build_if_missing=True)
    report = run(OkdbotSystem(retriever), questions, args.k)
    print(json.dumps(report_json(report), ensure_ascii=False) if args.json else format_report(report))
    return 0
