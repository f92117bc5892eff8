"""Collecting fragments: viewer sessions, the schedule revealed segment by segment, and claims.

A viewer session is a signed token (the project's one codec, ``security.tokens``) naming the campaign, the
session row and the shopper (an opaque key derived from the merchant page's shopper id, or an anonymous
device id). The server keeps, per session, when it began (wall clock), the media time then, the furthest
media time seen and which fragments were revealed.

* The schedule (``overlay`` mode) is revealed ``CAMPAIGN_SEGMENT_SECONDS`` of media time at a time, and only
  for media times the wall clock since the session began can cover: a script has to watch as long as a
  person. Positions differ per viewer: each fragment is drawn at an offset inside its slot derived from the
  session (HMAC), so positions shared by one viewer miss for another.
* A claim ``{fragment, t, x, y, nonce}`` is checked in a fixed order and refused with a stable code:
  ``too_fast`` (claims closer than a human taps), ``replayed`` (nonce used), ``unknown_fragment``,
  ``not_revealed``, ``playback_backwards``, ``seek_ahead`` (media time beyond what the wall clock covers),
  ``too_early`` / ``too_late`` (outside the window, with latency tolerance), ``missed`` (outside the hit
  polygon, with tolerance) and ``already_collected``. The rules are checked on a plain read (no write lock):
  a rejected claim is answered at once and recorded a moment later in a batch (``RejectedClaims``); only an
  accepted claim writes, in one short transaction (its nonce once, by a unique constraint). So
  ``too_fast`` measures from the session's last accepted claim, and the per-session rate limit
  (``security.ratelimit``) bounds rejected ones.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import logging
import math
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import case, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from media_service.db import begin_write
from media_service.errors import BadRequest, Conflict, Forbidden, MediaServiceError, Unauthorized
from media_service.features.campaigns.service import add_entry, needed, shopper_key
from media_service.media.logo.planner import FLOAT_AMPLITUDE, Placement
from media_service.models import Campaign, CampaignClaim, CampaignCollect, CampaignEntry, CampaignSession, utcnow
from media_service.security.tokens import TokenCodec, TokenInvalid

log = logging.getLogger(__name__)
SESSION_TOKENS = TokenCodec("mcs1", b"media-service campaign session v1")
NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
SHOPPER_ID = re.compile(r"^[\x21-\x7e]{1,200}$")
#: Media time a claim may go back (a player's reported time jitters by a frame or two) before it is refused.
BACKWARD_TOLERANCE = 0.5


class ClaimRejected(MediaServiceError):
    """A claim that does not count; ``code`` is stable and shown by the widget."""

    status = 422
    code = "claim_rejected"
    title = "Claim rejected"


def _number(body: Mapping[str, Any], name: str, low: float, high: float) -> float:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not low <= value <= high:
        raise BadRequest(f"{name} must be a number from {low:g} to {high:g}", code="invalid_claim")
    return float(value)


def is_live(campaign: Campaign) -> bool:
    now = utcnow()
    return campaign.state == "published" and (campaign.starts_at is None or campaign.starts_at <= now) \
        and (campaign.ends_at is None or now <= campaign.ends_at)


def _live(campaign: Campaign) -> None:
    if not is_live(campaign):
        raise Conflict("this campaign is not open for collecting now", code="campaign_not_live")


def start_session(session: Session, settings: Mapping[str, Any], campaign: Campaign,
                  body: Mapping[str, Any]) -> dict[str, Any]:
    """A viewer session for ``{shopper_id}`` (from the merchant's page) or ``{device_id}``. Its media clock
    starts at 0 whatever the player does: a viewer who joins late or reloads watches from the start to reach
    later fragments (fragments already collected stay collected), so a new session can never skip ahead.
    Answers the token and the shopper's progress so far."""
    _live(campaign)
    unknown = sorted(set(body) - {"shopper_id", "device_id"})
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}", code="invalid_session_request")
    shopper, device = body.get("shopper_id"), body.get("device_id")
    if (shopper is None) == (device is None):
        raise BadRequest("send either shopper_id (from the shop's page) or device_id (anonymous)",
                         code="invalid_session_request")
    raw = shopper if shopper is not None else device
    if not isinstance(raw, str) or not SHOPPER_ID.match(raw):
        raise BadRequest("shopper_id / device_id must be 1-200 printable characters", code="invalid_session_request")
    key = shopper_key(settings["SECRET_KEY"], campaign.id, "shopper" if shopper is not None else "device", raw)
    now = time.time()
    begin_write(session)
    row = CampaignSession(campaign_id=campaign.id, shopper_key=key, started=now, media_start=0.0, last_t=0.0,
                          revealed=[])
    session.add(row)
    session.commit()
    expires = int(now) + int(settings["CAMPAIGN_SESSION_SECONDS"])
    token = SESSION_TOKENS.encode(settings["SECRET_KEY"], {"c": campaign.id, "s": row.id, "k": key, "e": expires})
    return {"session": token, "expires_at": expires, **progress(session, campaign, key),
            "segment_seconds": settings["CAMPAIGN_SEGMENT_SECONDS"]}


