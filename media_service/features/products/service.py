"""The product catalog: merchants' items (SKU, card fields for the cart) and their indexed photos.

A product photo is an image asset. Its features (keypoints, descriptors, mask, outline) are computed
once, when the photo is added to a product, and stored as an ``.npz`` beside the catalog, keyed by the
asset and the feature settings, so matching never recomputes them and two products sharing a photo
share the file. Detectors of a catalog are cached per process, keyed by a fingerprint of the catalog.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from media_service import media_options
from media_service.db import begin_write
from media_service.errors import BadRequest, Conflict, InvalidMedia, NotFound
from media_service.features.assets.service import get_asset
from media_service.media.detection.catalog import (
    FEATURE_KINDS,
    FEATURE_VERSION,
    CatalogDetector,
    CatalogDetectorConfig,
    CatalogProduct,
    ProductPhotoFeatures,
    index_product_photo,
)
from media_service.media.detection.detections import Detections
from media_service.media.ingest.images import open_image_as_array
from media_service.models import Asset, Product, utcnow
from media_service.storage import Storage
from media_service.web.files import signed_url

#: SKUs travel in URL paths (``/v1/products/<sku>``): letters, digits and ``. _ : -``, up to 100 characters.
SKU_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
CURRENCY_PATTERN = re.compile(r"^[A-Z]{3}$")
FEW_KEYPOINTS = 40


def check_sku(value: Any) -> str:
    if not isinstance(value, str) or not SKU_PATTERN.match(value):
        raise BadRequest("sku must be 1-100 characters: letters, digits and . _ : - (starting with a letter or "
                         "digit)", code="invalid_sku")
    return value


def _price(value: Any) -> str | None:
    """A non-negative decimal (number or string) as canonical text; money is never a float here."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadRequest("price must be a number or a decimal string such as \"19.90\"", code="invalid_price")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise BadRequest("price must be a number or a decimal string such as \"19.90\"", code="invalid_price") from None
    if not amount.is_finite() or amount < 0 or amount > Decimal("1e12") or -amount.as_tuple().exponent > 4:  # type: ignore[operator]
        raise BadRequest("price must be between 0 and 10^12 with at most 4 decimals", code="invalid_price")
    return format(amount, "f")


def _url(value: Any) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.netloc or len(value) > 2000:
        raise BadRequest("url must be an absolute http(s) URL of at most 2000 characters", code="invalid_url")
    return value


def parse_fields(body: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
    """Validated product fields of a request body (only those present when ``partial``)."""
    known = {"sku", "title", "price", "currency", "url", "image_asset_ids"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}; a product has {', '.join(sorted(known))}",
                         code="unknown_fields")
    if not partial:
        missing = [name for name in ("sku", "title") if name not in body]
        if missing:
            raise BadRequest(f"missing field(s): {', '.join(missing)}", code="missing_fields")
    fields: dict[str, Any] = {}
    if "sku" in body:
        fields["sku"] = check_sku(body["sku"])
    if "title" in body:
        title = body["title"]
        if not isinstance(title, str) or not 1 <= len(title.strip()) <= 300:
            raise BadRequest("title must be 1-300 characters", code="invalid_title")
        fields["title"] = title.strip()
    if "price" in body:
        fields["price"] = _price(body["price"])
    if "currency" in body:
        currency = body["currency"]
        if currency is not None and (not isinstance(currency, str) or not CURRENCY_PATTERN.match(currency)):
            raise BadRequest("currency must be an ISO 4217 code such as \"EUR\"", code="invalid_currency")
        fields["currency"] = currency
    if "url" in body:
        fields["url"] = _url(body["url"])
    if "image_asset_ids" in body:
        ids = body["image_asset_ids"]
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(set(ids)) != len(ids):
            raise BadRequest("image_asset_ids must be a list of distinct asset ids (ast_...)", code="invalid_images")
        fields["image_asset_ids"] = ids
    return fields


# ------------------------------------------------------------------------------------------- photos


def features_key(merchant_id: str, asset_id: str, kind: str, side: int) -> str:
    return f"catalog/{merchant_id}/features/{asset_id}-{kind}-{side}-v{FEATURE_VERSION}.npz"


