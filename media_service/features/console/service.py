"""The console's rules: merchant users, their passwords and invitations, browser sessions, CSRF, roles, and
the short-lived upload credential a signed-in page uses for tus uploads.

- Passwords are hashed with scrypt (``hashlib.scrypt``, n=2^14, r=8, p=1, 16-byte salt) and compared in
  constant time; a sign-in for an unknown email does the same work, so timing does not tell which emails exist.
- A session is a random token in a ``__Host-`` cookie (Secure, HttpOnly, SameSite=Lax, Path=/); the database
  keeps its SHA-256 only. It lasts ``SESSION_HOURS`` at most and ends after ``IDLE_HOURS`` without use.
- Every state-changing console request carries the session's CSRF token (a form field or the
  ``X-CSRF-Token`` header), and a browser's ``Origin``, when sent, must be the service's own.
- Roles: ``owner`` (everything, users included), ``editor`` (everything but users), ``reviewer`` (reads, and
  approves or rejects buyer shows). ``allowed(role, action)`` is the one table of what each may do.
- The upload credential (``mcu_...``) is a signed token naming the session; the tus API accepts it through
  the platform's token verifiers, for ``/v1/uploads`` only, while the session lives. It travels in the
  ``Authorization`` header, which a foreign page cannot make a browser send, so it needs no CSRF check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, request
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from media_service.db import begin_write
from media_service.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from media_service.models import ConsoleSession, ConsoleUser, Merchant, utcnow
from media_service.security.api_keys import Principal
from media_service.security.ratelimit import RateLimiter, caller_key
from media_service.security.tokens import TokenCodec, TokenInvalid

ROLES = ("owner", "editor", "reviewer")
#: What each role may do; every console view asks ``allowed`` (reading is open to every role).
PERMISSIONS: dict[str, frozenset[str]] = {
    "owner": frozenset({"read", "moderate", "edit", "manage_users"}),
    "editor": frozenset({"read", "moderate", "edit"}),
    "reviewer": frozenset({"read", "moderate"}),
}
COOKIE = "__Host-console"
PRE_COOKIE = "__Host-console-signin"  # the sign-in form's own CSRF value (double submit: no session yet)
SESSION_HOURS = 12
IDLE_HOURS = 2
SEEN_RESOLUTION = timedelta(minutes=5)
INVITE_DAYS = 7
PASSWORD_MIN = 12
PASSWORD_MAX = 256
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
UPLOAD_PREFIX = "mcu"
UPLOAD_TTL_SECONDS = 30 * 60
UPLOAD_TOKENS = TokenCodec("mcu1", b"media-service console upload credential v1")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{1,60}$")
SIGN_IN_PER_EMAIL = (10, 10)  # per minute, burst: guessing one account's password
SIGN_IN_PER_ADDRESS = (60, 30)  # trying many accounts from one address (an office shares one)
_DUMMY_HASH: str | None = None


# ------------------------------------------------------------------------------------------- passwords


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` for ``password`` (a fresh random salt each time)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (constant-time comparison; unknown formats never match)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def check_new_password(password: object) -> str:
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise BadRequest(f"choose a password of {PASSWORD_MIN} to {PASSWORD_MAX} characters (a few words "
                         "make a good one)", code="weak_password")
    return password


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------------------------------------------------ users


def allowed(role: str, action: str) -> bool:
    return action in PERMISSIONS.get(role, frozenset())


def normalise_email(email: object) -> str:
    if not isinstance(email, str) or not EMAIL.match(email.strip()):
        raise BadRequest("give a valid email address (name@example.com)", code="invalid_email")
    return email.strip().lower()


def check_role(role: object) -> str:
    if role not in ROLES:
        raise BadRequest(f"role must be one of {', '.join(ROLES)}", code="invalid_role")
    return str(role)


def _merchant(session: Session, merchant_id: str) -> Merchant:
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound(f"no merchant {merchant_id!r}", code="merchant_not_found")
    return merchant


def create_user(session: Session, merchant_id: str, email: str, role: str, *, password: str | None = None,
                name: str = "") -> ConsoleUser:
    """A user of ``merchant_id`` with a password (operators and tests; people are usually invited)."""
    email, role = normalise_email(email), check_role(role)
    _merchant(session, merchant_id)
    password_hash = hash_password(check_new_password(password)) if password is not None else None
    begin_write(session)
    if session.scalar(select(ConsoleUser.id).where(ConsoleUser.email == email)) is not None:
        session.rollback()
        raise Conflict(f"{email} already has a console account", code="user_exists")
    user = ConsoleUser(merchant_id=merchant_id, email=email, role=role, name=name[:200],
                       password_hash=password_hash)
    session.add(user)
    session.commit()
    return user


def invite_user(session: Session, merchant_id: str, email: str, role: str) -> tuple[ConsoleUser, str]:
    """Invite ``email`` to the merchant's console: ``(user, token)``; the token is shown once (a link).

    Inviting an email that was invited but never signed in renews its invitation; an active account is a 409.
    """
    email, role = normalise_email(email), check_role(role)
    _merchant(session, merchant_id)
    token = secrets.token_urlsafe(32)
    begin_write(session)
    user = session.scalar(select(ConsoleUser).where(ConsoleUser.email == email))
    if user is not None and (user.password_hash is not None or user.merchant_id != merchant_id):
        session.rollback()
        raise Conflict(f"{email} already has a console account", code="user_exists")
    if user is None:
        user = ConsoleUser(merchant_id=merchant_id, email=email, role=role)
        session.add(user)
    user.role, user.invite_hash = role, _sha256(token)
    user.invite_expires_at = utcnow() + timedelta(days=INVITE_DAYS)
    session.commit()
    return user, token


def invited_user(session: Session, token: str) -> ConsoleUser:
    """The user an unexpired invitation token belongs to; 404 otherwise (used, expired or made up)."""
    user = session.scalar(select(ConsoleUser).where(ConsoleUser.invite_hash == _sha256(token)))
    if user is None or user.invite_expires_at is None or user.invite_expires_at < utcnow():
        raise NotFound("this invitation is not valid any more; ask your shop's owner for a new one",
                       code="invite_not_found")
    return user


def accept_invite(session: Session, token: str, password: object, name: object = "") -> ConsoleUser:
    """Set the invited user's password (the invitation is used up)."""
    user = invited_user(session, token)
    password_hash = hash_password(check_new_password(password))
    begin_write(session)
    user = session.get(ConsoleUser, user.id, populate_existing=True)
    if user is None or user.invite_hash != _sha256(token):
        session.rollback()
        raise NotFound("this invitation was just used", code="invite_not_found")
    user.password_hash, user.invite_hash, user.invite_expires_at = password_hash, None, None
    user.name = str(name or "")[:200]
    session.commit()
    return user