def progress(session: Session, campaign: Campaign, key: str) -> dict[str, Any]:
    collected = sorted(session.scalars(select(CampaignCollect.fragment).where(
        CampaignCollect.campaign_id == campaign.id, CampaignCollect.shopper_key == key)))
    entry = session.scalar(select(CampaignEntry).where(CampaignEntry.campaign_id == campaign.id,
                                                       CampaignEntry.shopper_key == key))
    return {"collected": collected, "needed": needed(campaign.rule, campaign.fragment_count),
            "fragments": campaign.fragment_count, "entered": entry is not None,
            "entry_id": entry.id if entry else None}


def read_session(settings: Mapping[str, Any], token: Any, campaign: Campaign) -> dict[str, Any]:
    try:
        payload = SESSION_TOKENS.decode(settings["SECRET_KEY"], token)
    except TokenInvalid as exc:
        raise Unauthorized("the campaign session is missing, forged or expired; start a new one",
                           code="session_expired" if exc.expired else "invalid_session") from None
    if payload.get("c") != campaign.id:
        raise Forbidden("this session belongs to another campaign", code="wrong_campaign")
    return payload


def viewer_offset(secret: str, session_id: str, index: int) -> tuple[float, float]:
    """Where this viewer sees fragment ``index`` inside its slot (0..1 each way), from the session."""
    digest = hmac.new(secret.encode(), f"campaign-offset\n{session_id}\n{index}".encode(), hashlib.sha256).digest()
    return (int.from_bytes(digest[:2], "big") / 65535, int.from_bytes(digest[2:4], "big") / 65535)


def _placements(campaign: Campaign) -> dict[int, Placement]:
    return {p["index"]: Placement.from_dict(p) for p in campaign.plan.get("placements", [])}


def _offset(campaign: Campaign, secret: str, session_id: str, index: int) -> tuple[float, float]:
    return viewer_offset(secret, session_id, index) if campaign.mode == "overlay" else (0.5, 0.5)


def _allowed_media_time(row: CampaignSession, now: float, settings: Mapping[str, Any]) -> float:
    return row.media_start + (now - row.started) + float(settings["CAMPAIGN_CLOCK_SLACK_SECONDS"])


def schedule(session: Session, settings: Mapping[str, Any], campaign: Campaign, token: Any, t: Any
             ) -> dict[str, Any]:
    """The fragments (overlay mode) that show between ``t`` and ``t + CAMPAIGN_SEGMENT_SECONDS``, at this
    viewer's positions; refused (``seek_ahead``) when ``t`` is beyond what the session's wall clock covers."""
    _live(campaign)
    payload = read_session(settings, token, campaign)
    t = _number({"t": t}, "t", 0, 86400)
    now = time.time()
    begin_write(session)
    row = session.get(CampaignSession, payload["s"])
    if row is None or row.campaign_id != campaign.id:
        raise Unauthorized("the campaign session is unknown; start a new one", code="invalid_session")
    if t > _allowed_media_time(row, now, settings):
        session.rollback()
        raise ClaimRejected("playback is ahead of the time this session has been watching", code="seek_ahead")
    segment = float(settings["CAMPAIGN_SEGMENT_SECONDS"])
    items = []
    if campaign.mode == "overlay":
        fragments = {f["index"]: f for f in campaign.plan.get("fragments", [])}
        for index, placement in sorted(_placements(campaign).items(), key=lambda kv: kv[1].start):
            if placement.end >= t - 0.5 and placement.start <= t + segment:
                x, y, w, h = placement.box(_offset(campaign, settings["SECRET_KEY"], row.id, index))
                items.append({"fragment": index, "start": placement.start, "end": placement.end,
                              "box": [round(x, 5), round(y, 5), round(w, 5), round(h, 5)],
                              "polygon": fragments.get(index, {}).get("polygon", [])})
        row.revealed = sorted(set(row.revealed or []) | {i["fragment"] for i in items})
    row.last_t = max(row.last_t, t)
    session.commit()
    return {"t": t, "until": t + segment, "items": items}


