"""The OpenAPI 3.1 description of the public API (a test keeps it equal to the real routes)."""

from __future__ import annotations

from typing import Any

from media_service import __version__
from media_service.webhooks import known_events

PROBLEM = {"$ref": "#/components/responses/Problem"}


def _op(summary: str, *, tag: str, ok: str = "200", body: dict[str, Any] | None = None,
        errors: tuple[str, ...] = ("400", "401", "404"), params: list[dict[str, Any]] | None = None,
        secured: bool = True, schema: str | None = None) -> dict[str, Any]:
    responses: dict[str, Any] = {ok: {"description": "Success"}}
    if schema:
        responses[ok]["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
    for code in errors:
        responses[code] = PROBLEM
    operation: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if body:
        operation["requestBody"] = body
    if params:
        operation["parameters"] = params
    if not secured:
        operation["security"] = []
    return operation


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _header(name: str, required: bool = True, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": required, "schema": schema or {"type": "string"}}


PAGING = [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
          {"name": "cursor", "in": "query", "schema": {"type": "string"}}]
TUS = _header("Tus-Resumable", schema={"type": "string", "const": "1.0.0"})


# Panoramas and spins
_ASSET_IDS = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
PANORAMA_REQUEST = {"type": "object", "required": ["asset_ids"], "properties": {
    "asset_ids": {**_ASSET_IDS, "minItems": 2},
    "options": {"type": "object", "additionalProperties": False, "properties": {
        "projection": {"enum": ["auto", "spherical", "cylindrical", "flat"]},
        "detector": {"enum": ["auto", "sift", "orb"]},
        "crop": {"type": "boolean"},
        "max_output_megapixels": {"type": "number", "minimum": 0.1}}}}}
SPIN_REQUEST = {"type": "object", "properties": {
    "asset_ids": {**_ASSET_IDS, "minItems": 4},
    "video_asset_id": {"type": "string"},
    "frames": {"enum": [24, 36, 72]},
    "options": {"type": "object", "additionalProperties": False, "properties": {
        "clean_background": {"type": "boolean"},
        "background_color": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"},
        "widths": {"type": "array", "items": {"type": "integer", "minimum": 64, "maximum": 4096},
                   "minItems": 1, "maxItems": 6}}}}}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


# --- Products and one-tap extraction (issue 5) -------------------------------------------------------

SKU_SCHEMA = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"}
PRODUCT_FIELDS = {
    "title": {"type": "string", "minLength": 1, "maxLength": 300},
    "price": {"type": ["string", "number", "null"], "description": "decimal, e.g. \"19.90\""},
    "currency": {"type": ["string", "null"], "pattern": "^[A-Z]{3}$"},
    "url": {"type": ["string", "null"], "format": "uri"},
    "image_asset_ids": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
}
TAP_REQUEST = {"oneOf": [
    {"type": "object", "required": ["t", "x", "y"], "additionalProperties": False, "properties": {
        "t": {"type": "number", "minimum": 0}, "x": {"type": "number", "minimum": 0, "maximum": 1},
        "y": {"type": "number", "minimum": 0, "maximum": 1}}},
    {"type": "object", "required": ["t", "polygon"], "additionalProperties": False, "properties": {
        "t": {"type": "number", "minimum": 0},
        "polygon": {"type": "array", "minItems": 3, "maxItems": 200, "items": {
            "type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number", "minimum": 0, "maximum": 1}}}}},
]}
EMBED_TOKEN = {"name": "embed_token", "in": "query", "required": False, "schema": {"type": "string"},
               "description": "The page's embed token for this video (widget calls, instead of an API key)."}
PRODUCT_SCHEMAS = {
    "Product": {"type": "object", "required": ["id", "sku", "title"], "properties": {
        "id": {"type": "string"}, "sku": {"type": "string"}, **PRODUCT_FIELDS,
        "image_url": {"type": ["string", "null"]}, "images": {"type": "array", "items": {"type": "object"}}}},
    "VideoIndex": {"type": "object", "required": ["id", "state", "detector"], "properties": {
        "id": {"type": "string"}, "video_id": {"type": "string"}, "asset_id": {"type": "string"},
        "state": {"enum": ["queued", "running", "ready", "failed", "cancelled"]}, "progress": {"type": "number"},
        "detector": {"type": "string"}, "fps": {"type": "number"}, "track_count": {"type": "integer"},
        "contact_sheet_url": {"type": ["string", "null"]}, "job": {"type": ["object", "null"]}}},
    "Track": {"type": "object", "required": ["id", "number", "state"], "properties": {
        "id": {"type": "string"}, "number": {"type": "integer"}, "sku": {"type": ["string", "null"]},
        "detected_sku": {"type": ["string", "null"]}, "sku_confidence": {"type": "number"},
        "candidates": {"type": "array", "items": {"type": "object"}},
        "state": {"enum": ["detected", "confirmed", "rejected"]}, "start": {"type": "number"},
        "end": {"type": "number"}}},
    "TapAnswer": {"type": "object", "required": ["hit", "candidates"], "properties": {
        "hit": {"type": "boolean"}, "source": {"enum": ["track", "on_demand", None]},
        "product": {"type": ["object", "null"]}, "candidates": {"type": "array", "items": {"type": "object"}},
        "box": {"type": ["array", "null"], "items": {"type": "number"}},
        "cutout": {"type": ["object", "null"]}, "track_id": {"type": ["string", "null"]},
        "frame_t": {"type": ["number", "null"]}, "cart": {"type": ["object", "null"]},
        "confidence": {"type": ["number", "null"]}, "uncertain": {"type": "boolean"},
        "reason": {"type": ["string", "null"]}}},
}


def _product_paths() -> dict[str, Any]:
    """Catalog, cart webhook, and product extraction on videos (``<video_id>``: ``ast_...`` or ``vid_...``)."""
    sku, video_id, track_id = _path_param("sku"), _path_param("video_id"), _path_param("track_id")
    return {
        "/v1/products": {
            "post": _op("Add a product; its photos (image assets) are indexed for detection now", tag="products",
                        ok="201", schema="Product", errors=("400", "401", "403", "404", "409", "415", "422"),
                        body=_json_body({"type": "object", "required": ["sku", "title"],
                                         "properties": {"sku": SKU_SCHEMA, **PRODUCT_FIELDS}})),
            "get": _op("List products, newest first", tag="products", params=PAGING),
        },
        "/v1/products/{sku}": {
            "get": _op("One product", tag="products", params=[sku], schema="Product"),
            "patch": _op("Change a product's card fields or photos (the SKU stays)", tag="products",
                         params=[sku], schema="Product", errors=("400", "401", "403", "404", "422"),
                         body=_json_body({"type": "object", "properties": PRODUCT_FIELDS})),
            "delete": _op("Remove a product", tag="products", ok="204", params=[sku]),
        },
        "/v1/settings/cart-webhook": {
            "put": _op("Set the URL called (signed) when a shopper adds a tapped product to the cart",
                       tag="products", errors=("400", "401", "403"),
                       body=_json_body({"type": "object", "required": ["url"], "properties": {
                           "url": {"type": "string", "format": "uri"}, "rotate_secret": {"type": "boolean"}}})),
            "get": _op("The cart webhook and its recent deliveries", tag="products"),
            "delete": _op("Remove the cart webhook", tag="products", ok="204"),
        },
        "/v1/videos/{video_id}/index": {
            "post": _op("Find and track the catalog's products in a video (a videos.index job)", tag="products",
                        ok="202", schema="VideoIndex", errors=("400", "401", "403", "404", "409", "422"),
                        params=[video_id, _header("Idempotency-Key", False)],
                        body={"required": False, "content": {"application/json": {"schema": {
                            "type": "object", "additionalProperties": False, "properties": {
                                "detector": {"enum": ["catalog", "torchvision", "none"]},
                                "fps": {"type": "number", "minimum": 0.2, "maximum": 30},
                                "force": {"type": "boolean"}}}}}}),
            "get": _op("The newest index of a video: state, tracks count, contact sheet", tag="products",
                       params=[video_id], schema="VideoIndex"),
        },
        "/v1/videos/{video_id}/tracks": {"get": _op(
            "Product tracks (hotspots) of the newest ready index", tag="products", params=[
                video_id, {"name": "samples", "in": "query", "schema": {"enum": ["0", "1", "true", "false"]}}])},
        "/v1/videos/{video_id}/tracks/{track_id}": {
            "get": _op("One track with its boxes over time", tag="products", params=[video_id, track_id],
                       schema="Track"),
            "patch": _op("Confirm or correct a track's SKU, or reject the track", tag="products",
                         params=[video_id, track_id], schema="Track", errors=("400", "401", "403", "404"),
                         body=_json_body({"type": "object", "properties": {
                             "sku": SKU_SCHEMA, "state": {"enum": ["detected", "confirmed", "rejected"]}}})),
        },
        "/v1/videos/{video_id}/taps": {"post": _op(
            "A shopper's tap {t, x, y} or lasso {t, polygon} (0..1 of the frame): the product there, cut out",
            tag="products", schema="TapAnswer", errors=("400", "401", "403", "404", "422", "429"),
            params=[video_id, EMBED_TOKEN], body=_json_body(TAP_REQUEST))},
        "/v1/videos/{video_id}/cart": {"post": _op(
            "Confirm adding a tapped product to the cart (calls the merchant's signed cart webhook)",
            tag="products", errors=("400", "401", "403", "404", "429"), params=[video_id, EMBED_TOKEN],
            body=_json_body({"type": "object", "required": ["cart_token", "sku"], "properties": {
                "cart_token": {"type": "string"}, "sku": SKU_SCHEMA,
                "quantity": {"type": "integer", "minimum": 1, "maximum": 999},
                "shopper_ref": {"type": "string", "maxLength": 200}}}))},
    }


# --- Fun-logo prize campaigns ---------------------------------------------------------------------------

_DATE = {"type": ["string", "null"], "format": "date-time"}
CAMPAIGN_REQUEST = {"type": "object", "additionalProperties": False,
                    "required": ["video_id", "logo_asset_id", "title", "prizes", "rules", "odds",
                                 "alternative_entry"], "properties": {
    "video_id": {"type": "string", "description": "a ready, approved processed video (vid_...)"},
    "logo_asset_id": {"type": "string", "description": "a PNG or WebP image asset"},
    "title": {"type": "string", "minLength": 1, "maxLength": 200},
    "mode": {"enum": ["overlay", "burned"], "default": "overlay"},
    "fragments": {"type": "integer", "default": 5},
    "seed": {"type": "integer", "minimum": 0, "maximum": 2147483647},
    "rule": {"oneOf": [{"type": "object", "required": ["kind"], "properties": {"kind": {"enum": ["any", "all"]}}},
                       {"type": "object", "required": ["kind", "n"], "properties": {
                           "kind": {"const": "n"}, "n": {"type": "integer", "minimum": 1}}}]},
    "starts_at": _DATE, "ends_at": _DATE,
    "prizes": {"type": "array", "minItems": 1, "maxItems": 50, "items": {
        "type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "minLength": 1},
            "quantity": {"type": "integer", "minimum": 1, "maximum": 1000}}}},
    "max_entries": {"type": ["integer", "null"], "minimum": 1},
    "rules": {"type": "string", "minLength": 1, "maxLength": 20000},
    "odds": {"type": "string", "minLength": 1, "maxLength": 2000},
    "alternative_entry": {"type": "string", "minLength": 1, "maxLength": 2000,
                          "description": "the free entry route (no purchase, no collecting)"}}}
