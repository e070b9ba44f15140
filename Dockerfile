# konifer-edge: an image CDN origin. Build and run (docs/deployment.md has the rest):
#
#   docker build -t konifer-edge:0.1.0 .
#   docker run --init -p 8080:8080 -v konifer-data:/data konifer-edge:0.1.0
#
# deploy/dockerfile_steps.sh performs the same RUN steps on a Debian 12 machine; keep the two equal
# (tests/unit/test_deploy_files.py compares the package list, the user and the pip command).

# ---- builder: a virtual environment holding konifer-edge and its dependencies ----
FROM python:3.11-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# Only what `pip install .` reads: the build metadata (README.md is the package's readme, LICENSE its
# license file) and the package.
COPY pyproject.toml README.md LICENSE ./
COPY konifer_edge ./konifer_edge

# Every runtime dependency ships a manylinux wheel: libvips 8.18 is pyvips-binary's, HEIC and JPEG XL
# are pillow-heif's libheif and pylibjxl's libjxl (docs/imaging.md), so no compiler is needed here. The `rules` extra
# (ONNX Runtime, tokenizers, numpy) is included so upload rules work once the model is mounted at
# /app/models/siglip2-base-patch16-224 (docs/upload-rules.md); it is imported only when rules are configured.
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/python -m pip install --no-cache-dir --upgrade pip \
    && /opt/venv/bin/python -m pip install --no-cache-dir "/src[rules]"

# ---- runtime: the venv (libvips and the image codecs are in its wheels), an unprivileged user ----
FROM python:3.11-slim-bookworm AS runtime

# No system libvips: the wheels bundle their libraries and link only the C and C++ runtimes, as
# manylinux expects of the system. Versions are not pinned so that a rebuild picks up Debian's
# security updates (Debian removes superseded versions from its mirrors).
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libstdc++6 \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --gid 10001 konifer \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin konifer \
    && install -d -o 10001 -g 10001 -m 0750 /data \
    && install -d -m 0755 /etc/konifer /app /app/config \
    && install -d -o 10001 -g 10001 -m 0700 /app/tmp

COPY --from=builder /opt/venv /opt/venv
COPY deploy/dockerfile_steps.sh /usr/local/lib/konifer-edge/dockerfile_steps.sh

# Konifer's image keeps its temporary files in /app/tmp; so do Python's tempfile and libvips here.
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TMPDIR=/app/tmp

# The image does not build unless JPEG, PNG, WebP, AVIF, JPEG XL, HEIC and GIF are written and read
# back (libvips, libheif, libjxl) and konifer_edge.app imports. Operators can re-run it in a container:
#   docker run --rm --entrypoint bash konifer-edge:0.1.0 /usr/local/lib/konifer-edge/dockerfile_steps.sh verify
RUN bash /usr/local/lib/konifer-edge/dockerfile_steps.sh verify /opt/venv/bin/python

USER 10001:10001
WORKDIR /data
# Originals, variants and metric files when no external stores are configured (embedded PostgreSQL in
# /data/postgres, filesystem objects in /data/objects); always the Prometheus multiprocess files.
VOLUME ["/data"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4)"]

# Configuration comes from environment variables (DATABASE_URL, PG_USER, PG_PASSWORD, S3_ACCESS_KEY,
# S3_SECRET_KEY, S3_ENDPOINT_URL, URL_SIGNING_SECRET_KEY, REDIS_URL, IN_MEMORY) and, optionally, a
# file. A file mounted where Konifer's image reads it, /app/config/konifer.conf (or konifer.toml), is
# used without a flag; elsewhere, mount it and pass it (a missing `--config` file stops start-up):
#   docker run ... -v "$PWD/konifer.conf:/app/config/konifer.conf:ro" konifer-edge:0.1.0
#   docker run ... -v "$PWD/konifer.toml:/etc/konifer/konifer.toml:ro" konifer-edge:0.1.0 \
#     serve --host 0.0.0.0 --port 8080 --data-dir /data --config /etc/konifer/konifer.toml
ENTRYPOINT ["konifer-edge"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080", "--data-dir", "/data"]