def _inside(point: tuple[float, float], polygon: list[tuple[float, float]], tolerance: float) -> bool:
    """Point in polygon (even-odd), or within ``tolerance`` of its edges (all in the same units)."""
    x, y = point
    inside = False
    n = len(polygon)
    best = math.inf
    for i in range(n):
        (x1, y1), (x2, y2) = polygon[i], polygon[(i + 1) % n]
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            inside = not inside
        dx, dy = x2 - x1, y2 - y1
        u = 0.0 if dx == dy == 0 else max(0.0, min(1.0, ((x - x1) * dx + (y - y1) * dy) / (dx * dx + dy * dy)))
        best = min(best, math.hypot(x - (x1 + u * dx), y - (y1 + u * dy)))
    return inside or best <= tolerance


def hit(campaign: Campaign, placement: Placement, offset: tuple[float, float], x: float, y: float,
        tolerance: float) -> bool:
    """Whether the tap (x, y) lands on the fragment drawn at ``offset``; measured in frame heights so the
    tolerance is the same both ways; the float animation's amplitude is added to the tolerance."""
    width, height = campaign.plan.get("frame", [16, 9])
    aspect = width / height
    bx, by, bw, bh = placement.box(offset)
    fragment = next((f for f in campaign.plan.get("fragments", []) if f["index"] == placement.index), None)
    polygon = fragment["polygon"] if fragment and len(fragment["polygon"]) >= 3 else [[0, 0], [1, 0], [1, 1], [0, 1]]
    points = [((bx + px * bw) * aspect, by + py * bh) for px, py in polygon]
    short = min(1.0, aspect)  # the frame's short side, in frame heights
    return _inside((x * aspect, y), points, tolerance * short + FLOAT_AMPLITUDE)


def _check(campaign: Campaign, row: CampaignSession, settings: Mapping[str, Any], now: float, fragment: int | None,
           t: float, x: float, y: float) -> tuple[str | None, int | None]:
    """The first rule the claim breaks (None when it counts) and the fragment it is about."""
    placements = _placements(campaign)
    if row.last_claim is not None and now - row.last_claim < float(settings["CAMPAIGN_MIN_CLAIM_INTERVAL_SECONDS"]):
        return "too_fast", fragment
    latency = float(settings["CAMPAIGN_LATENCY_SECONDS"])
    if fragment is None and campaign.mode == "burned":  # the tap names no fragment: the one shown there then
        showing = [i for i, p in placements.items() if p.start - latency <= t <= p.end + latency]
        fragment = next((i for i in showing if hit(campaign, placements[i], (0.5, 0.5), x, y,
                                                   float(settings["CAMPAIGN_TAP_TOLERANCE"]))), None)
        if fragment is None:
            return "missed", None
    if fragment not in placements:
        return "unknown_fragment", fragment
    if campaign.mode == "overlay" and fragment not in (row.revealed or []):
        return "not_revealed", fragment
    if t < row.last_t - BACKWARD_TOLERANCE:
        return "playback_backwards", fragment
    if t > _allowed_media_time(row, now, settings):
        return "seek_ahead", fragment
    placement = placements[fragment]
    if t < placement.start - latency:
        return "too_early", fragment
    if t > placement.end + latency:
        return "too_late", fragment
    offset = _offset(campaign, settings["SECRET_KEY"], row.id, fragment)
    if not hit(campaign, placement, offset, x, y, float(settings["CAMPAIGN_TAP_TOLERANCE"])):
        return "missed", fragment
    return None, fragment


