"""Every setting of the service, defined once with its default and a one-line description.

Values are read, later ones winning, from: the defaults below, an instance config file
(``MEDIA_SERVICE_CONFIG_FILE``, or ``<DATA_DIR>/config.toml`` when it exists), environment variables
``MEDIA_SERVICE_<NAME>`` and finally the ``test_config`` dict passed to ``create_app``. An unknown
setting anywhere is an error at start-up, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from media_service.errors import ConfigError

ENV_PREFIX = "MEDIA_SERVICE_"


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected a boolean (true/false), got {value!r}")


def _list(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("["):
        return [str(v) for v in json.loads(text)]
    return [part.strip() for part in text.split(",") if part.strip()]


def _optional_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def choice(*allowed: str, case: Callable[[str], str] = str.lower) -> Callable[[Any], str]:
    """A parser for an enum-like setting: one of ``allowed``, checked when the settings load (at start-up),
    not inside a running job."""

    def parse(value: Any) -> str:
        text = case(str(value).strip())
        if text not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {value!r}")
        return text

    parse.choices = allowed  # type: ignore[attr-defined]
    return parse


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    parse: Callable[[Any], Any]
    description: str


MiB = 1024 * 1024
GiB = 1024 * MiB

SETTINGS: tuple[Setting, ...] = (
    Setting("DATA_DIR", "var", str, "Folder for the SQLite database, local storage and the secret key."),
    Setting("DATABASE_URL", None, _optional_str,
            "SQLAlchemy URL; default sqlite:///<DATA_DIR>/media-service.db (PostgreSQL by URL)."),
    Setting("DATABASE_STRICT_WRITES", False, _bool,
            "Development check: fail any SQLite transaction that reads and then writes without taking the "
            "write lock first (such a write fails at random under concurrency)."),
    Setting("STORAGE_BACKEND", "filesystem", choice("filesystem"), "Storage implementation: 'filesystem'."),
    Setting("STORAGE_ROOT", None, _optional_str, "Root folder of filesystem storage; default <DATA_DIR>/storage."),
    Setting("SECRET_KEY", None, _optional_str,
            "Key for signed URLs; default: generated once and kept in <DATA_DIR>/secret_key."),
    Setting("PUBLIC_URL", "", str, "External base URL used in links (empty: derived from the request)."),
    Setting("TESTING", False, _bool, "Test mode (Flask's TESTING flag)."),
    Setting("GZIP_RESPONSES", True, _bool,
            "Compress text responses (widget script, JSON, playlists) with gzip when the client accepts it; "
            "turn off behind a proxy or CDN that compresses."),
    Setting("LOG_LEVEL", "INFO", choice("DEBUG", "INFO", "WARNING", "ERROR", case=str.upper),
            "Logging level of the service and workers."),
    # Uploads
    Setting("MAX_UPLOAD_BYTES", 4 * GiB, int, "Largest file accepted by the upload API, in bytes."),
    Setting("MAX_MULTIPART_BYTES", 256 * MiB, int,
            "Largest body of POST /v1/assets; bigger files go through tus resumable uploads."),
    Setting("UPLOAD_EXPIRY_SECONDS", 24 * 3600, int, "How long an unfinished tus upload is kept."),
    Setting("UPLOAD_CHUNK_BYTES", 1 * MiB, int,
            "Read block of a PATCH body; a body cut mid-block loses at most this much (the client resends it)."),
    Setting("UPLOAD_READ_TIMEOUT_SECONDS", 60.0, float,
            "A PATCH body that sends nothing for this long is cut (what arrived is kept) and its lock freed."),
    # Validation of what comes in
    Setting("MAX_IMAGE_PIXELS", 100_000_000, int, "Largest image accepted, in pixels (width x height)."),
    Setting("MAX_GIF_FRAMES", 1000, int, "Most frames accepted in an animated image."),
    Setting("MAX_JPEG_SCANS", 100, int,
            "Most scans in a JPEG (progressive files have about 10); counted before decoding, more is refused."),
    Setting("IMAGE_HEAVY_PIXELS", 16_000_000, int,
            "Images above this many pixels are validated the memory-bounded way (JPEG at 1/8 scale, PNG "
            "streamed row by row) and count against IMAGE_HEAVY_VALIDATIONS."),
    Setting("IMAGE_HEAVY_VALIDATIONS", 2, int,
            "Heavy image validations at once per process; more wait (up to 30 s, then 429)."),
    Setting("IMAGE_DECODE_TIMEOUT_SECONDS", 20.0, float,
            "Wall-clock (and CPU) limit of decoding one heavy image at upload; it runs in a child process."),
    Setting("IMAGE_DECODE_MEMORY_MB", 1536, int, "Address-space limit of that child process, in MiB."),
    Setting("MAX_VIDEO_PIXELS", 4096 * 4096, int, "Largest video frame accepted, in pixels (width x height)."),
    Setting("MAX_VIDEO_SECONDS", 3600.0, float, "Longest video accepted, in seconds."),
    Setting("MAX_VIDEO_SIDE", 8192, int, "Longest side of an accepted video frame, in pixels (the ladder's limit)."),
    Setting("MIN_VIDEO_SIDE", 16, int, "Shortest side of an accepted video frame, in pixels."),
    Setting("MAX_VIDEO_ASPECT", 4.0, float,
            "Most elongated frame accepted (long side / short side); 21:9 is 2.33. Past it the ladder's "
            "renditions would be a few pixels thin."),
    Setting("MAX_VIDEO_STREAMS", 16, int, "Most streams (video, audio, subtitles, data) in an accepted video."),
    Setting("PROBE_TIMEOUT_SECONDS", 30.0, float, "Wall-clock limit of one ffprobe/packet check run."),
    Setting("FFMPEG_BINARY", "ffmpeg", str, "ffmpeg executable."),
    Setting("FFPROBE_BINARY", "ffprobe", str, "ffprobe executable."),
    Setting("FFMPEG_TIMEOUT_SECONDS", 3600.0, float, "Wall-clock limit of one ffmpeg run inside a job."),
    # Jobs
    Setting("RUN_LOCAL_WORKER", True, _bool, "'serve' also starts a local job worker."),
    Setting("WORKER_CONCURRENCY", 2, int, "Job processes of a local worker."),
    Setting("JOB_LEASE_SECONDS", 30.0, float, "A running job whose lease is not renewed for this long is re-queued."),
    Setting("JOB_HEARTBEAT_SECONDS", 5.0, float, "How often a running job renews its lease."),
    Setting("JOB_MAX_ATTEMPTS", 3, int, "Attempts before a job whose worker keeps dying is failed."),
    Setting("JOB_POLL_SECONDS", 0.5, float, "How often an idle worker looks for queued jobs."),
    Setting("JOB_MODULES", [], _list, "Extra modules that register job kinds (imported by workers)."),
    # Webhooks
    Setting("WEBHOOK_TIMEOUT_SECONDS", 5.0, float,
            "Total deadline of one webhook attempt (resolve, connect, send, answer); slower counts as failed."),
    Setting("WEBHOOK_MAX_RESPONSE_BYTES", 64 * 1024, int, "Most bytes of a webhook receiver's answer read."),
    Setting("WEBHOOK_DELIVERY_THREADS", 8, int, "Webhook senders of a worker (off the job supervisor's loop)."),
    Setting("WEBHOOK_RECEIVER_CONCURRENCY", 2, int,
            "Most attempts at once to one receiver (scheme://host:port) per process: a slow one delays only itself."),
    Setting("WEBHOOK_MAX_ATTEMPTS", 8, int, "Deliveries tried before a webhook event is given up."),
    Setting("WEBHOOK_BACKOFF_SECONDS", 2.0, float, "First retry delay; doubles on each attempt."),
    Setting("WEBHOOK_ALLOW_PRIVATE_NETWORKS", False, _bool,
            "Allow webhook URLs that resolve to loopback/private addresses (tests, single-host setups)."),
    # API
    Setting("PAGE_SIZE_MAX", 100, int, "Largest page of a list endpoint."),
    Setting("SIGNED_URL_SECONDS", 3600, int, "Lifetime of signed download URLs."),
    # Videos
    Setting("VIDEO_LOUDNESS_TARGET_LUFS", -16.0, float,
            "Integrated loudness videos are normalised to (EBU R128 method; -23 is broadcast, -16 suits phones)."),
    Setting("VIDEO_LOUDNESS_TRUE_PEAK_DB", -1.5, float, "Highest true peak after loudness normalisation, dBTP."),
    Setting("VIDEO_LOUDNESS_RANGE_LU", 11.0, float, "Target loudness range of the normalisation, LU."),
    Setting("VIDEO_TONEMAP", "auto", choice("auto", "zscale", "colorspace"),
            "HDR to SDR: 'zscale' (zimg tone mapping), 'colorspace' (matrix only) or 'auto' (zscale if built in)."),
    Setting("VIDEO_STABILIZER", "auto", choice("auto", "vidstab", "opencv"),
            "Stabilisation engine: 'vidstab' (ffmpeg's libvidstab), 'opencv' or 'auto' (vidstab if built in)."),
    Setting("VIDEO_ENCODER_THREADS", 0, int, "Threads per x264 encoder in the ladder (0: ffmpeg decides)."),
    Setting("VIDEO_MAX_OUTPUT_BYTES", 8 * GiB, int, "Largest total size of one video's outputs; bigger fails the job."),
    Setting("VIDEO_DUPLICATE_MAX_DISTANCE", 10, int,
            "Hamming distance (of 64 bits) under which two sampled frames' perceptual hashes match."),
    Setting("VIDEO_DUPLICATE_MIN_MATCH", 0.75, float,
            "Share of sampled frames that must match for a 'near_duplicate' flag."),
    Setting("VIDEO_DUPLICATE_LOOKBACK", 5000, int, "Most recent videos of a merchant compared for near-duplicates."),
    Setting("VIDEO_REVIEW_URL_SECONDS", 900, int,
            "Lifetime of the review links a merchant gets for videos that are not published yet."),
    Setting("VIDEO_FACE_CASCADE", "", str,
            "Haar cascade XML for face blurring; empty: OpenCV's cv2.data or Debian's opencv-data copy."),
    Setting("UPLOAD_TOKEN_SECONDS", 3600, int, "Default lifetime of a buyer upload token."),
    Setting("UPLOAD_TOKEN_MAX_SECONDS", 7 * 24 * 3600, int, "Longest lifetime a merchant may give an upload token."),
    Setting("UPLOAD_TOKEN_MAX_BYTES", 1 * GiB, int, "Default and largest file size a buyer upload token allows."),
    # Panoramas and spins
    Setting("PANORAMA_MAX_PHOTOS", 30, int, "Most photos in one panorama."),
    Setting("PANORAMA_WORK_MEGAPIXELS", 0.6, float, "Size photos are registered at (features, matching, cameras)."),
    Setting("PANORAMA_SEAM_MEGAPIXELS", 0.1, float, "Size seams and exposure gains are estimated at, per photo."),
    Setting("PANORAMA_MAX_OUTPUT_MEGAPIXELS", 60.0, float,
            "Largest panorama composed; a bigger one is composed at a reduced scale (full resolution below)."),
    Setting("PANORAMA_PREVIEW_WIDTH", 1600, int, "Width of a panorama's preview image."),
    Setting("PANORAMA_TILE_SIZE", 512, int, "Side of the multi-resolution panorama tiles, in pixels."),
    Setting("PANORAMA_JPEG_QUALITY", 88, int, "JPEG quality of panorama images, previews and tiles."),
    Setting("SPIN_MAX_PHOTOS", 144, int, "Most photos in one spin photo set."),
    Setting("SPIN_MAX_VIDEO_SECONDS", 120.0, float, "Longest turntable video a spin is made from."),
    Setting("SPIN_MAX_FRAME_SIDE", 2048, int, "Turntable video frames are decoded at most this large (longer side)."),
    Setting("SPIN_WIDTHS", [320, 640, 1280], lambda value: [int(v) for v in _list(value)],
            "Widths each spin frame is published at (WebP and JPEG; never enlarged)."),
    Setting("SPIN_SPRITE_FRAME_WIDTH", 160, int, "Width of one frame in a spin's sprite sheet."),
    Setting("SPIN_QUALITY", 85, int, "WebP/JPEG quality of spin frames and sprite sheets."),
    # Products and detection
    Setting("PRODUCT_DETECTOR", "catalog", choice("catalog", "torchvision", "none"),
            "Detector of video indexing: 'catalog' (local features, no weights), 'torchvision' or 'none'."),
    Setting("PRODUCT_FEATURES", "sift", choice("sift", "orb"),
            "Local features of the catalog detector: 'sift' or 'orb' (faster)."),
    Setting("PRODUCT_PHOTO_SIDE", 512, int, "Product photos are indexed at this longer side, in pixels."),
    Setting("PRODUCT_MAX_IMAGES", 10, int, "Most photos per product."),
    Setting("PRODUCT_DETECT_SIDE", 480, int,
            "Frames are scaled to this longer side for the catalog detector (raise it for small products)."),
    Setting("PRODUCT_MIN_SCORE", 0.5, float, "Lowest score (0..1) of a catalog detection that is kept."),
    Setting("PRODUCT_CATALOG_CACHE", 8, int, "Merchant catalogs (matcher indexes) kept in memory per process."),
    Setting("INDEX_FPS", 4.0, float, "Frames per second decoded and searched when a video is indexed."),
    Setting("INDEX_FRAME_SIDE", 960, int,
            "Indexed frames are kept (JPEG) at this longer side, for cut-outs and on-demand detection."),
    Setting("INDEX_CUTOUTS", True, _bool,
            "Refine each tracked product's outline with GrabCut while indexing (taps then answer from storage)."),
    Setting("TAP_ON_DEMAND", True, _bool,
            "Detect on the tapped frame when no track is there (or the video is not indexed)."),
    Setting("SHOPPER_RATE_PER_MINUTE", 120.0, float,
            "Requests a minute one viewer (embed token + address) may make to the public widget endpoints "
            "(manifest, taps, cart, events); over it they get 429 with Retry-After."),
    Setting("SHOPPER_RATE_BURST", 20, int, "Requests one viewer may make at once before the rate applies."),
    Setting("EMBED_EVENTS_PER_MINUTE", 300.0, float,
            "Widget events a minute one viewer (embed token + address) may report; over it, 429 with Retry-After."),
    Setting("EMBED_EVENTS_BURST", 100, int,
            "Widget events one viewer may report at once before EMBED_EVENTS_PER_MINUTE applies (at least one "
            "batch of 50)."),
    Setting("EMBED_TOKEN_EVENTS_PER_MINUTE", 3000.0, float,
            "Widget events a minute all viewers of one embed token together may report (per web process)."),
    Setting("EMBED_TOKEN_EVENTS_BURST", 1000, int,
            "Widget events all viewers of one embed token may report at once before the token's rate applies."),
    Setting("TRUSTED_PROXIES", 0, int,
            "Reverse proxies in front of the service whose X-Forwarded-For/-Proto/-Host are trusted (0: none; "
            "then a viewer is its socket's address and forwarded headers are ignored)."),
    Setting("TAP_MAX_POLYGON_POINTS", 200, int, "Most points of a lasso polygon sent to the taps endpoint."),
    Setting("TAP_AUTO_INDEX", True, _bool,
            "A tap on a video that was never indexed queues its index job, so later taps answer from tracks."),
    Setting("CART_TOKEN_SECONDS", 3600, int, "How long the cart token of a tap answer can confirm an add to cart."),
    Setting("CAMPAIGN_SEGMENT_SECONDS", 5.0, float,
            "A campaign viewer learns the fragment schedule this many media seconds ahead, never more."),
    Setting("CAMPAIGN_LATENCY_SECONDS", 0.75, float,
            "Tolerance around a fragment's window for a claim's media time (tap-to-request latency)."),
    Setting("CAMPAIGN_TAP_TOLERANCE", 0.03, float,
            "How far outside a fragment's hit polygon a tap still counts (share of the frame's short side)."),
    Setting("CAMPAIGN_CLOCK_SLACK_SECONDS", 3.0, float,
            "How far a claim's media time may run ahead of the wall-clock time since the viewer's session began."),
    Setting("CAMPAIGN_MIN_CLAIM_INTERVAL_SECONDS", 0.25, float,
            "Fastest a human taps two fragments: a viewer's claims closer together are refused (too_fast)."),
    Setting("CAMPAIGN_CLAIM_RATE_PER_MINUTE", 30.0, float, "Claims a minute one campaign session may make."),
    Setting("CAMPAIGN_CLAIM_BURST", 6, int, "Claims one campaign session may make at once before the rate applies."),
    Setting("CAMPAIGN_SESSION_SECONDS", 6 * 3600, int, "Lifetime of a campaign viewer session token."),
    Setting("MODELS_DIR", "", str, "Folder of model weights and their manifest.json; empty: the models/ folder."),
    Setting("TORCHVISION_MODEL", "detector-{merchant_id}", str,
            "Manifest name of the torchvision detector ({merchant_id} is replaced: one fine-tuned model per shop)."),
    Setting("TORCHVISION_DEVICE", "auto", str,
            "Device of the torchvision detector: 'auto' (CUDA if present), 'cuda' or 'cpu'."),
    Setting("TORCHVISION_BATCH_SIZE", 8, int, "Frames per torchvision forward pass (on CUDA)."),
    Setting("TORCHVISION_MIN_SCORE", 0.5, float, "Lowest score of a torchvision detection that is kept."),
)

SETTINGS_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}

# Flask's own keys that may appear in test_config without being ours.
_FLASK_PASSTHROUGH = {"SERVER_NAME", "PROPAGATE_EXCEPTIONS"}


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    return {str(k).upper(): v for k, v in data.items()}


def _check_known(source: str, values: Mapping[str, Any]) -> None:
    unknown = sorted(k for k in values if k not in SETTINGS_BY_NAME and k not in _FLASK_PASSTHROUGH)
    if unknown:
        raise ConfigError(
            f"unknown setting(s) in {source}: {', '.join(unknown)}; "
            f"run 'media-service config' to list the valid names"
        )


def load_settings(test_config: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Resolve every setting from defaults, config file, environment and ``test_config``."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {s.name: s.default for s in SETTINGS}

    env_values = {k[len(ENV_PREFIX):]: v for k, v in environ.items() if k.startswith(ENV_PREFIX)}
    config_file = env_values.pop("CONFIG_FILE", None)
    _check_known("environment (MEDIA_SERVICE_*)", env_values)
    test_values = {k.upper(): v for k, v in (test_config or {}).items()}
    _check_known("test_config", test_values)

    data_dir = Path(test_values.get("DATA_DIR", env_values.get("DATA_DIR", raw["DATA_DIR"])))
    candidate = Path(config_file) if config_file else data_dir / "config.toml"
    if config_file or candidate.exists():
        file_values = _read_file(candidate)
        _check_known(str(candidate), file_values)
        raw.update(file_values)
    raw.update(env_values)
    raw.update(test_values)

    settings: dict[str, Any] = {}
    for name, value in raw.items():
        setting = SETTINGS_BY_NAME.get(name)
        if setting is None:
            settings[name] = value
            continue
        try:
            settings[name] = None if value is None else setting.parse(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"setting {name}: {exc}") from exc
    return _derive(settings)


def _derive(settings: dict[str, Any]) -> dict[str, Any]:
    data_dir = Path(settings["DATA_DIR"]).resolve()
    settings["DATA_DIR"] = str(data_dir)
    if not settings["DATABASE_URL"]:
        settings["DATABASE_URL"] = f"sqlite:///{data_dir / 'media-service.db'}"
    if not settings["STORAGE_ROOT"]:
        settings["STORAGE_ROOT"] = str(data_dir / "storage")
    if not settings["SECRET_KEY"]:
        settings["SECRET_KEY"] = _persistent_secret(data_dir)
    return settings


def _persistent_secret(data_dir: Path) -> str:
    """Create the secret key once per data folder so every process of an instance shares it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "secret_key"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # first writer wins when several processes start at once
        tmp.unlink(missing_ok=True)
    return path.read_text().strip()


def describe_settings() -> list[dict[str, Any]]:
    """Name, environment variable, default and description of every setting (for the CLI)."""
    return [{"name": s.name, "env": ENV_PREFIX + s.name, "default": s.default,
             "description": s.description} for s in SETTINGS]
