# media-service on Debian slim with Debian's ffmpeg, run by a non-root user under gunicorn.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg curl \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 media
WORKDIR /app
COPY pyproject.toml README.md ./
COPY media_service ./media_service
COPY static ./static
COPY models ./models
RUN pip install --no-cache-dir -e '.[postgres]'

ENV MEDIA_SERVICE_DATA_DIR=/data \
    PYTHONUNBUFFERED=1
RUN mkdir -p /data && chown media:media /data
VOLUME ["/data"]
USER media
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8000/v1/health || exit 1

# The HTTP service plus a local job worker; run more workers with: media-service worker
CMD ["media-service", "serve", "--host", "0.0.0.0", "--port", "8000"]
