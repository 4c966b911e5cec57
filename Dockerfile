# managedapp-orchestrator as a container job: `docker run ... IMAGE apply /plans/v2.plan.json --respect-windows --yes`.
# Dependencies are installed from requirements.lock with pip --require-hashes (regenerate with ./scripts/lock),
# so a tampered or swapped wheel fails the build. No secret is baked in: credentials come at run time from
# workload identity, managed identity or a mounted secret file.
# PYTHON_IMAGE: any Debian-based Python 3.11 image; docs/deploy.md builds one without a public registry.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/orchestrator \
 && python -m venv /opt/build
# Dependencies first, from the locks alone, so this layer is reused until a lock changes. Every wheel
# is checked against the lock's sha256 hashes, and pip refuses any requirement the lock does not pin.
COPY requirements.lock requirements-build.lock ./
RUN /opt/orchestrator/bin/pip install --require-hashes --requirement requirements.lock \
 && /opt/build/bin/pip install --require-hashes --requirement requirements-build.lock
COPY pyproject.toml README.md ./
COPY orchestrator ./orchestrator
# Our own wheel is built with the locked setuptools (no build isolation: nothing unhashed is fetched),
# then installed without touching the index; /opt/build stays in this stage.
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/dist . \
 && /opt/orchestrator/bin/pip install --no-deps --no-index /tmp/dist/managedapp_orchestrator-*.whl \
 && /opt/orchestrator/bin/pip check

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="managedapp-orchestrator" \
      org.opencontainers.image.description="Plan, review and apply Azure Managed Application upgrades across a customer fleet"
ENV PATH=/opt/orchestrator/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ORCHESTRATOR_CONFIG=/etc/orchestrator/fleet.toml \
    ORCHESTRATOR_JOURNAL=/var/lib/orchestrator/journal.db
RUN groupadd --system --gid 10001 orchestrator \
 && useradd --system --uid 10001 --gid orchestrator --home-dir /var/lib/orchestrator --no-create-home \
      --shell /usr/sbin/nologin orchestrator \
 && mkdir -p /var/lib/orchestrator /plans /etc/orchestrator \
 && chown orchestrator:orchestrator /var/lib/orchestrator /plans
COPY --from=build /opt/orchestrator /opt/orchestrator
# Journal and run state (must persist between scheduled runs), plans and reports, and the fleet config.
VOLUME ["/var/lib/orchestrator", "/plans", "/etc/orchestrator"]
WORKDIR /plans
USER 10001:10001
ENTRYPOINT ["orchestrator"]
CMD ["--help"]