def list_users(session: Session, merchant_id: str | None = None) -> list[ConsoleUser]:
    query = select(ConsoleUser).order_by(ConsoleUser.merchant_id, ConsoleUser.email)
    if merchant_id:
        query = query.where(ConsoleUser.merchant_id == merchant_id)
    return list(session.scalars(query))


def user_to_dict(user: ConsoleUser) -> dict[str, Any]:
    status = "disabled" if user.disabled_at else ("invited" if user.password_hash is None else "active")
    return {"id": user.id, "merchant_id": user.merchant_id, "email": user.email, "name": user.name,
            "role": user.role, "status": status, "created_at": user.created_at.isoformat(),
            "last_sign_in_at": user.last_sign_in_at.isoformat() if user.last_sign_in_at else None}


# --------------------------------------------------------------------------------------------- sessions


@dataclass(frozen=True)
class SignedIn:
    """The signed-in user of a console request."""

    session_id: str
    user_id: str
    merchant_id: str
    merchant_name: str
    email: str
    name: str
    role: str
    csrf_token: str

    def can(self, action: str) -> bool:
        return allowed(self.role, action)

    def require(self, action: str) -> None:
        """403 when the user's role may not ``action``."""
        if not self.can(action):
            raise Forbidden(f"your role ({self.role}) cannot do this; ask an owner of the shop",
                            code="role_forbidden")


def sign_in(session: Session, email: object, password: object, address: str | None) -> tuple[ConsoleUser, str]:
    """Check the credentials and open a session: ``(user, cookie token)``; one vague 401 for any failure."""
    global _DUMMY_HASH
    email_text = str(email or "").strip().lower()[:254]
    limits = current_app.extensions.setdefault("console_sign_in_limits", (
        RateLimiter(*SIGN_IN_PER_EMAIL), RateLimiter(*SIGN_IN_PER_ADDRESS)))  # each web process keeps its own
    limits[0].take(caller_key("console-sign-in:" + email_text, None))
    limits[1].take(caller_key("console-sign-in", address))
    user = session.scalar(select(ConsoleUser).where(ConsoleUser.email == email_text)) if email_text else None
    password_text = password if isinstance(password, str) and len(password) <= PASSWORD_MAX else ""
    if user is None or user.password_hash is None or user.disabled_at is not None:
        _DUMMY_HASH = _DUMMY_HASH or hash_password("not a password of anyone")
        check_password(password_text, _DUMMY_HASH)  # the same work as for a real account
        raise Unauthorized("the email or the password is not right", code="sign_in_failed")
    if not check_password(password_text, user.password_hash):
        raise Unauthorized("the email or the password is not right", code="sign_in_failed")
    token = secrets.token_urlsafe(32)
    now = utcnow()
    begin_write(session)
    session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
    session.add(ConsoleSession(token_hash=_sha256(token), user_id=user.id, merchant_id=user.merchant_id,
                               csrf_token=secrets.token_urlsafe(32), created_at=now, last_seen_at=now,
                               expires_at=now + timedelta(hours=SESSION_HOURS), notices=[]))
    session.execute(update(ConsoleUser).where(ConsoleUser.id == user.id).values(last_sign_in_at=now))
    session.commit()
    return user, token


def _live(row: ConsoleSession | None, now: datetime) -> bool:
    return row is not None and row.expires_at > now and now - row.last_seen_at < timedelta(hours=IDLE_HOURS)


