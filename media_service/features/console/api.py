"""``/console/``: the merchant's web back office, server-rendered (Flask + Jinja) with a little JavaScript.

Every page calls the same feature services as the API (assets, videos, panoramas, spins, products,
video_index, embed, jobs), so the rules live once; this module adds sign-in, the session cookie, CSRF
checks, roles and HTML. Errors of the services (``MediaServiceError``) are shown as readable messages on
an HTML page, or as the usual ``application/problem+json`` to the pages' scripts.

The views are spread over this module (sign-in, library, reviews, jobs), ``studio.py`` (panoramas, spins,
products and videos, embeds), ``insights.py`` (charts) and ``campaigns.py`` (prize campaigns); they all
register on ``bp``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import func, or_, select
from werkzeug.exceptions import HTTPException

from media_service.db import get_session
from media_service.errors import BadRequest, MediaServiceError, Unauthorized
from media_service.features.assets.service import delete_asset, get_asset
from media_service.features.console import service
from media_service.features.console.service import SignedIn
from media_service.features.embed.service import normalise_origin
from media_service.features.videos.service import (
    POLICIES,
    base_url,
    file_urls,
    get_video,
    merchant_policy,
    moderate,
    set_policy,
)
from media_service.jobs import queue
from media_service.jobs.resources import public_state
from media_service.models import (
    Asset,
    Job,
    Panorama,
    Product,
    Spin,
    UploadToken,
    Video,
    VideoIndex,
)
from media_service.web.errors import problem_response
from media_service.web.files import signed_url
from media_service.web.requests import page

bp = Blueprint("console", __name__, url_prefix="/console")

F = TypeVar("F", bound=Callable[..., Any])
PUBLIC_ENDPOINTS = {"console.sign_in", "console.invite"}
REVIEW_PAGE = 20
CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; script-src 'self'; "
       "style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; "
       "form-action 'self'; base-uri 'none'; object-src 'none'")
#: Buyer-show moderation flags in words: what the check saw and what it means for the shop.
FLAG_WORDS = {
    "too_short": "Too short: shoppers may not see the product long enough.",
    "black": "Black stretches: the camera may have been covered.",
    "frozen": "Frozen picture: the video stops moving for a while.",
    "too_dark": "Too dark: the product may be hard to see.",
    "blurry": "Blurry: the picture is out of focus.",
    "silent": "No sound: fine for most buyer shows, but check if the buyer speaks.",
    "near_duplicate": "Looks like another video already uploaded (a repost?).",
}
NAV = (("console.library", "Library"), ("console.reviews", "Buyer shows"), ("console.studio", "Panoramas & spins"),
       ("console.catalog", "Products & videos"), ("console.embeds", "Embed"), ("console.insights", "Insights"),
       ("console.campaigns", "Campaigns"), ("console.jobs", "Jobs"))


# ------------------------------------------------------------------------------------------ plumbing


def current() -> SignedIn:
    """The signed-in user of this request (views behind ``before_request`` always have one)."""
    signed_in = g.get("console")
    if signed_in is None:
        raise Unauthorized("sign in to the console first", code="not_signed_in")
    return signed_in


def own_origin() -> str:
    return normalise_origin((current_app.config["PUBLIC_URL"] or request.host_url).rstrip("/"))


def wants_json() -> bool:
    """Requests from the pages' scripts (they ask for JSON) get problem+json; forms get HTML."""
    return request.accept_mimetypes.best == "application/json" or request.is_json


@bp.before_request
def authenticate_console() -> Any:
    """Who is signed in; sign-in for anyone else; CSRF and origin checks on every state change."""
    g.console = service.session_for_token(get_session(), request.cookies.get(service.COOKIE))
    unsafe = request.method not in ("GET", "HEAD", "OPTIONS")
    if unsafe:
        service.check_origin(own_origin())
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if g.console is None:
        if wants_json() or unsafe:
            raise Unauthorized("you are signed out; sign in to the console again", code="not_signed_in")
        return redirect(url_for("console.sign_in", next=request.full_path.rstrip("?")))
    if unsafe:
        service.check_csrf(g.console.csrf_token, request.form.get("csrf_token") or request.headers.get("X-CSRF-Token"))
    return None


@bp.after_request
def console_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(MediaServiceError)
def show_problem(exc: MediaServiceError) -> Any:
    """The service's problem, as a readable page (forms) or problem+json (scripts)."""
    if wants_json():
        return problem_response(exc.to_problem(), exc.headers())
    if exc.code == "not_signed_in":
        return redirect(url_for("console.sign_in"))
    return render_page("console/problem.html", problem=exc.to_problem(), status=exc.status), exc.status