CAMPAIGN_SCHEMAS = {
    "Campaign": {"type": "object", "required": ["id", "title", "state", "mode", "render"], "properties": {
        "id": {"type": "string"}, "title": {"type": "string"},
        "state": {"enum": ["draft", "published", "closed", "drawn"]}, "mode": {"enum": ["overlay", "burned"]},
        "render": {"type": "object", "properties": {
            "state": {"enum": ["queued", "processing", "ready", "failed", "cancelled"]},
            "job": {"type": ["object", "null"]}}},
        "video_id": {"type": "string"}, "logo_asset_id": {"type": "string"}, "fragments": {"type": "integer"},
        "rule": {"type": "object"}, "starts_at": _DATE, "ends_at": _DATE,
        "prizes": {"type": "array", "items": {"type": "object"}}, "max_entries": {"type": ["integer", "null"]},
        "seed_commitment": {"type": ["string", "null"], "description": "SHA-256 of the draw's secret seed"},
        "merkle_root": {"type": ["string", "null"], "description": "of the entries, published at close"},
        "entry_count": {"type": "integer"}, "winners": {"type": "array", "items": {"type": "object"}},
        "preview": {"type": "object"}, "plan": {"type": "object"}, "links": {"type": "object"}}},
    "ClaimAnswer": {"type": "object", "required": ["accepted", "fragment", "collected", "needed"], "properties": {
        "accepted": {"const": True}, "fragment": {"type": "integer"},
        "collected": {"type": "array", "items": {"type": "integer"}}, "needed": {"type": "integer"},
        "fragments": {"type": "integer"}, "entered": {"type": "boolean"},
        "entry_id": {"type": ["string", "null"]}, "entry_refused": {"type": ["string", "null"]}}},
    "DrawRecord": {"type": "object", "required": ["campaign_id", "algorithm", "state"], "properties": {
        "campaign_id": {"type": "string"}, "algorithm": {"type": "string"}, "description": {"type": "string"},
        "state": {"type": "string"}, "seed_commitment": {"type": ["string", "null"]},
        "merkle_root": {"type": ["string", "null"]},
        "entries": {"type": ["array", "null"], "items": {"type": "string"}},
        "prizes": {"type": "array", "items": {"type": "object"}}, "seed": {"type": ["string", "null"]},
        "winners": {"type": ["array", "null"], "items": {"type": "object"}}}},
}


