"""Database tables (SQLAlchemy 2 ORM). The job table is the source of truth for all work.

Over 500 lines on purpose: every table in one module, so the schema reads in one place and each Alembic
migration has one file to mirror."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """Public ids are prefixed random tokens: unguessable and self-describing in logs."""
    return f"{prefix}_{secrets.token_hex(12)}"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON}


class Merchant(Base):
    __tablename__ = "merchants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("mer"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    api_keys: Mapped[list[ApiKey]] = relationship(back_populates="merchant", cascade="all, delete-orphan")


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("key"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"), index=True)
    lookup: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200), default="")
    scopes: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    merchant: Mapped[Merchant] = relationship(back_populates="api_keys")


class Asset(Base):
    __tablename__ = "assets"
    __table_args__ = (UniqueConstraint("merchant_id", "sha256", name="uq_assets_merchant_sha256"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ast"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(32))
    mime: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(300))
    filename: Mapped[str] = mapped_column(String(300), default="")
    width: Mapped[int | None] = mapped_column(default=None)
    height: Mapped[int | None] = mapped_column(default=None)
    duration: Mapped[float | None] = mapped_column(Float, default=None)
    frames: Mapped[int | None] = mapped_column(default=None)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    source: Mapped[str] = mapped_column(String(16), default="multipart")
    thumbnail_key: Mapped[str | None] = mapped_column(String(300), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Upload(Base):
    """A tus resumable upload; becomes an ``Asset`` when its last byte arrives and passes validation."""

    __tablename__ = "uploads"
    __table_args__ = (UniqueConstraint("merchant_id", "idempotency_key", name="uq_uploads_idempotency"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("upl"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"), index=True)
    length: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(Integer, default=0)
    upload_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    filename: Mapped[str] = mapped_column(String(300), default="")
    expected_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), default=None)
    state: Mapped[str] = mapped_column(String(16), default="active")  # active|completed|rejected
    asset_id: Mapped[str | None] = mapped_column(String(40), default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("merchant_id", "idempotency_key", name="uq_jobs_idempotency"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("job"))
    merchant_id: Mapped[str | None] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"),
                                                    index=True, default=None)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    lease_owner: Mapped[str | None] = mapped_column(String(100), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("whk"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(100))
    events: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """Outbox row: written in the same transaction as the event, delivered and retried by workers."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("dlv"))
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    last_status: Mapped[int | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)


class WorkerHeartbeat(Base):
    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    current_job_id: Mapped[str | None] = mapped_column(String(40), default=None)


# Videos ----------------------------------------------------------------------------------------------