def session_for_token(session: Session, token: str | None) -> SignedIn | None:
    """The signed-in user of a cookie token, or ``None`` (no cookie, signed out, expired, disabled)."""
    if not token or len(token) > 200:
        return None
    found = session.execute(
        select(ConsoleSession, ConsoleUser, Merchant.name)
        .join(ConsoleUser, ConsoleUser.id == ConsoleSession.user_id)
        .join(Merchant, Merchant.id == ConsoleSession.merchant_id)
        .where(ConsoleSession.token_hash == _sha256(token))).first()
    now = utcnow()
    if found is None:
        return None
    row, user, merchant_name = found
    if not _live(row, now) or user.disabled_at is not None or user.merchant_id != row.merchant_id:
        return None
    if now - row.last_seen_at > SEEN_RESOLUTION:  # written every few minutes, not on every page
        begin_write(session)
        session.execute(update(ConsoleSession).where(ConsoleSession.id == row.id).values(last_seen_at=now))
        session.commit()
    return SignedIn(session_id=row.id, user_id=user.id, merchant_id=user.merchant_id, merchant_name=merchant_name,
                    email=user.email, name=user.name, role=user.role, csrf_token=row.csrf_token)


def sign_out(session: Session, signed_in: SignedIn) -> None:
    begin_write(session)
    session.execute(delete(ConsoleSession).where(ConsoleSession.id == signed_in.session_id))
    session.commit()


def check_csrf(signed_in_token: str, sent: str | None) -> None:
    """403 unless ``sent`` is the session's CSRF token."""
    if not sent or not hmac.compare_digest(sent.encode(), signed_in_token.encode()):
        raise Forbidden("this form has expired or did not come from the console; reload the page and try again",
                        code="csrf_failed")


def check_origin(own_origin: str) -> None:
    """403 when a browser says the request comes from another site (``Origin``, or ``Referer`` without it)."""
    origin = request.headers.get("Origin")
    if origin is None and request.referrer:
        parts = request.referrer.split("/", 3)
        origin = "/".join(parts[:3]) if len(parts) >= 3 else request.referrer
    if origin is not None and origin != "null" and origin.rstrip("/") != own_origin:
        raise Forbidden("requests to the console must come from the console's own pages", code="csrf_failed")
    if origin == "null":
        raise Forbidden("requests to the console must come from the console's own pages", code="csrf_failed")


def add_notice(session: Session, signed_in: SignedIn, text: str) -> None:
    """A one-line message for the next page this session shows (after a redirect)."""
    begin_write(session)
    row = session.get(ConsoleSession, signed_in.session_id)
    if row is not None:
        row.notices = [*row.notices[-4:], text[:300]]
    session.commit()


def take_notices(session: Session, signed_in: SignedIn) -> list[str]:
    """The session's pending messages, removed as they are read (no write when there are none)."""
    row = session.get(ConsoleSession, signed_in.session_id)
    if row is None or not row.notices:
        return []
    notices = list(row.notices)
    begin_write(session)
    session.execute(update(ConsoleSession).where(ConsoleSession.id == signed_in.session_id).values(notices=[]))
    session.commit()
    return notices


# ------------------------------------------------------------------------------------ upload credential


def mint_upload_credential(settings: Mapping[str, Any], signed_in: SignedIn) -> tuple[str, int]:
    """``(credential, expires_at)`` for the page's tus uploads; only for roles that may add media."""
    signed_in.require("edit")
    expires = int(utcnow().timestamp()) + UPLOAD_TTL_SECONDS
    token = UPLOAD_TOKENS.encode(settings["SECRET_KEY"], {"s": signed_in.session_id, "m": signed_in.merchant_id,
                                                          "e": expires})
    return f"{UPLOAD_PREFIX}_{token}", expires


def verify_upload_credential(session: Session, credential: str) -> Principal:
    """The principal of an upload credential (``Feature.token_verifiers``): the session must still be live
    and its user still allowed to add media; good for ``/v1/uploads`` only."""
    try:
        payload = UPLOAD_TOKENS.decode(current_app.config["SECRET_KEY"], credential.removeprefix(f"{UPLOAD_PREFIX}_"))
    except TokenInvalid as exc:
        raise Unauthorized("this upload link expired; reload the console page", code="upload_credential_invalid") \
            from exc
    found = session.execute(select(ConsoleSession, ConsoleUser).join(ConsoleUser, ConsoleUser.id ==
                                                                     ConsoleSession.user_id)
                            .where(ConsoleSession.id == payload.get("s"))).first()
    if found is None or not _live(found[0], utcnow()) or found[1].disabled_at is not None \
            or not allowed(found[1].role, "edit") or found[0].merchant_id != payload.get("m"):
        raise Unauthorized("you were signed out; sign in to the console again", code="upload_credential_invalid")

    def uploads_only() -> None:
        if not request.path.startswith("/v1/uploads"):
            raise Forbidden("a console upload credential only uploads files", code="credential_restricted")

    return Principal(merchant_id=found[0].merchant_id, scopes=frozenset({"assets:write"}),
                     key_id=f"console:{found[1].id}", restriction=uploads_only)
