# Berth's container image: `berth serve`, configured by BERTH_* environment variables.
#
#   docker build -t berth .                                   # with network: python:3.11-slim-bookworm, PyPI
#   docker build --build-arg WITH_PULUMI=1 -t berth:pulumi .  # + the Pulumi CLI and kubernetes plugin
#   scripts/image                                             # here: makes the base and wheels locally if needed
#
# It runs as uid 10001 with a read-only root filesystem: only the data volume (/var/lib/berth)
# and /tmp are written. docker run --read-only --tmpfs /tmp -v berth-data:/var/lib/berth -p 5000:5000 berth
# Operators' guide: docs/operations.md. Few instructions on purpose: on a vfs Docker daemon each
# one copies the whole root filesystem.

ARG BASE_IMAGE=python:3.11-slim-bookworm

# --- build: a virtualenv with Berth and its dependencies (and, optionally, the Pulumi CLI) ----
FROM ${BASE_IMAGE} AS build
# BERTH_PROVISIONER=pulumi runs each registry's stack through the Automation API, which needs the
# `pulumi` CLI (default: the installed SDK's version; the Automation API refuses an older one) and
# the kubernetes resource plugin of the installed pulumi_kubernetes; of the CLI's language hosts
# only Python's (and its policy analyzer, for BERTH_PULUMI_POLICY_PACK) are kept. Downloaded from
# get.pulumi.com: network needed at build time.
ARG WITH_PULUMI=0 PULUMI_VERSION=
# Dependencies first, in a layer of their own that stays cached while pyproject.toml does not
# change. Offline builds (scripts/image, where the build cannot reach PyPI) bring their wheels in
# build/wheels; the glob lets that directory be absent, as it is for a build with network.
COPY pyproject.toml README.md build/wheel[s] /src/
RUN set -e; export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore; \
    if ls /src/*.whl >/dev/null 2>&1; then offline="--no-index --find-links /src"; else offline=""; fi; \
    python3 -m venv /opt/berth; \
    /opt/berth/bin/pip install $offline /src; \
    mkdir -p /opt/pulumi/bin; \
    if [ "$WITH_PULUMI" = 1 ]; then \
        arch=$(dpkg --print-architecture); case "$arch" in amd64) cli=x64;; *) cli=$arch;; esac; \
        version() { /opt/berth/bin/python -c "import importlib.metadata as m; print(m.version('$1'))"; }; \
        PULUMI_VERSION=${PULUMI_VERSION:-$(version pulumi)}; k8s=$(version pulumi_kubernetes); \
        /opt/berth/bin/python -c 'import sys, tarfile, urllib.request, io; \
            [tarfile.open(fileobj=io.BytesIO(urllib.request.urlopen(u, timeout=300).read())).extractall(d) \
             for u, d in zip(sys.argv[1::2], sys.argv[2::2])]' \
            "https://get.pulumi.com/releases/sdk/pulumi-v${PULUMI_VERSION}-linux-${cli}.tar.gz" /tmp/pulumi \
            "https://api.pulumi.com/releases/plugins/pulumi-resource-kubernetes-v${k8s}-linux-${arch}.tar.gz" /opt/pulumi/bin; \
        cd /tmp/pulumi/pulumi && mv pulumi pulumi-language-python* pulumi-analyzer-policy-python* /opt/pulumi/bin/; \
        /opt/pulumi/bin/pulumi version; \
    fi
COPY app /src/app
RUN set -e; export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore; \
    if ls /src/*.whl >/dev/null 2>&1; then offline="--no-index --find-links /src"; else offline=""; fi; \
    /opt/berth/bin/pip install $offline --no-deps --force-reinstall /src; \
    /opt/berth/bin/pip uninstall -y -q pip; \
    /opt/berth/bin/berth --help >/dev/null

# --- runtime ----------------------------------------------------------------------------------
FROM ${BASE_IMAGE}
ARG VERSION=0.1.0 REVISION=unknown SOURCE=https://github.com/berth-registry/berth LICENSES=NOASSERTION
# The uid and data directory of infra/platform_resources.py's Deployment (UID, DATA_DIR).
RUN groupadd --system --gid 10001 berth \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/berth --no-create-home \
        --shell /usr/sbin/nologin berth \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/berth
LABEL org.opencontainers.image.title="berth" \
      org.opencontainers.image.description="A managed, multi-tenant OCI container registry" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="${LICENSES}" \
      org.opencontainers.image.documentation="${SOURCE}/blob/main/docs/operations.md"
# Bytecode was compiled at install: the read-only root cannot take .pyc files at run time.
# PULUMI_HOME is on the data volume; the kubernetes plugin is found on PATH.
ENV PATH=/opt/berth/bin:/opt/pulumi/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp TMPDIR=/tmp \
    BERTH_HOST=0.0.0.0 BERTH_PORT=5000 BERTH_DATA_DIR=/var/lib/berth BERTH_METRICS_ADDR=0.0.0.0:9090 \
    PULUMI_HOME=/var/lib/berth/pulumi-home PULUMI_SKIP_UPDATE_CHECK=true
VOLUME ["/var/lib/berth"]
# 5000: registries and the API; 9090: Prometheus /metrics (keep it off the public network).
EXPOSE 5000 9090
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["/opt/berth/bin/python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('BERTH_PORT', '5000'), timeout=2)"]
USER 10001:10001
# The default stop signal, SIGTERM, stops the server cleanly (exit 0): acknowledged upload chunks
# stay, and a chunk cut short was never acknowledged.
ENTRYPOINT ["berth", "serve"]
COPY --from=build /opt /opt