class Video(Base):
    """One processing of an asset with a profile: its outputs, flags, loudness and moderation state.

    ``state`` is ``processing`` until the job's success hook sets ``ready``; a failed or cancelled job is
    read from the job row (the job table stays the one source of truth for work in flight).
    """

    __tablename__ = "videos"
    __table_args__ = (UniqueConstraint("merchant_id", "asset_id", "profile", "options_key",
                                       name="uq_videos_asset_profile_options"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("vid"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"), index=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    profile: Mapped[str] = mapped_column(String(32))
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    options_key: Mapped[str] = mapped_column(String(200), default="")
    job_id: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
    state: Mapped[str] = mapped_column(String(16), default="processing", index=True)
    output_prefix: Mapped[str | None] = mapped_column(String(300), default=None)
    outputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    loudness: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    analysis: Mapped[dict[str, Any]] = mapped_column(default=dict)
    signature: Mapped[list[str]] = mapped_column(JSON, default=list)
    duration: Mapped[float | None] = mapped_column(Float, default=None)
    width: Mapped[int | None] = mapped_column(default=None)
    height: Mapped[int | None] = mapped_column(default=None)
    moderation_status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    moderation_reason: Mapped[str | None] = mapped_column(Text, default=None)
    moderated_by: Mapped[str | None] = mapped_column(String(40), default=None)
    moderated_at: Mapped[datetime | None] = mapped_column(default=None)
    order_id: Mapped[str | None] = mapped_column(String(200), default=None)
    sku: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    ready_at: Mapped[datetime | None] = mapped_column(default=None)


class VideoPolicy(Base):
    """A merchant's moderation policy for buyer-show videos: never/always/if_clean auto-approval."""

    __tablename__ = "video_policies"

    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"), primary_key=True)
    buyer_show_auto_approve: Mapped[str] = mapped_column(String(16), default="never")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class UploadToken(Base):
    """A buyer upload token: minted by a merchant, good for one upload, bound to an order or SKU.

    Stored like API keys: a lookup part and a SHA-256 of the whole token, never the token itself.
    """

    __tablename__ = "upload_tokens"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("utk"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"), index=True)
    lookup: Mapped[str] = mapped_column(String(32), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str | None] = mapped_column(String(200), default=None)
    sku: Mapped[str | None] = mapped_column(String(200), default=None)
    max_bytes: Mapped[int] = mapped_column(Integer)
    process_profile: Mapped[str | None] = mapped_column(String(32), default=None)  # start a video when done
    state: Mapped[str] = mapped_column(String(16), default="unused")  # unused|claimed|uploading|used|revoked
    upload_id: Mapped[str | None] = mapped_column(String(40), default=None)
    asset_id: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
    expires_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class Batch(Base):
    """A batch of videos processed with one profile (from the API or the ``batch videos`` command)."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("bat"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"), index=True)
    profile: Mapped[str] = mapped_column(String(32))
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    source: Mapped[str] = mapped_column(String(16), default="api")
    total: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    items: Mapped[list[BatchItem]] = relationship(back_populates="batch", cascade="all, delete-orphan",
                                                  order_by="BatchItem.position")


class BatchItem(Base):
    """One input of a batch: the asset and video it became, or why it was refused."""

    __tablename__ = "batch_items"
    __table_args__ = (UniqueConstraint("batch_id", "position", name="uq_batch_items_position"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("bti"))
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    input_name: Mapped[str] = mapped_column(String(300), default="")
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    asset_id: Mapped[str | None] = mapped_column(String(40), default=None)
    video_id: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
    skipped: Mapped[bool] = mapped_column(Boolean, default=False)  # already processed before this batch
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)

    batch: Mapped[Batch] = relationship(back_populates="items")


# --- Embedding (the viewer widget) ----------------------------------------------------------------


class EmbedSettings(Base):
    """Per-merchant embedding policy: the exact origins allowed to show the widget (CSP frame-ancestors)."""

    __tablename__ = "embed_settings"

    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"), primary_key=True)
    allowed_origins: Mapped[list[str]] = mapped_column(default=list)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class EmbedEventCount(Base):
    """How many interactions of one type the widget reported for one embedded item on one (UTC) day.

    Events are counted, not stored one row each: a public embed token sits in a page, so a script can send
    events as fast as the rate limits allow, and the table must stay the size of (items x days x types).
    """

    __tablename__ = "embed_event_counts"

    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"), primary_key=True)
    target_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    type: Mapped[str] = mapped_column(String(32), primary_key=True)
    target_kind: Mapped[str] = mapped_column(String(16))
    count: Mapped[int] = mapped_column(Integer, default=0)


# --- Panoramas and spins (issue 4) ----------------------------------------------------------------------


class Panorama(Base):
    """A panorama stitched from a merchant's photos; its outputs are recorded when the job succeeds."""

    __tablename__ = "panoramas"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("pan"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    asset_ids: Mapped[list[str]] = mapped_column(default=list)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="processing")  # processing|ready
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # Points of interest placed on the panorama: {"id", "yaw", "pitch", "label"} (degrees, as the widget reads them)
    hotspots: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class Spin(Base):
    """A product spin built from a turntable photo set or video; outputs recorded when the job succeeds."""

    __tablename__ = "spins"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("spn"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    source: Mapped[str] = mapped_column(String(16))  # photos|video
    asset_ids: Mapped[list[str]] = mapped_column(default=list)
    video_asset_id: Mapped[str | None] = mapped_column(String(40), default=None)
    frames: Mapped[int | None] = mapped_column(Integer, default=None)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="processing")  # processing|ready
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


# --- Products and one-tap extraction (issue 5) -------------------------------------------------------


class Product(Base):
    """A catalog item of a merchant: card fields for the cart and indexed photos for detection.

    ``images`` lists the photos in order: ``{"asset_id", "features_key", "keypoints", "warning"}``; the
    features (keypoints, descriptors, mask) live in storage under ``features_key`` and are computed once,
    when the photo is added.
    """

    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("merchant_id", "sku", name="uq_products_merchant_sku"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("prd"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"), index=True)
    sku: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300))
    price: Mapped[str | None] = mapped_column(String(32), default=None)  # decimal text, e.g. "19.90"
    currency: Mapped[str | None] = mapped_column(String(3), default=None)
    url: Mapped[str | None] = mapped_column(Text, default=None)
    images: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class VideoIndex(Base):
    """One run of product detection and tracking over a video asset (the newest ready one answers taps)."""

    __tablename__ = "video_indexes"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("vix"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"), index=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    video_id: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
    job_id: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
    detector: Mapped[str] = mapped_column(String(32))
    fps: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)  # queued|ready (else: the job)
    catalog_fingerprint: Mapped[str] = mapped_column(String(64), default="")
    output_prefix: Mapped[str | None] = mapped_column(String(300), default=None)
    contact_sheet_key: Mapped[str | None] = mapped_column(String(300), default=None)
    width: Mapped[int | None] = mapped_column(default=None)
    height: Mapped[int | None] = mapped_column(default=None)
    frame_count: Mapped[int | None] = mapped_column(default=None)
    duration: Mapped[float | None] = mapped_column(Float, default=None)
    stats: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    ready_at: Mapped[datetime | None] = mapped_column(default=None)


class ProductTrack(Base):
    """A product followed through an indexed video: its boxes over time, SKU votes and the merchant's review.

    ``samples``: ``{"frame", "t", "box": [x0, y0, x1, y1], "score", "sku", "cut": [x0, y0, x1, y1]}`` with
    coordinates normalised to 0..1 of the displayed frame (``cut``: the box of the product's outline).
    ``state`` is ``detected``, ``confirmed`` (the merchant confirmed or corrected the SKU into
    ``confirmed_sku``) or ``rejected`` (never offered to shoppers).
    """

    __tablename__ = "product_tracks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("trk"))
    index_id: Mapped[str] = mapped_column(ForeignKey("video_indexes.id", ondelete="CASCADE"), index=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str | None] = mapped_column(String(100), default=None)
    sku_confidence: Mapped[float] = mapped_column(Float, default=0.0)
    candidates: Mapped[list[Any]] = mapped_column(JSON, default=list)
    start_t: Mapped[float] = mapped_column(Float)
    end_t: Mapped[float] = mapped_column(Float)
    samples: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # One outline polygon (or null) per sample, for rendering cut-outs; not loaded with the row (taps
    # only need the samples, and parsing every outline on every tap would dominate their latency).
    outlines: Mapped[list[Any]] = mapped_column(JSON, default=list, deferred=True)
    state: Mapped[str] = mapped_column(String(16), default="detected")
    confirmed_sku: Mapped[str | None] = mapped_column(String(100), default=None)
    reviewed_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- Logo prize campaigns -----------------------------------------------------------------------------


class Campaign(Base):
    """A fun-logo prize campaign on a merchant's video: its rules, its render (job) and its draw.

    ``state``: ``draft`` (rendering or rendered: see the job), ``published`` (shoppers collect), ``closed``
    (entries frozen, Merkle root published) and ``drawn`` (seed revealed, winners picked). ``plan`` holds
    the fragments' windows, slots and hit polygons once the render job succeeded; ``secret_seed`` is never
    shown before the draw, only its SHA-256 ``seed_commitment``.
    """

    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("cmp"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"), index=True)
    video_id: Mapped[str] = mapped_column(String(40), index=True)
    logo_asset_id: Mapped[str] = mapped_column(String(40), index=True)
    title: Mapped[str] = mapped_column(String(200))
    mode: Mapped[str] = mapped_column(String(16))  # overlay|burned
    state: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    job_id: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
    rendered: Mapped[bool] = mapped_column(Boolean, default=False)
    fragment_count: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    rule: Mapped[dict[str, Any]] = mapped_column(default=dict)
    starts_at: Mapped[datetime | None] = mapped_column(default=None)
    ends_at: Mapped[datetime | None] = mapped_column(default=None)
    prizes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    max_entries: Mapped[int | None] = mapped_column(Integer, default=None)
    rules_text: Mapped[str] = mapped_column(Text, default="")
    odds_text: Mapped[str] = mapped_column(Text, default="")
    alternative_entry: Mapped[str] = mapped_column(Text, default="")
    plan: Mapped[dict[str, Any]] = mapped_column(default=dict)
    outputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secret_seed: Mapped[str | None] = mapped_column(String(64), default=None)
    seed_commitment: Mapped[str | None] = mapped_column(String(64), default=None)
    merkle_root: Mapped[str | None] = mapped_column(String(64), default=None)
    entry_count: Mapped[int | None] = mapped_column(Integer, default=None)
    winners: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    published_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    drawn_at: Mapped[datetime | None] = mapped_column(default=None)


class CampaignSession(Base):
    """A viewer's signed session in a campaign: where playback was and what was revealed to it."""

    __tablename__ = "campaign_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("cvs"))
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    shopper_key: Mapped[str] = mapped_column(String(64), index=True)
    started: Mapped[float] = mapped_column(Float)  # unix seconds
    media_start: Mapped[float] = mapped_column(Float, default=0.0)
    last_t: Mapped[float] = mapped_column(Float, default=0.0)
    last_claim: Mapped[float | None] = mapped_column(Float, default=None)
    revealed: Mapped[list[Any]] = mapped_column(JSON, default=list)
    claims: Mapped[int] = mapped_column(Integer, default=0)


class CampaignClaim(Base):
    """One claim a viewer made (accepted or not, with the stable reason); the nonce is used once."""

    __tablename__ = "campaign_claims"
    __table_args__ = (UniqueConstraint("campaign_id", "nonce", name="uq_campaign_claims_nonce"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ccl"))
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[str] = mapped_column(String(40), index=True)
    nonce: Mapped[str] = mapped_column(String(64))
    fragment: Mapped[int | None] = mapped_column(Integer, default=None)
    t: Mapped[float] = mapped_column(Float)
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    accepted: Mapped[bool] = mapped_column(Boolean, default=False)
    code: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CampaignCollect(Base):
    """A fragment a shopper collected: once per (campaign, shopper, fragment)."""

    __tablename__ = "campaign_collects"
    __table_args__ = (UniqueConstraint("campaign_id", "shopper_key", "fragment", name="uq_campaign_collects"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ccf"))
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    shopper_key: Mapped[str] = mapped_column(String(64))
    fragment: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CampaignEntry(Base):
    """A prize-draw entry: one per (campaign, shopper), by this table's unique constraint."""

    __tablename__ = "campaign_entries"
    __table_args__ = (UniqueConstraint("campaign_id", "shopper_key", name="uq_campaign_entries_shopper"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ent"))
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    shopper_key: Mapped[str] = mapped_column(String(64))
    route: Mapped[str] = mapped_column(String(16), default="collect")  # collect|alternative
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- The merchant's console (web back office) ----------------------------------------------------------


class ConsoleUser(Base):
    """A person who signs in to a merchant's console with an email and a password.

    ``role`` is ``owner``, ``editor`` or ``reviewer`` (approve/reject only). An invited user has an
    ``invite_hash`` (SHA-256 of the one-time invitation token) and no password until the invitation is
    accepted. ``password_hash`` is ``scrypt$<n>$<r>$<p>$<salt>$<hash>`` (base64), never the password.
    """

    __tablename__ = "console_users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("usr"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    invite_hash: Mapped[str | None] = mapped_column(String(64), default=None, unique=True)
    invite_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(default=None)
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)


class ConsoleSession(Base):
    """A signed-in browser: the cookie holds a random token, the row only its SHA-256 (``token_hash``).

    ``csrf_token`` goes into every form and script request of the session's pages; ``notices`` are the
    one-line messages shown on the next page (what a redirect after a form reports).
    """

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("css"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("console_users.id", ondelete="CASCADE"), index=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    notices: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