def _campaign_paths() -> dict[str, Any]:
    """Merchant endpoints (API key), the public record (no credentials, CORS ``*``) and the widget's
    collecting endpoints under a campaign embed token (CORS for the token's origins)."""
    campaign_id, token = _path_param("campaign_id"), _path_param("token")
    state_errors = ("401", "403", "404", "409")
    widget_errors = ("400", "401", "403", "404", "409", "422", "429")

    def preflight() -> dict[str, Any]:
        return _op("CORS preflight", tag="campaigns", ok="204", params=[token], secured=False, errors=("401", "403"))

    return {
        "/v1/campaigns": {
            "post": _op("Create a campaign and queue its render: fragments, plan, previews (202 with its job)",
                        tag="campaigns", ok="202", schema="Campaign",
                        errors=("400", "401", "403", "404", "409", "422"),
                        params=[_header("Idempotency-Key", False)], body=_json_body(CAMPAIGN_REQUEST)),
            "get": _op("List campaigns, newest first", tag="campaigns", params=PAGING),
        },
        "/v1/campaigns/{campaign_id}": {
            "get": _op("A campaign: render state, previews, plan, commitments and counts", tag="campaigns",
                       params=[campaign_id], schema="Campaign"),
            "delete": _op("Delete a campaign, its sessions, claims, entries and rendered files", tag="campaigns",
                          ok="204", params=[campaign_id]),
        },
        "/v1/campaigns/{campaign_id}/publish": {"post": _op(
            "Open collecting; the SHA-256 of the draw's secret seed is public from now on", tag="campaigns",
            params=[campaign_id], schema="Campaign", errors=state_errors)},
        "/v1/campaigns/{campaign_id}/close": {"post": _op(
            "Stop collecting; the entries are frozen and their Merkle root published (also done when ends_at "
            "passes)", tag="campaigns", params=[campaign_id], schema="Campaign", errors=state_errors)},
        "/v1/campaigns/{campaign_id}/draw": {"post": _op(
            "Reveal the seed and pick the winners (recomputable from the public draw record)", tag="campaigns",
            params=[campaign_id], schema="Campaign", errors=state_errors)},
        "/v1/campaigns/{campaign_id}/entries": {"post": _op(
            "Record a free alternative-route entry for a shopper (201 new, 200 already entered)",
            tag="campaigns", ok="201", params=[campaign_id], errors=("400", *state_errors),
            body=_json_body({"type": "object", "required": ["shopper_id"], "properties": {
                "shopper_id": {"type": "string", "minLength": 1, "maxLength": 200}}}))},
        "/v1/campaigns/{campaign_id}/stats": {"get": _op(
            "Views, fragments seen, collects, claims (and rejected ones), entries, add-to-cart and conversion",
            tag="campaigns", params=[campaign_id])},
        "/v1/public/campaigns/{campaign_id}": {"get": _op(
            "A published campaign's rules, odds, prizes, dates, free entry route and draw commitments",
            tag="campaigns", params=[campaign_id], secured=False, errors=("404",))},
        "/v1/public/campaigns/{campaign_id}/draw": {"get": _op(
            "The draw record tools/verify_draw.py recomputes: commitment, Merkle root, entries, seed, winners",
            tag="campaigns", params=[campaign_id], secured=False, errors=("404",), schema="DrawRecord")},
        "/v1/embed/{token}/campaign/session": {
            "post": _op("Start a viewer session for {shopper_id} (the shop's page) or {device_id} (anonymous): "
                        "a session token and the shopper's progress", tag="campaigns", ok="201",
                        params=[token], secured=False, errors=widget_errors,
                        body=_json_body({"type": "object", "additionalProperties": False, "properties": {
                            "shopper_id": {"type": "string", "maxLength": 200},
                            "device_id": {"type": "string", "maxLength": 200}}})),
            "options": preflight(),
        },
        "/v1/embed/{token}/campaign/schedule": {
            "get": _op("The fragments shown in the next segment of media time, at this viewer's positions "
                       "(422 seek_ahead beyond the time watched)", tag="campaigns", secured=False,
                       errors=widget_errors, params=[
                           token, {"name": "session", "in": "query", "required": True, "schema": {"type": "string"}},
                           {"name": "t", "in": "query", "schema": {"type": "number", "minimum": 0}}]),
            "options": preflight(),
        },
        "/v1/embed/{token}/campaign/claims": {
            "post": _op("One claim: accepted with progress, or 422 with a stable code (too_fast, replayed, "
                        "unknown_fragment, not_revealed, playback_backwards, seek_ahead, too_early, too_late, "
                        "missed, already_collected)", tag="campaigns", params=[token], secured=False,
                        schema="ClaimAnswer", errors=widget_errors,
                        body=_json_body({"type": "object", "additionalProperties": False,
                                         "required": ["session", "t", "x", "y", "nonce"], "properties": {
                                             "session": {"type": "string"},
                                             "fragment": {"type": ["integer", "null"],
                                                          "description": "null in burned mode: the tap decides"},
                                             "t": {"type": "number", "minimum": 0},
                                             "x": {"type": "number", "minimum": 0, "maximum": 1},
                                             "y": {"type": "number", "minimum": 0, "maximum": 1},
                                             "nonce": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,64}$"},
                                             "input": {"type": "string"}}})),
            "options": preflight(),
        },
    }


