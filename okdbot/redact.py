"""Secrets never reach an output: every log line and error message is masked as it is written.

Masking happens on the finished text, after the message, its arguments and any
traceback (chained exceptions included) have been formatted, so no part of a
record can slip past it. Standard library only: the CLI installs it before
anything heavy is imported.
"""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager

MASK = "<token>"
_MIN_SECRET = 8  # a shorter "secret" would mask ordinary words

_secrets: set[str] = set()


def add_secret(secret: str | None) -> None:
    """Mask `secret` in every line written from now on (the Discord token)."""
    if secret and len(secret) >= _MIN_SECRET:
        _secrets.add(secret)


def forget_secrets() -> None:
    """Stop masking (for tests that register a token of their own)."""
    _secrets.clear()


def scrub(text: str) -> str:
    """`text` with every registered secret replaced by <token>."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class Redacting(logging.Formatter):
    """Wraps a formatter: what it produces is scrubbed before any handler writes it."""

    def __init__(self, inner: logging.Formatter | None = None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return scrub(self.inner.format(record))


def redact_handler(handler: logging.Handler) -> logging.Handler:
    """Make `handler` write only scrubbed text (its own formatting kept)."""
    if not isinstance(handler.formatter, Redacting):
        handler.setFormatter(Redacting(handler.formatter))
    return handler


class _Scrubbing:
    """A text stream that writes only scrubbed text; everything else is the stream's own."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(scrub(text))
        return len(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


@contextmanager
def scrubbed_streams():
    """While inside, whatever is printed on stdout and stderr (reports, argparse's usage
    errors, a path or flag the token was pasted into by mistake) is scrubbed."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Scrubbing(sys.stdout), _Scrubbing(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