@bp.errorhandler(HTTPException)
def show_http_problem(exc: HTTPException) -> Any:
    return show_problem(MediaServiceError(exc.description or exc.name, code="http_error", status=exc.code or 500))


def render_page(template: str, **context: Any) -> str:
    signed_in = g.get("console")
    notices = service.take_notices(get_session(), signed_in) if signed_in else []
    return render_template(template, me=signed_in, notices=notices, nav=NAV, human_size=human_size,
                           **context)


def done(message: str, endpoint: str, **values: Any) -> Response:
    """After a form: remember a one-line message for the next page and go there (303)."""
    service.add_notice(get_session(), current(), message)
    return redirect(url_for(endpoint, **values), code=303)


def human_size(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def safe_next(target: str | None) -> str:
    """Only a path inside the console is followed after sign-in (never another site)."""
    if target and target.startswith("/console/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("console.library")


# ------------------------------------------------------------------------------------------ sign-in


def _set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, secure=True, httponly=True, samesite="Lax", path="/")


@bp.route("/sign-in", methods=["GET", "POST"], endpoint="sign_in")
def sign_in_view() -> Any:
    """Email and password; the form carries its own CSRF value (double-submit cookie: no session yet)."""
    error = None
    status = 200
    if request.method == "POST":
        sent, kept = request.form.get("csrf_token"), request.cookies.get(service.PRE_COOKIE)
        try:
            if not kept:
                raise BadRequest("your browser did not keep the sign-in form's cookie; allow cookies for this "
                                 "site and try again", code="csrf_failed")
            service.check_csrf(kept, sent)
            _user, token = service.sign_in(get_session(), request.form.get("email"), request.form.get("password"),
                                           request.remote_addr)
        except MediaServiceError as exc:
            error, status = exc.detail, exc.status
        else:
            response = redirect(safe_next(request.args.get("next")), code=303)
            _set_cookie(response, service.COOKIE, token, service.SESSION_HOURS * 3600)
            response.delete_cookie(service.PRE_COOKIE, path="/", secure=True, httponly=True, samesite="Lax")
            return response
    elif g.console is not None:
        return redirect(safe_next(request.args.get("next")))
    pre = service.secrets.token_urlsafe(24)
    response = Response(render_page("console/sign_in.html", error=error, csrf=pre,
                                    email=request.form.get("email", "")), status=status)
    _set_cookie(response, service.PRE_COOKIE, pre, 3600)
    return response


@bp.post("/sign-out")
def sign_out() -> Any:
    service.sign_out(get_session(), current())
    response = redirect(url_for("console.sign_in"), code=303)
    response.delete_cookie(service.COOKIE, path="/", secure=True, httponly=True, samesite="Lax")
    return response


@bp.route("/invite/<token>", methods=["GET", "POST"], endpoint="invite")
def invite(token: str) -> Any:
    """An invited person chooses a password, then is signed in."""
    session = get_session()
    user = service.invited_user(session, token)
    error = None
    if request.method == "POST":
        try:
            service.check_csrf(request.cookies.get(service.PRE_COOKIE) or "", request.form.get("csrf_token"))
            user = service.accept_invite(session, token, request.form.get("password"), request.form.get("name"))
            _user, cookie = service.sign_in(session, user.email, request.form.get("password"), request.remote_addr)
        except MediaServiceError as exc:
            error = exc.detail
        else:
            response = redirect(url_for("console.library"), code=303)
            _set_cookie(response, service.COOKIE, cookie, service.SESSION_HOURS * 3600)
            return response
    pre = service.secrets.token_urlsafe(24)
    response = Response(render_page("console/invite.html", user=user, error=error, csrf=pre))
    _set_cookie(response, service.PRE_COOKIE, pre, 3600)
    return response


@bp.get("/")
def home() -> Any:
    return redirect(url_for("console.library"))


# ------------------------------------------------------------------------------------------ library


def asset_states(merchant_id: str, assets: list[Asset]) -> dict[str, str]:
    """Each asset's state in one word: ready (thumbnail made), else its thumbnail job's public state."""
    waiting = [f"thumbnail:{a.id}" for a in assets if not a.thumbnail_key]
    jobs = {job.idempotency_key: job for job in get_session().scalars(
        select(Job).where(Job.merchant_id == merchant_id, Job.idempotency_key.in_(waiting)))} if waiting else {}
    return {a.id: "ready" if a.thumbnail_key else str(public_state(None, jobs.get(f"thumbnail:{a.id}")))
            for a in assets}


@bp.get("/library")
def library() -> Any:
    """The merchant's assets, newest first: search by name or id, filter by type, paged by cursor."""
    me = current()
    session = get_session()
    query = select(Asset).where(Asset.merchant_id == me.merchant_id)
    text = request.args.get("q", "").strip()[:200]
    if text:
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(or_(Asset.filename.ilike(f"%{escaped}%", escape="\\"), Asset.id == text))
    kind = request.args.get("kind", "")
    if kind:
        if kind not in ("image", "video"):
            raise BadRequest("type must be photos or videos", code="invalid_kind")
        query = query.where(Asset.kind == kind)
    rows, next_cursor = page(session, query, Asset)  # the API's keyset pager: ?limit= and ?cursor=
    counts = dict(session.execute(select(Asset.kind, func.count()).where(Asset.merchant_id == me.merchant_id)
                                  .group_by(Asset.kind)).all())
    items = [{"asset": a, "thumb": signed_url(a.thumbnail_key) if a.thumbnail_key else None,
              "url": signed_url(a.storage_key)} for a in rows]
    return render_page("console/library.html", items=items, states=asset_states(me.merchant_id, rows),
                       counts=counts, q=text, kind=kind, next_cursor=next_cursor,
                       max_bytes=current_app.config["MAX_UPLOAD_BYTES"])


@bp.post("/upload-credential")
def upload_credential() -> Any:
    """A short-lived credential for this page's tus uploads (``Authorization: Bearer mcu_...``)."""
    credential, expires = service.mint_upload_credential(current_app.config, current())
    return {"credential": credential, "expires_at": expires, "endpoint": url_for("uploads.create")}


def deletion_preview(merchant_id: str, asset: Asset) -> dict[str, list[dict[str, Any]]]:
    """What goes with an asset (the rows the assets feature's dependents finders delete) and what stays."""
    session = get_session()
    videos = session.scalars(select(Video).where(Video.asset_id == asset.id)).all()
    indexes = session.scalars(select(VideoIndex).where(VideoIndex.asset_id == asset.id)).all()
    goes = [{"what": f"{v.profile.replace('_', ' ')} video", "id": v.id,
             "note": "its public links stop working" if v.moderation_status == "approved" else ""} for v in videos]
    goes += [{"what": "product index (tracks, tap cut-outs)", "id": i.id, "note": ""} for i in indexes]
    stays = []
    for model, what in ((Panorama, "panorama"), (Spin, "spin")):
        for row in session.scalars(select(model).where(model.merchant_id == merchant_id)):
            if asset.id in (row.asset_ids or []) or getattr(row, "video_asset_id", None) == asset.id:
                stays.append({"what": what, "id": row.id, "note": "keeps its own copy of the result"})
    for product in session.scalars(select(Product).where(Product.merchant_id == merchant_id)):
        if any(image.get("asset_id") == asset.id for image in product.images or []):
            stays.append({"what": "product", "id": product.sku, "note": "keeps its indexed photo features"})
    return {"goes": goes, "stays": stays}


@bp.route("/library/<asset_id>/delete", methods=["GET", "POST"])
def delete_asset_page(asset_id: str) -> Any:
    """A confirmation that says what else goes (GET), then the deletion (POST)."""
    me = current()
    session = get_session()
    asset = get_asset(session, me.merchant_id, asset_id)
    if request.method == "POST":
        me.require("edit")
        delete_asset(session, current_app.extensions["storage"], asset)
        return done(f"Deleted {asset.filename or asset.id} and what was made of it alone.", "console.library")
    return render_page("console/delete_asset.html", asset=asset, preview=deletion_preview(me.merchant_id, asset),
                       thumb=signed_url(asset.thumbnail_key) if asset.thumbnail_key else None)


# ------------------------------------------------------------------------------------------ buyer shows


def _review_item(video: Video, job: Job | None, orders: dict[str, UploadToken]) -> dict[str, Any]:
    config = current_app.config
    state = public_state(video.state, job)
    urls = None
    if state == "ready":
        purpose = "public" if video.moderation_status == "approved" else "review"
        seconds = config["SIGNED_URL_SECONDS"] if purpose == "public" else config["VIDEO_REVIEW_URL_SECONDS"]
        urls = file_urls(video, purpose=purpose, secret=config["SECRET_KEY"], base_url=base_url(), seconds=seconds)
    flags = [{"code": flag.get("code", ""), "detail": flag.get("detail", ""),
              "words": FLAG_WORDS.get(flag.get("code", ""), flag.get("detail", ""))}
             for flag in (video.flags or []) if isinstance(flag, dict)]
    return {"video": video, "state": state, "urls": urls, "flags": flags, "job": job,
            "token": orders.get(video.asset_id)}


@bp.get("/reviews")
def reviews() -> Any:
    """The buyer-show queue: pending first (oldest first, as they came), or decided ones by status."""
    me = current()
    session = get_session()
    status = request.args.get("status", "pending")
    if status not in ("pending", "approved", "rejected"):
        raise BadRequest("status must be pending, approved or rejected", code="invalid_filter")
    query = select(Video).where(Video.merchant_id == me.merchant_id, Video.profile == "buyer_show",
                                Video.moderation_status == status)
    if status == "pending":
        query = query.where(Video.state == "ready").order_by(Video.ready_at, Video.id)
    else:
        query = query.order_by(Video.moderated_at.desc(), Video.id)
    rows = list(session.scalars(query.limit(REVIEW_PAGE)))
    jobs = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_([v.job_id for v in rows if v.job_id])))}
    tokens = {t.asset_id: t for t in session.scalars(select(UploadToken).where(
        UploadToken.merchant_id == me.merchant_id, UploadToken.asset_id.in_([v.asset_id for v in rows])))}
    counts = dict(session.execute(select(Video.moderation_status, func.count()).where(
        Video.merchant_id == me.merchant_id, Video.profile == "buyer_show", Video.state == "ready")
        .group_by(Video.moderation_status)).all())
    processing = session.scalar(select(func.count()).select_from(Video).where(
        Video.merchant_id == me.merchant_id, Video.profile == "buyer_show", Video.state != "ready"))
    return render_page("console/reviews.html", items=[_review_item(v, jobs.get(v.job_id or ""), tokens) for v in rows],
                       status=status, counts=counts, processing=processing, policy=merchant_policy(session,
                                                                                                   me.merchant_id),
                       policies=POLICIES)