def _feature_settings(settings: Mapping[str, Any]) -> tuple[str, int]:
    kind = str(settings["PRODUCT_FEATURES"])
    if kind not in FEATURE_KINDS:
        raise BadRequest(f"setting PRODUCT_FEATURES must be one of {', '.join(FEATURE_KINDS)}", code="config_error")
    return kind, int(settings["PRODUCT_PHOTO_SIDE"])


def index_photos(session: Session, storage: Storage, settings: Mapping[str, Any], merchant_id: str,
                 asset_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Index each photo once (reusing stored features) and describe it for the product row."""
    limit = int(settings["PRODUCT_MAX_IMAGES"])
    if len(asset_ids) > limit:
        raise BadRequest(f"a product has at most {limit} photos; got {len(asset_ids)}", code="too_many_images")
    kind, side = _feature_settings(settings)

    images: list[dict[str, Any]] = []
    for asset_id in asset_ids:
        asset = get_asset(session, merchant_id, asset_id)
        if asset.kind != "image":
            raise InvalidMedia(f"asset {asset_id} is a {asset.kind}; product photos must be images",
                               code="not_an_image")
        key = features_key(merchant_id, asset.id, kind, side)
        if storage.exists(key):
            with storage.open(key) as handle:
                features = ProductPhotoFeatures.from_bytes(handle.read())
        else:
            with storage.local_path(asset.storage_key) as path:
                pixels = open_image_as_array(path, media_options.ingest_limits(settings))
            features = index_product_photo(pixels, kind=kind, max_side=side)
            storage.put_stream(key, io.BytesIO(features.to_bytes()))
        entry: dict[str, Any] = {"asset_id": asset.id, "features_key": key, "keypoints": len(features.keypoints)}
        if len(features.keypoints) < FEW_KEYPOINTS:
            entry["warning"] = (f"only {len(features.keypoints)} distinctive points: the catalog detector may miss "
                                "this product; add a sharper photo, or one showing its printed or textured side")
        images.append(entry)
    return images


# ----------------------------------------------------------------------------------------- products


def get_product(session: Session, merchant_id: str, sku: str) -> Product:
    """A merchant's product; another merchant's SKU is simply not found."""
    product = session.scalar(select(Product).where(Product.merchant_id == merchant_id, Product.sku == sku))
    if product is None:
        raise NotFound(f"no product with SKU {sku!r}", code="product_not_found")
    return product


def products_by_sku(session: Session, merchant_id: str, skus: Sequence[str]) -> dict[str, Product]:
    if not skus:
        return {}
    rows = session.scalars(select(Product).where(Product.merchant_id == merchant_id, Product.sku.in_(set(skus))))
    return {p.sku: p for p in rows}


def create_product(session: Session, storage: Storage, settings: Mapping[str, Any], merchant_id: str,
                   fields: Mapping[str, Any]) -> Product:
    """Add a product and index its photos; 409 when the SKU exists."""
    if session.scalar(select(Product.id).where(Product.merchant_id == merchant_id, Product.sku == fields["sku"])):
        raise Conflict(f"a product with SKU {fields['sku']!r} exists; PATCH /v1/products/{fields['sku']} changes it",
                       code="product_exists")
    images = index_photos(session, storage, settings, merchant_id, fields.get("image_asset_ids", []))
    begin_write(session)
    product = Product(merchant_id=merchant_id, sku=fields["sku"], title=fields["title"], price=fields.get("price"),
                      currency=fields.get("currency"), url=fields.get("url"), images=images)
    session.add(product)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"a product with SKU {fields['sku']!r} exists", code="product_exists") from None
    return product


def update_product(session: Session, storage: Storage, settings: Mapping[str, Any], product: Product,
                   fields: Mapping[str, Any]) -> Product:
    """Change card fields and/or photos (new photos are indexed; the SKU itself cannot change)."""
    if "sku" in fields and fields["sku"] != product.sku:
        raise BadRequest("the SKU of a product cannot change; create a new product instead", code="sku_immutable")
    images = None
    if "image_asset_ids" in fields:
        images = index_photos(session, storage, settings, product.merchant_id, fields["image_asset_ids"])
    begin_write(session)
    for name in ("title", "price", "currency", "url"):
        if name in fields:
            setattr(product, name, fields[name])
    if images is not None:
        product.images = images
    product.updated_at = utcnow()
    session.commit()
    return product


def delete_product(session: Session, product: Product) -> None:
    """Remove a product (its stored features stay while another product may share the photo)."""
    begin_write(session)
    session.delete(product)
    session.commit()


def product_card(session: Session, product: Product) -> dict[str, Any]:
    """What the widget needs to show the product and add it to the cart."""
    image_url = None
    if product.images:
        asset = session.get(Asset, product.images[0]["asset_id"])
        if asset is not None:
            image_url = signed_url(asset.thumbnail_key or asset.storage_key)
    return {"sku": product.sku, "title": product.title, "price": product.price, "currency": product.currency,
            "url": product.url, "image_url": image_url}


def product_to_dict(session: Session, product: Product) -> dict[str, Any]:
    from flask import url_for

    return {
        "id": product.id, **product_card(session, product),
        "images": [{k: image[k] for k in ("asset_id", "keypoints", "warning") if k in image}
                   for image in product.images or []],
        "created_at": product.created_at.isoformat(), "updated_at": product.updated_at.isoformat(),
        "links": {"self": url_for("products.get_product", sku=product.sku)},
    }


# ------------------------------------------------------------------------------------ catalog for jobs


def catalog_entries(session: Session, merchant_id: str) -> list[dict[str, Any]]:
    """The merchant's catalog as storage keys (what an index job needs, without the database)."""
    rows = session.execute(select(Product.sku, Product.images).where(Product.merchant_id == merchant_id)
                           .order_by(Product.sku)).all()
    return [{"sku": sku, "features_keys": [image["features_key"] for image in images or []]}
            for sku, images in rows if images]


def catalog_fingerprint(entries: Sequence[Mapping[str, Any]]) -> str:
    """Changes whenever a product or photo is added, removed or re-indexed."""
    digest = hashlib.sha256()
    for entry in entries:
        digest.update(entry["sku"].encode() + b"\0" + "\0".join(entry["features_keys"]).encode() + b"\n")
    return digest.hexdigest()


def load_catalog(storage: Storage, entries: Sequence[Mapping[str, Any]]) -> list[CatalogProduct]:
    """Read the stored features of every photo of ``entries``."""
    products = []
    for entry in entries:
        photos = []
        for key in entry["features_keys"]:
            with storage.open(key) as handle:
                photos.append(ProductPhotoFeatures.from_bytes(handle.read()))
        products.append(CatalogProduct(sku=entry["sku"], photos=photos))
    return products


def detector_config(settings: Mapping[str, Any]) -> CatalogDetectorConfig:
    return CatalogDetectorConfig(kind=str(settings["PRODUCT_FEATURES"]), max_side=int(settings["PRODUCT_DETECT_SIDE"]),
                                 min_score=float(settings["PRODUCT_MIN_SCORE"]))


class _SharedDetector:
    """A cached detector used by several request threads: one frame at a time."""

    def __init__(self, detector: CatalogDetector) -> None:
        self.detector = detector
        self.lock = threading.Lock()

    def detect(self, frame: Any) -> Detections:
        with self.lock:
            return self.detector.detect(frame)


_CACHE: OrderedDict[tuple[Any, ...], _SharedDetector] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def cached_catalog_detector(storage: Storage, settings: Mapping[str, Any], merchant_id: str,
                            entries: Sequence[Mapping[str, Any]]) -> _SharedDetector:
    """The merchant's catalog detector, built once per catalog version and process (LRU)."""
    config = detector_config(settings)
    key = (merchant_id, catalog_fingerprint(entries), config)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
            return cached
    detector = _SharedDetector(CatalogDetector(load_catalog(storage, entries), config))
    with _CACHE_LOCK:
        _CACHE[key] = detector
        while len(_CACHE) > max(1, int(settings["PRODUCT_CATALOG_CACHE"])):
            _CACHE.popitem(last=False)
    return detector
