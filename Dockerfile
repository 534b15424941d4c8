# syntax=docker/dockerfile:1
# The image of every stratlab service of docker-compose.yml: the four worker pools
# (`stratlab worker <pool>`) and the set-up one-shot (`stratlab setup`).
FROM python:3.11-slim-bookworm

# bubblewrap sandboxes LLM-written strategy code: the package the README's
# prerequisites name.
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*

# The lab runs as this unprivileged user; only the build steps below run as root.
RUN useradd --create-home --uid 10001 --user-group stratlab

# numba keys its cache on the CPU: "generic" makes the cache built here valid on every
# host the image runs on (without it, a host whose CPU differs compiles everything again).
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STRATLAB_HOME=/var/lib/stratlab \
    NUMBA_CACHE_DIR=/opt/stratlab/numba-cache \
    NUMBA_CPU_NAME=generic \
    STRATLAB_LOG_FORMAT=json \
    STRATLAB_METRICS_PORT=9464

WORKDIR /opt/stratlab
COPY pyproject.toml README.md ./
COPY stratlab ./stratlab
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY optimizer ./optimizer
COPY deploy/install.sh ./deploy/install.sh

# The README's install steps (deploy/install.sh: the project, then numba's JIT cache).
# The cache is handed to the lab's user: numba adds an entry when a host's CPU differs
# from the build machine's.
RUN sh deploy/install.sh \
    && mkdir -p "$STRATLAB_HOME" \
    && chown -R stratlab:stratlab "$STRATLAB_HOME" "$NUMBA_CACHE_DIR"

USER stratlab
EXPOSE 9464
# Healthy: /metrics answers and the Temporal workers have started polling.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "workers.health"]
ENTRYPOINT ["stratlab"]
CMD ["worker", "orchestrator", "llm", "compute", "optimizer"]
