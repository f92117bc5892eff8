# media-service: the HTTP API (gunicorn) plus a local job worker, on Debian bookworm with Debian's
# python3 (3.11), ffmpeg and opencv-data (the Haar cascades face blurring uses), run as a non-root user.
#
#   docker build -t media-service .
#   docker run -d -p 8000:8000 -v media-data:/data --name media-service media-service
#   docker exec media-service media-service merchants create "My shop"   # prints the API key once
#
# Settings are MEDIA_SERVICE_* environment variables (e.g. MEDIA_SERVICE_DATABASE_URL=postgresql+psycopg://...);
# by default everything (SQLite database, files, instance secret) lives in the /data volume.
FROM debian:bookworm-slim

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv ffmpeg opencv-data curl ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*

# Debian's system pip is externally managed (PEP 668), so the service gets its own virtual environment.
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv

# An editable install on purpose: the package finds static/ and models/ beside it, in /app.
WORKDIR /app
COPY pyproject.toml README.md ./
COPY media_service ./media_service
COPY static ./static
COPY models ./models

# Packages come from PyPI. Behind a TLS-intercepting proxy, hand pip the proxy's CA bundle as the optional
# build secret "pip_cert" (docker build --secret id=pip_cert,src=/etc/ssl/certs/ca-certificates.crt .); it is
# mounted for this step only and never stored in the image.
# The "detection" extra (torch + torchvision, about 1 GB more) is left out: without it the service uses its
# catalog detector. For the torchvision detector use: pip install -e '.[postgres,detection]'
RUN --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
 && pip install -e '.[postgres]' \
 && python -m compileall -q media_service

RUN useradd --create-home --uid 10001 --user-group media \
 && mkdir -p /data \
 && chown media:media /data
ENV MEDIA_SERVICE_DATA_DIR=/data
VOLUME ["/data"]
USER media
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD curl -fsS 'http://127.0.0.1:8000/v1/health?require=workers' || exit 1

# Migrates the database, then serves with a local job worker beside it; more workers: media-service worker
CMD ["media-service", "serve", "--host", "0.0.0.0", "--port", "8000"]