MESSAGES = {
    "too_fast": "claims came faster than a person taps", "replayed": "this claim was already sent",
    "unknown_fragment": "there is no such fragment", "not_revealed": "this fragment was not shown to this viewer",
    "playback_backwards": "playback went backwards", "seek_ahead": "playback is ahead of the time watched",
    "too_early": "the fragment has not appeared yet", "too_late": "the fragment is gone",
    "missed": "the tap missed the fragment", "already_collected": "this fragment is already collected",
}


def collected_fragments(session: Session, campaign: Campaign, key: str) -> list[int]:
    """The fragments the shopper has collected (one indexed read: the collects' unique constraint)."""
    return sorted(session.scalars(select(CampaignCollect.fragment).where(
        CampaignCollect.campaign_id == campaign.id, CampaignCollect.shopper_key == key)))


class RejectedClaims:
    """Rejected claims of one process, recorded in batches instead of one write transaction each.

    A rejected claim changes nothing a later claim is checked against (it collects nothing, and sending it
    again gains nothing a fresh claim would not), so it needs no write lock on the request path: it is kept here and
    written with others in one short transaction, at most ``interval`` seconds later, by a daemon thread
    (and when the process exits, and before the campaign's stats are counted). The record is for the
    merchant's counts: a batch skips nonces already recorded and claims of campaigns deleted meanwhile,
    and at most ``limit`` claims wait (more are counted in the log and dropped: a flood is not kept)."""

    def __init__(self, database: Any, interval: float = 1.0, limit: int = 50_000) -> None:
        self._database = database
        self._interval = interval
        self._limit = limit
        self._rows: list[dict[str, Any]] = []
        self._dropped = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        atexit.register(self.flush)

    def add(self, row: dict[str, Any]) -> None:
        with self._lock:
            if len(self._rows) >= self._limit:
                self._dropped += 1
                return
            self._rows.append(row)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="campaign-rejected-claims", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self._interval)
            try:
                self.flush()
            except Exception:  # a failed batch is logged and dropped: its claims were answered already
                log.exception("recording rejected campaign claims failed")

    def flush(self) -> int:
        """Write what is buffered; answers how many claims were written."""
        with self._lock:
            rows, self._rows, dropped, self._dropped = self._rows, [], self._dropped, 0
        if dropped:
            log.warning("%d rejected campaign claims were not recorded (more than %d waiting)", dropped, self._limit)
        if not rows:
            return 0
        with self._database.session() as session:
            begin_write(session)
            campaigns = set(session.scalars(select(Campaign.id).where(
                Campaign.id.in_({r["campaign_id"] for r in rows}))))
            seen = {(c, n) for c, n in session.execute(select(CampaignClaim.campaign_id, CampaignClaim.nonce).where(
                CampaignClaim.nonce.in_({r["nonce"] for r in rows})))}
            fresh = []
            for row in rows:
                key = (row["campaign_id"], row["nonce"])
                if row["campaign_id"] in campaigns and key not in seen:
                    seen.add(key)
                    fresh.append(row)
            if fresh:
                session.execute(insert(CampaignClaim), fresh)
            session.commit()
        return len(fresh)