@bp.post("/reviews/decide")
def decide() -> Any:
    """Approve or reject one or many videos (the list's checkboxes, or one button)."""
    me = current()
    me.require("moderate")
    decision = request.form.get("decision")
    if decision not in ("approve", "reject"):
        raise BadRequest("decision must be approve or reject", code="invalid_decision")
    ids = request.form.getlist("video_id")
    if not ids or len(ids) > 200:
        raise BadRequest("choose 1 to 200 videos", code="nothing_chosen")
    reason = request.form.get("reason", "").strip()[:1000] or None
    session = get_session()
    decided = [moderate(session, get_video(session, me.merchant_id, video_id), decision, reason, by=me.user_id)
               for video_id in ids]
    if wants_json():
        return {"decided": [{"id": v.id, "status": v.moderation_status} for v in decided]}
    verb = "Approved" if decision == "approve" else "Rejected"
    return done(f"{verb} {len(decided)} video{'s' if len(decided) != 1 else ''}.", "console.reviews",
                status=request.args.get("status", "pending"))


@bp.post("/reviews/policy")
def review_policy() -> Any:
    me = current()
    me.require("edit")
    choice = set_policy(get_session(), me.merchant_id, request.form.get("buyer_show_auto_approve"))
    return done(f"Auto-approval is now: {choice.replace('_', ' ')}.", "console.reviews")


