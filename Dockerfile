# The application image for docker-compose.yml's migrate, web and worker services:
# the `compliance` package (compliance/, sync/, web/) and the db/ folder it migrates from.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    COMPLIANCE_DB_DIR=/app/db

WORKDIR /app
# Exactly the runtime lock (hashes checked; no test tools), then the project without resolving.
COPY requirements-runtime.lock ./
RUN pip install --no-compile --require-hashes --no-deps -r requirements-runtime.lock
COPY pyproject.toml README.md* ./
COPY compliance ./compliance
COPY sync ./sync
COPY web ./web
RUN pip install --no-compile --no-deps --no-build-isolation . && pip check && rm -rf build *.egg-info
COPY db ./db

# Never run as root; uid 10001 must be able to read the Google key file mounted as a secret.
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin compliance
USER 10001
CMD ["compliance", "--help"]