def claim(session: Session, settings: Mapping[str, Any], campaign: Campaign, body: Mapping[str, Any],
          rejected: RejectedClaims | None = None) -> dict[str, Any]:
    """Check and record one claim (see the module); the shopper's progress and entry when it counts.

    The rules are checked on a read of the session row (no write lock); a rejected claim is answered at
    once and recorded later with others (``RejectedClaims``; recorded at once when ``rejected`` is None).
    Only an accepted claim takes the write lock, for one short transaction: the claim (its nonce once), the
    collect (once per fragment), the session's clock moved on only if no other claim of the session came
    within ``CAMPAIGN_MIN_CLAIM_INTERVAL_SECONDS`` meanwhile, and the entry when the rule is met."""
    _live(campaign)
    if not isinstance(body, dict):
        raise BadRequest("send one claim as a JSON object", code="invalid_claim")
    unknown = sorted(set(body) - {"session", "fragment", "t", "x", "y", "nonce", "input"})
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}", code="invalid_claim")
    payload = read_session(settings, body.get("session"), campaign)
    t, x, y = _number(body, "t", 0, 86400), _number(body, "x", 0, 1), _number(body, "y", 0, 1)
    fragment = body.get("fragment")
    if fragment is not None and (isinstance(fragment, bool) or not isinstance(fragment, int)):
        raise BadRequest("fragment must be a fragment number", code="invalid_claim")
    nonce = body.get("nonce")
    if not isinstance(nonce, str) or not NONCE.match(nonce):
        raise BadRequest("nonce must be 16-64 random URL-safe characters, new for every claim", code="invalid_claim")
    now = time.time()
    row = session.get(CampaignSession, payload["s"])
    if row is None or row.campaign_id != campaign.id or row.shopper_key != payload["k"]:
        session.rollback()
        raise Unauthorized("the campaign session is unknown; start a new one", code="invalid_session")
    session_id, key, interval = row.id, row.shopper_key, float(settings["CAMPAIGN_MIN_CLAIM_INTERVAL_SECONDS"])
    if session.scalar(select(CampaignClaim.id).where(CampaignClaim.campaign_id == campaign.id,
                                                     CampaignClaim.nonce == nonce)) is not None:
        code: str | None = "replayed"
    else:
        code, fragment = _check(campaign, row, settings, now, fragment, t, x, y)
    if code is None and fragment in collected_fragments(session, campaign, key):
        code = "already_collected"
    record = {"campaign_id": campaign.id, "session_id": session_id, "nonce": nonce, "fragment": fragment,
              "t": t, "x": x, "y": y, "accepted": False, "code": code or ""}
    session.commit()  # ends the read snapshot (a commit keeps the loaded rows; a rollback would expire them)
    if code is not None:
        if code != "replayed":
            if rejected is not None:
                rejected.add(record)
            else:
                _record_now(session, record)
        raise ClaimRejected(MESSAGES[code], code=code, fragment=fragment)
    begin_write(session)
    try:
        with session.begin_nested():
            session.execute(insert(CampaignClaim), [dict(record, accepted=True)])
    except IntegrityError:
        session.rollback()
        raise ClaimRejected(MESSAGES["replayed"], code="replayed", fragment=fragment) from None
    moved = session.execute(
        update(CampaignSession).where(CampaignSession.id == session_id,
                                      or_(CampaignSession.last_claim.is_(None),
                                          CampaignSession.last_claim <= now - interval))
        .values(claims=CampaignSession.claims + 1, last_claim=now,
                last_t=case((CampaignSession.last_t < t, t), else_=CampaignSession.last_t))
        .execution_options(synchronize_session=False)).rowcount
    code = None if moved else "too_fast"
    if code is None:
        try:
            with session.begin_nested():
                session.add(CampaignCollect(campaign_id=campaign.id, shopper_key=key, fragment=fragment))
        except IntegrityError:
            code = "already_collected"
    if code is not None:  # another claim of this shopper got there first: record this one as refused
        session.execute(update(CampaignClaim).where(CampaignClaim.campaign_id == campaign.id,
                                                    CampaignClaim.nonce == nonce)
                        .values(accepted=False, code=code).execution_options(synchronize_session=False))
        session.commit()
        raise ClaimRejected(MESSAGES[code], code=code, fragment=fragment)
    state = progress(session, campaign, key)
    if len(state["collected"]) >= state["needed"] and not state["entered"]:
        entry, _outcome = add_entry(session, campaign, key, "collect")
        state.update(entered=entry is not None, entry_id=entry.id if entry else None,
                     entry_refused="entries_full" if entry is None else None)
    session.commit()
    return {"accepted": True, "fragment": fragment, **state}


def _record_now(session: Session, record: dict[str, Any]) -> None:
    """Record one rejected claim in its own short transaction (a nonce already recorded is skipped)."""
    begin_write(session)
    try:
        with session.begin_nested():
            session.execute(insert(CampaignClaim), [record])
    except IntegrityError:
        pass
    session.commit()