def openapi_document() -> dict[str, Any]:
    """The whole document, built fresh (cheap) so it always reflects this code."""
    asset_id, job_id, upload_id, webhook_id = (_path_param(n) for n in
                                               ("asset_id", "job_id", "upload_id", "webhook_id"))
    video_id, batch_id, token_id = (_path_param(n) for n in ("video_id", "batch_id", "token_id"))
    profile_enum = {"enum": ["buyer_show", "promo", "homepage"]}
    video_options = {"type": "object", "properties": {"stabilize": {"type": "boolean"},
                                                      "blur_faces": {"type": "boolean"}},
                     "additionalProperties": False}
    reason_body = {"required": False, "content": {"application/json": {"schema": {
        "type": "object", "properties": {"reason": {"type": "string", "maxLength": 1000}}}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "media-service", "version": __version__,
                 "description": "Rich product media for online merchants: uploads, jobs, panoramas, spins, "
                                "product extraction and buyer-show videos."},
        "servers": [{"url": "/"}],
        "security": [{"apiKey": []}],
        "paths": {
            "/v1/health": {"get": _op(
                "Service health: ok, degraded (no live worker: jobs wait) or unhealthy (503); ?require=workers "
                "answers 503 without a live worker too", tag="system", secured=False, errors=("400", "503"),
                params=[{"name": "require", "in": "query", "schema": {"type": "string", "enum": ["workers"]}}])},
            "/v1/openapi.json": {"get": _op("This document", tag="system", secured=False, errors=())},
            "/v1/assets": {
                "post": _op("Upload a small file (multipart field 'file')", tag="assets", ok="201",
                            schema="Asset", errors=("400", "401", "403", "413", "415", "422"),
                            body={"required": True, "content": {"multipart/form-data": {"schema": {
                                "type": "object", "required": ["file"],
                                "properties": {"file": {"type": "string", "format": "binary"}}}}}}),
                "get": _op("List assets, newest first", tag="assets", params=[
                    *PAGING, {"name": "kind", "in": "query", "schema": {"enum": ["image", "video"]}}]),
            },
            "/v1/assets/{asset_id}": {
                "get": _op("One asset", tag="assets", params=[asset_id], schema="Asset"),
                "delete": _op("Delete an asset, its files and what was made of it alone (its videos, video "
                              "indexes, tap cut-outs); work in flight for it is cancelled", tag="assets", ok="204",
                              params=[asset_id]),
            },
            "/v1/uploads": {
                "options": _op("tus capabilities", tag="uploads", ok="204", secured=False, errors=()),
                "post": _op("Create a tus upload (creation, creation-with-upload)", tag="uploads", ok="201",
                            errors=("400", "401", "412", "413", "415", "422", "460"),
                            params=[TUS, _header("Upload-Length"), _header("Upload-Metadata", False),
                                    _header("Idempotency-Key", False)]),
            },
            "/v1/uploads/{upload_id}": {
                "head": _op("Current offset of a tus upload", tag="uploads", errors=("404", "410", "412"),
                            params=[upload_id, TUS]),
                "patch": _op("Append bytes at Upload-Offset", tag="uploads", ok="204",
                             errors=("400", "401", "404", "409", "412", "413", "415", "422", "423", "460"),
                             params=[upload_id, TUS, _header("Upload-Offset"), _header("Upload-Checksum", False)],
                             body={"required": True, "content": {"application/offset+octet-stream": {
                                 "schema": {"type": "string", "format": "binary"}}}}),
                "delete": _op("Terminate a tus upload", tag="uploads", ok="204", params=[upload_id, TUS],
                              errors=("401", "404", "412", "423")),
                "get": _op("Upload state as JSON (asset id or refusal reason)", tag="uploads",
                           params=[upload_id]),
            },
            "/v1/jobs": {"get": _op("List jobs", tag="jobs", params=[
                *PAGING, {"name": "state", "in": "query", "schema": {"type": "string"}},
                {"name": "kind", "in": "query", "schema": {"type": "string"}}])},
            "/v1/jobs/{job_id}": {"get": _op("One job: state, progress, result, error", tag="jobs",
                                             params=[job_id], schema="Job")},
            "/v1/jobs/{job_id}/cancel": {"post": _op("Cancel a job", tag="jobs", ok="202", params=[job_id],
                                                     errors=("401", "404", "409"), schema="Job")},
            "/v1/jobs/{job_id}/retry": {"post": _op("Retry a failed or cancelled job", tag="jobs", ok="202",
                                                    params=[job_id], errors=("401", "404", "409"), schema="Job")},
            "/v1/videos": {
                "post": _op("Process a video asset with a profile (202 new, 200 already processed the same way)",
                            tag="videos", ok="202", schema="Video", errors=("400", "401", "403", "404", "422"),
                            params=[_header("Idempotency-Key", False)],
                            body=_json_body({"type": "object", "required": ["asset_id", "profile"], "properties": {
                                "asset_id": {"type": "string"}, "profile": profile_enum,
                                "options": video_options}})),
                "get": _op("List videos, newest first", tag="videos", params=[
                    *PAGING, {"name": "state", "in": "query", "schema": {"enum": [
                        "queued", "processing", "ready", "failed", "cancelled"]}},
                    {"name": "moderation", "in": "query", "schema": {"enum": ["pending", "approved", "rejected"]}},
                    {"name": "profile", "in": "query", "schema": profile_enum},
                    {"name": "asset_id", "in": "query", "schema": {"type": "string"}}]),
            },
            "/v1/videos/{video_id}": {
                "get": _op("One video: state, renditions, poster, previews, flags, loudness, moderation, URLs",
                           tag="videos", params=[video_id], schema="Video"),
                "delete": _op("Delete a video and its outputs (its job is cancelled if still running; the asset "
                              "stays)", tag="videos", ok="204", params=[video_id])},
            "/v1/videos/{video_id}/approve": {"post": _op(
                "Approve (publish) a processed video", tag="videos", params=[video_id], body=reason_body,
                errors=("400", "401", "404", "409"), schema="Video")},
            "/v1/videos/{video_id}/reject": {"post": _op(
                "Reject a processed video (its public URLs stop working)", tag="videos", params=[video_id],
                body=reason_body, errors=("400", "401", "404", "409"), schema="Video")},
            "/v1/video-policy": {
                "get": _op("The merchant's buyer-show moderation policy", tag="videos", errors=("401",)),
                "put": _op("Set the buyer-show policy: never, always or if_clean (no flags) auto-approval",
                           tag="videos", body=_json_body({"type": "object", "required": ["buyer_show_auto_approve"],
                                                          "properties": {"buyer_show_auto_approve": {
                                                              "enum": ["never", "always", "if_clean"]}}})),
            },
            "/v1/batches": {
                "post": _op("Process many assets with one profile", tag="batches", ok="202",
                            body=_json_body({"type": "object", "required": ["asset_ids", "profile"], "properties": {
                                "asset_ids": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                                              "maxItems": 1000},
                                "profile": profile_enum, "options": video_options}})),
                "get": _op("List batches, newest first", tag="batches", params=PAGING),
            },
            "/v1/batches/{batch_id}": {"get": _op("A batch: counts, progress and every item", tag="batches",
                                                  params=[batch_id])},
            "/v1/batches/{batch_id}/retry": {"post": _op("Queue the failed items of a batch again", tag="batches",
                                                         ok="202", params=[batch_id])},
            "/v1/upload-tokens": {"post": _op(
                "Mint a buyer upload token (shown once): one upload, bound to an order or SKU, short-lived",
                tag="upload-tokens", ok="201", errors=("400", "401", "403"),
                body=_json_body({"type": "object", "properties": {
                    "order_id": {"type": "string", "maxLength": 200}, "sku": {"type": "string", "maxLength": 200},
                    "expires_in": {"type": "integer", "minimum": 1}, "max_bytes": {"type": "integer", "minimum": 1},
                    "process_profile": {"enum": ["buyer_show", "promo", "homepage", None]}}}))},
            "/v1/upload-tokens/{token_id}": {
                "get": _op("An upload token's state, upload, asset and video", tag="upload-tokens",
                           params=[token_id]),
                "delete": _op("Revoke an upload token", tag="upload-tokens", ok="204", params=[token_id]),
            },
            "/v1/webhooks": {
                "post": _op("Subscribe a URL to job and campaign events (the secret is shown once)",
                            tag="webhooks", ok="201", body=_json_body({
                                "type": "object", "required": ["url"], "properties": {
                                    "url": {"type": "string", "format": "uri"},
                                    "events": {"type": "array", "items": {"enum": list(known_events())}}}})),
                "get": _op("List webhooks", tag="webhooks"),
            },
            "/v1/webhooks/{webhook_id}": {
                "get": _op("One webhook with its recent deliveries", tag="webhooks", params=[webhook_id]),
                "delete": _op("Remove a webhook", tag="webhooks", ok="204", params=[webhook_id]),
            },
            "/v1/embed-settings": {
                "get": _op("Origins allowed to embed this merchant's media", tag="embed"),
                "put": _op("Set the allowed origins (exact https://host[:port])", tag="embed",
                           body=_json_body({"type": "object", "required": ["allowed_origins"], "properties": {
                               "allowed_origins": {"type": "array", "items": {"type": "string"}}}})),
            },
            "/v1/embed-tokens": {"post": _op(
                "Mint a short-lived embed token for one item and its allowed origins", tag="embed", ok="201",
                body=_json_body({"type": "object", "required": ["target_id", "origins"], "properties": {
                    "target_id": {"type": "string"}, "origins": {"type": "array", "items": {"type": "string"}},
                    "ttl_seconds": {"type": "integer", "minimum": 60}}}))},
            "/v1/embed/{token}": {
                "get": _op("The widget's manifest (CORS for the token's origins only)", tag="embed",
                           params=[_path_param("token")], secured=False, errors=("401", "403", "404", "429")),
                "options": _op("CORS preflight", tag="embed", ok="204", params=[_path_param("token")],
                               secured=False, errors=("401", "403")),
            },
            "/v1/embed/{token}/events": {
                "post": _op("A batch of widget interaction events", tag="embed", ok="202",
                            params=[_path_param("token")], secured=False, errors=("400", "401", "403", "429"),
                            body=_json_body({"type": "object", "required": ["events"], "properties": {
                                "session": {"type": "string"},
                                "events": {"type": "array", "items": {"type": "object", "required": ["type"]}}}})),
                "options": _op("CORS preflight", tag="embed", ok="204", params=[_path_param("token")],
                               secured=False, errors=("401", "403")),
            },
            "/v1/embed-stats/{target_id}": {"get": _op("Interaction counts of an embedded item", tag="embed",
                                                       params=[_path_param("target_id")])},
            # Panoramas and spins
            "/v1/panoramas": {
                "post": _op("Stitch 2+ overlapping photos into a panorama (answers 202 with its job)",
                            tag="panoramas", ok="202", errors=("400", "401", "403", "404", "409", "422"),
                            params=[_header("Idempotency-Key", False)], body=_json_body(PANORAMA_REQUEST)),
                "get": _op("List panoramas, newest first", tag="panoramas", params=PAGING),
            },
            "/v1/panoramas/{panorama_id}": {
                "get": _op("A panorama: state, per-photo diagnostics, image, preview, tiles and viewer manifest",
                           tag="panoramas", params=[_path_param("panorama_id")]),
                "delete": _op("Delete a panorama and its outputs (its job is cancelled if still running; the "
                              "photos stay)", tag="panoramas", ok="204", params=[_path_param("panorama_id")])},
            "/v1/spins": {
                "post": _op("Build a product spin from a turntable photo set or video (answers 202 with its job)",
                            tag="spins", ok="202", errors=("400", "401", "403", "404", "409", "422"),
                            params=[_header("Idempotency-Key", False)], body=_json_body(SPIN_REQUEST)),
                "get": _op("List spins, newest first", tag="spins", params=PAGING),
            },
            "/v1/spins/{spin_id}": {
                "get": _op("A spin: state and its manifest (frames, sizes, sprite, order)", tag="spins",
                           params=[_path_param("spin_id")]),
                "delete": _op("Delete a spin and its outputs (its job is cancelled if still running; the photos "
                              "or video stay)", tag="spins", ok="204", params=[_path_param("spin_id")])},
            **_product_paths(),
            **_campaign_paths(),
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                           "description": "A merchant API key: msk_..."}},
            "responses": {"Problem": {"description": "RFC 9457 problem details", "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}},
            "schemas": {
                "Problem": {"type": "object", "required": ["type", "title", "status", "detail", "code"],
                            "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                                           "status": {"type": "integer"}, "detail": {"type": "string"},
                                           "code": {"type": "string"}}},
                "Asset": {"type": "object", "required": ["id", "kind", "format", "size", "sha256"], "properties": {
                    "id": {"type": "string"}, "kind": {"enum": ["image", "video"]}, "format": {"type": "string"},
                    "mime": {"type": "string"}, "size": {"type": "integer"}, "sha256": {"type": "string"},
                    "filename": {"type": "string"}, "width": {"type": ["integer", "null"]},
                    "height": {"type": ["integer", "null"]}, "duration": {"type": ["number", "null"]},
                    "url": {"type": "string"}, "thumbnail_url": {"type": ["string", "null"]}}},
                "Video": {"type": "object", "required": ["id", "asset_id", "profile", "state"], "properties": {
                    "id": {"type": "string"}, "asset_id": {"type": "string"}, "profile": {"type": "string"},
                    "state": {"enum": ["queued", "processing", "ready", "failed", "cancelled"]},
                    "progress": {"type": "number"}, "published": {"type": "boolean"},
                    "moderation": {"type": "object"}, "flags": {"type": "array", "items": {"type": "object"}},
                    "renditions": {"type": "array", "items": {"type": "object"}},
                    "urls": {"type": ["object", "null"]}, "review_urls": {"type": ["object", "null"]},
                    "job": {"type": ["object", "null"]}}},
                "Job": {"type": "object", "required": ["id", "kind", "state", "progress"], "properties": {
                    "id": {"type": "string"}, "kind": {"type": "string"},
                    "state": {"enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
                    "progress": {"type": "number", "minimum": 0, "maximum": 100},
                    "result": {"type": ["object", "null"]}, "error": {"type": ["object", "null"]}}},
                **PRODUCT_SCHEMAS,
                **CAMPAIGN_SCHEMAS,
            },
        },
    }
