"""``/v1/products``: the catalog (SKU, card fields, indexed photos) and ``/v1/settings/cart-webhook``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, url_for
from sqlalchemy import select

from media_service.db import get_session
from media_service.features.products import service as products
from media_service.models import Product
from media_service.security.api_keys import current_merchant_id, require
from media_service.web.requests import created, json_body, page

bp = Blueprint("products", __name__)


def _storage() -> Any:
    return current_app.extensions["storage"]


@bp.post("/v1/products")
@require("assets:write")
def create_product() -> Any:
    """Add a product; its photos (image assets) are indexed now, so detection never recomputes them."""
    fields = products.parse_fields(json_body(), partial=False)
    session = get_session()
    product = products.create_product(session, _storage(), current_app.config, current_merchant_id(), fields)
    return created(products.product_to_dict(session, product), url_for("products.get_product", sku=product.sku))


@bp.get("/v1/products")
@require("assets:read")
def list_products() -> Any:
    session = get_session()
    rows, next_cursor = page(session, select(Product).where(Product.merchant_id == current_merchant_id()), Product)
    return {"items": [products.product_to_dict(session, p) for p in rows], "next_cursor": next_cursor}


@bp.get("/v1/products/<sku>")
@require("assets:read")
def get_product(sku: str) -> Any:
    session = get_session()
    return products.product_to_dict(session, products.get_product(session, current_merchant_id(), sku))


@bp.patch("/v1/products/<sku>")
@require("assets:write")
def update_product(sku: str) -> Any:
    fields = products.parse_fields(json_body(), partial=True)
    session = get_session()
    product = products.get_product(session, current_merchant_id(), sku)
    product = products.update_product(session, _storage(), current_app.config, product, fields)
    return products.product_to_dict(session, product)


@bp.delete("/v1/products/<sku>")
@require("assets:write")
def delete_product(sku: str) -> Any:
    session = get_session()
    products.delete_product(session, products.get_product(session, current_merchant_id(), sku))
    return "", 204
