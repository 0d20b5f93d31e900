"""Liveness of a running bot, as a heartbeat file (for Docker's HEALTHCHECK).

The bot calls `write_heartbeat(path, state)` periodically while it runs (e.g.
every 30 s from a tasks.loop) with at least {"connected": bool}; `okdbot health`
calls `check(path, max_age)`: healthy only when the heartbeat is fresh AND says
connected. A hung event loop stops writing, a lost gateway connection says
connected=false: both turn the container unhealthy.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_AGE = 90.0  # three missed 30-second beats


@dataclass(frozen=True)
class Health:
    healthy: bool
    message: str
    state: dict


def write_heartbeat(path: Path, state: dict, now: float | None = None) -> None:
    """Atomically replace the heartbeat with `state` plus the current time."""
    path = Path(path)
    data = {**state, "time": time.time() if now is None else now, "pid": os.getpid()}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".heartbeat-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check(path: Path, max_age: float = DEFAULT_MAX_AGE, now: float | None = None) -> Health:
    """Healthy when the heartbeat at `path` is at most `max_age` seconds old and says connected."""
    now = time.time() if now is None else now
    if Path(path).is_fifo():  # reading a pipe nothing writes to would block the health check for ever
        return Health(False, f"heartbeat {path} is a pipe, not a regular file", {})
    try:
        state = json.loads(Path(path).read_text(encoding="utf-8"))
        beat = float(state["time"])
        if not math.isfinite(beat):
            raise ValueError("time is not a number")
    except FileNotFoundError:
        return Health(False, f"no heartbeat at {path}: the bot is not running (or still starting)", {})
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        return Health(False, f"heartbeat {path} is unreadable ({type(exc).__name__})", {})
    age = now - beat
    if -age > max_age:  # the bot's clock is the same as ours: an edited file, or the clock was set back
        return Health(False, f"heartbeat {path} is {-age:.0f} s in the future: restart the bot", state)
    if age > max_age:
        return Health(False, f"last heartbeat {age:.0f} s ago (limit {max_age:.0f} s): the bot is stuck or stopped", state)
    if state.get("connected") is not True:
        return Health(False, f"the bot is not connected to Discord (heartbeat {age:.0f} s ago)", state)
    details = ", ".join(f"{k} {state[k]}" for k in ("guilds", "latency_ms", "generation") if k in state)
    return Health(True, f"connected, heartbeat {max(age, 0):.0f} s ago" + (f" ({details})" if details else ""), state)
