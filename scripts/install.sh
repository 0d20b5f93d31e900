#!/usr/bin/env sh
# Install okdbot into a virtual environment. Shared by the README, CI and the Dockerfile.
#   scripts/install.sh           runtime only, venv at ./.venv (or $OKDBOT_VENV)
#   scripts/install.sh --test    also the test tools
#   OKDBOT_VENV=none scripts/install.sh   install into the current Python (Docker)
# torch goes first and pinned: torch==2.13.0 is the CPU build; any other spec pulls a multi-GB CUDA build.
set -eu
cd "$(dirname "$0")/.."
extra=""
[ "${1:-}" = "--test" ] && extra="[test]"
venv="${OKDBOT_VENV:-.venv}"
if [ "$venv" = "none" ]; then
    py="python3"
    target="."
else
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    py="$venv/bin/python"
    target="-e ."
fi
"$py" -m pip install --quiet --upgrade pip
"$py" -m pip install --quiet "torch==2.13.0"
# shellcheck disable=SC2086
"$py" -m pip install --quiet $target"$extra"
echo "okdbot installed: $("$py" -m okdbot --version)"
