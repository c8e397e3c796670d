# syntax=docker/dockerfile:1.7
# claude-code-proxy: the image ECS runs (see docs/deploy.md). Local use:
#   docker build -t claude-code-proxy .
#   docker run --rm -p 8080:8080 --read-only claude-code-proxy
# The Pulumi stack overrides the command with the VPC's load-balancer subnets as trusted proxies.
# No stack-specific build argument: the same image (same digest) promotes from dev to prod.
# Builds for linux/arm64 (Graviton, the stack's default) and linux/amd64 from the same base index.

# Base pinned by digest (the multi-arch index of the tag). Verify and bump together:
#   docker buildx imagetools inspect python:3.11.13-slim-bookworm   (the "Digest:" line)
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm@sha256:86adf8dbadc3d6e82ee5dd2c74bec2e1c2467cdad47886280501df722372d2e1

# ---- build: a virtualenv with the locked runtime dependencies and the app, installed editable ----
FROM ${PYTHON_IMAGE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /srv

# 1) Dependencies only, pinned by requirements.lock (project deps, not the dev/infra extras). A stub
#    package lets pip resolve them before the source is copied, so code edits reuse this layer.
#    pyproject's `readme` only feeds package metadata, so an empty README.md stands in for it.
COPY pyproject.toml requirements.lock ./
RUN touch README.md \
 && mkdir app && touch app/__init__.py \
 && pip install -c requirements.lock . \
 && pip uninstall -y claude-code-proxy \
 && rm -rf app build ./*.egg-info

# 2) The source. Editable install: the package runs from /srv/app and finds /srv/templates beside it.
COPY app ./app
COPY templates ./templates
RUN pip install --no-deps -c requirements.lock -e . \
 && python -m compileall -q app

# 3) RDS/DocumentDB CA bundle (PROXY_MONGODB_URL's tlsCAFile), checked against a pinned SHA-256 when
#    RDS_CA_BUNDLE_SHA256 is set: a changed or tampered bundle then fails the build. AWS updates the
#    bundle when it adds CAs; refresh the pin with
#      curl -fsS https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem | sha256sum
#    (left empty in this commit: it was written without network access; see docs/deploy.md).
ARG RDS_CA_BUNDLE_SHA256=
ADD --chmod=0444 https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem /srv/certs/global-bundle.pem
RUN if [ -n "$RDS_CA_BUNDLE_SHA256" ]; then \
      echo "$RDS_CA_BUNDLE_SHA256  /srv/certs/global-bundle.pem" | sha256sum -c -; \
    else \
      echo "WARNING: RDS CA bundle not verified (RDS_CA_BUNDLE_SHA256 unset)" >&2; \
    fi \
 && grep -q "BEGIN CERTIFICATE" /srv/certs/global-bundle.pem

# ---- runtime: slim, non-root, read-only friendly ----
FROM ${PYTHON_IMAGE} AS runtime

# Runtime defaults, overridable with `docker run -e` (never baked per stack): trusted proxies for
# X-Forwarded-* (the stack passes the load balancer's subnets in the task's command instead), and the
# seconds uvicorn waits for open streams after SIGTERM (keep under ECS stopTimeout, max 120 s).
# MALLOC_MMAP_THRESHOLD_: glibc serves allocations of 64 KiB and more (request bodies, their copies)
# from mmap, so they go back to the OS when freed instead of holding the heap up after a burst of
# large requests (issue 16: 143 -> 54 KiB RSS per open stream with 100 KiB bodies).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp \
    FORWARDED_ALLOW_IPS=127.0.0.1 \
    GRACEFUL_SHUTDOWN_S=110 \
    MALLOC_MMAP_THRESHOLD_=65536

RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app

COPY --from=build /srv/certs /srv/certs
COPY --from=build /opt/venv /opt/venv
COPY --from=build /srv/app /srv/app
COPY --from=build /srv/templates /srv/templates
WORKDIR /srv

USER 10001:10001
# The only writable path when the root filesystem is read-only (ECS mounts a task volume here and,
# through this VOLUME, keeps /tmp's sticky world-writable mode).
VOLUME ["/tmp"]
EXPOSE 8080

# No curl in slim images: a Python one-liner against the liveness endpoint.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys,urllib.request as u;sys.exit(0 if u.urlopen('http://127.0.0.1:8080/health',timeout=4).status==200 else 1)"]

STOPSIGNAL SIGTERM
# `exec` replaces the shell with the server, so SIGTERM reaches uvicorn itself and starts the drain.
CMD ["sh", "-c", "exec claude-code-proxy serve --host 0.0.0.0 --port 8080 --proxy-headers --forwarded-allow-ips \"$FORWARDED_ALLOW_IPS\" --timeout-graceful-shutdown \"$GRACEFUL_SHUTDOWN_S\""]