@bp.get("/reviews/<video_id>")
def review_video(video_id: str) -> Any:
    """One video with its public link once approved (what the shop can paste)."""
    me = current()
    session = get_session()
    video = get_video(session, me.merchant_id, video_id)
    job = session.get(Job, video.job_id) if video.job_id else None
    tokens = {t.asset_id: t for t in session.scalars(select(UploadToken).where(
        UploadToken.merchant_id == me.merchant_id, UploadToken.asset_id == video.asset_id))}
    return render_page("console/review_video.html", item=_review_item(video, job, tokens))


# ------------------------------------------------------------------------------------------ jobs


JOB_WORDS = {"assets.thumbnail": "Thumbnail", "videos.process": "Video processing", "panoramas.stitch":
             "Panorama stitching", "spins.build": "Spin", "videos.index": "Finding products in a video",
             "campaigns.render": "Campaign fragments"}


@bp.get("/jobs")
def jobs() -> Any:
    """What is running (with progress), what waits, and what failed (the reason in words, a retry button)."""
    me = current()
    session = get_session()
    base = select(Job).where(Job.merchant_id == me.merchant_id)
    running = list(session.scalars(base.where(Job.state.in_(("running", "queued"))).order_by(Job.created_at)
                                   .limit(100)))
    failed = list(session.scalars(base.where(Job.state.in_(("failed", "cancelled")))
                                  .order_by(Job.finished_at.desc()).limit(100)))
    recent = list(session.scalars(base.where(Job.state == "succeeded").order_by(Job.finished_at.desc()).limit(20)))
    return render_page("console/jobs.html", running=running, failed=failed, recent=recent, words=JOB_WORDS)


@bp.post("/jobs/<job_id>/retry")
def retry_job(job_id: str) -> Any:
    me = current()
    me.require("edit")
    job = queue.retry(get_session(), job_id, me.merchant_id)
    return done(f"{JOB_WORDS.get(job.kind, job.kind)} {job.id} is queued again.", "console.jobs")
