"""Sign-in, sessions, CSRF, roles, invitations and the upload credential, through the real views and SQLite."""

from __future__ import annotations

import base64
import re

from click.testing import CliRunner
from flask import Flask

from media_service.cli import main
from media_service.features.console.service import check_password, hash_password
from media_service.models import ConsoleSession, ConsoleUser
from tests.conftest import MerchantCredentials, media
from tests.features.console.conftest import PASSWORD, csrf_of, sign_in
from tests.features.console.conftest import ConsoleUser as Signed


def test_passwords_are_scrypt_hashed_with_a_fresh_salt() -> None:
    first, second = hash_password("one passphrase here"), hash_password("one passphrase here")
    assert first.startswith("scrypt$16384$8$1$") and first != second
    assert check_password("one passphrase here", first) and not check_password("one passphrase herE", first)
    assert not check_password("anything", "md5$abc")


def test_sign_in_sets_a_secure_session_cookie_and_sign_out_ends_it(app: Flask, owner: Signed) -> None:
    client = app.test_client()
    page = client.get("/console/sign-in")
    response = client.post("/console/sign-in?next=/console/jobs", data={
        "csrf_token": csrf_of(page.text), "email": "OWNER@shop-a.example ", "password": PASSWORD})
    assert response.status_code == 303 and response.headers["Location"] == "/console/jobs"
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("__Host-console="))
    for attribute in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert attribute in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    with app.extensions["database"].session() as session:  # only a hash of the token is stored
        assert all(row.token_hash != token for row in session.query(ConsoleSession))
    page = client.get("/console/library")
    assert page.status_code == 200 and "owner@shop-a.example" in page.text
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    response = client.post("/console/sign-out", data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 303
    assert client.get("/console/library").status_code == 302  # back to sign-in


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(app: Flask, owner: Signed) -> None:
    answers = []
    for email, password in (("owner@shop-a.example", "not the password!!"), ("nobody@shop-a.example", PASSWORD)):
        client = app.test_client()
        page = client.get("/console/sign-in")
        response = client.post("/console/sign-in", data={"csrf_token": csrf_of(page.text), "email": email,
                                                         "password": password})
        answers.append((response.status_code, re.search(r'role="alert"[^>]*>([^<]+)<', response.text).group(1)))
        assert not any(c.startswith("__Host-console=") for c in response.headers.getlist("Set-Cookie"))
    assert answers[0] == answers[1] == (401, "the email or the password is not right")


def test_the_sign_in_form_needs_its_own_csrf_value(app: Flask, owner: Signed) -> None:
    client = app.test_client()
    client.get("/console/sign-in")
    response = client.post("/console/sign-in", data={"csrf_token": "forged", "email": owner.email,
                                                     "password": PASSWORD})
    assert response.status_code == 403
    assert not any(c.startswith("__Host-console=") for c in response.headers.getlist("Set-Cookie"))


def test_state_changes_need_the_csrf_token_and_the_own_origin(app: Flask, owner: Signed,
                                                             merchant: MerchantCredentials, client) -> None:
    with media("panorama/hill/1.JPG").open("rb") as handle:
        asset = client.post("/v1/assets", headers=merchant.headers, data={"file": (handle, "1.JPG")}).json
    url = f"/console/library/{asset['id']}/delete"
    assert "What goes with it" in owner.client.get(url).text
    refused = owner.client.post(url, data={})  # no token: a forged form from another site
    assert refused.status_code == 403 and "did not come from the console" in refused.text
    refused = owner.client.post(url, data={"csrf_token": "x" * 43})
    assert refused.status_code == 403
    refused = owner.client.post(url, data={"csrf_token": owner.csrf}, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    refused = owner.client.post("/console/upload-credential", headers={"Accept": "application/json"})
    assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    assert refused.json["code"] == "csrf_failed"
    assert client.get(f"/v1/assets/{asset['id']}", headers=merchant.headers).status_code == 200  # still there
    done = owner.client.post(url, data={"csrf_token": owner.csrf}, headers={"Origin": "http://localhost"})
    assert done.status_code == 303
    assert client.get(f"/v1/assets/{asset['id']}", headers=merchant.headers).status_code == 404


def test_another_merchants_items_are_not_found(app: Flask, owner: Signed, other_owner: Signed, client,
                                               merchant: MerchantCredentials) -> None:
    with media("panorama/hill/2.JPG").open("rb") as handle:
        asset = client.post("/v1/assets", headers=merchant.headers, data={"file": (handle, "2.JPG")}).json
    assert asset["id"] in owner.client.get("/console/library").text
    assert asset["id"] not in other_owner.client.get("/console/library").text
    assert f'data-asset-id="{asset["id"]}"' not in other_owner.client.get(f"/console/library?q={asset['id']}").text
    assert f'data-asset-id="{asset["id"]}"' in owner.client.get(f"/console/library?q={asset['id']}").text
    page = other_owner.client.get(f"/console/library/{asset['id']}/delete")
    assert page.status_code == 404 and "no asset" in page.text  # the problem, as a readable page
    response = other_owner.client.post(f"/console/library/{asset['id']}/delete", data={"csrf_token": other_owner.csrf})
    assert response.status_code == 404
    response = other_owner.client.post("/console/reviews/decide", data={
        "csrf_token": other_owner.csrf, "decision": "approve", "video_id": "vid_" + "0" * 24})
    assert response.status_code == 404
    assert client.get(f"/v1/assets/{asset['id']}", headers=merchant.headers).status_code == 200


def test_a_reviewer_reviews_but_cannot_delete_or_upload(app: Flask, reviewer: Signed, client,
                                                        merchant: MerchantCredentials) -> None:
    with media("panorama/hill/3.JPG").open("rb") as handle:
        asset = client.post("/v1/assets", headers=merchant.headers, data={"file": (handle, "3.JPG")}).json
    library = reviewer.client.get("/console/library").text
    assert "Delete…" not in library and 'id="dropzone"' not in library
    response = reviewer.client.post(f"/console/library/{asset['id']}/delete", data={"csrf_token": reviewer.csrf})
    assert response.status_code == 403 and "your role (reviewer) cannot do this" in response.text
    response = reviewer.client.post("/console/upload-credential", headers={"X-CSRF-Token": reviewer.csrf,
                                                                           "Accept": "application/json"})
    assert response.status_code == 403 and response.json["code"] == "role_forbidden"
    response = reviewer.client.post("/console/reviews/policy", data={"csrf_token": reviewer.csrf,
                                                                     "buyer_show_auto_approve": "always"})
    assert response.status_code == 403


def _tus_create(client, credential: str, name: str, size: int):
    metadata = "filename " + base64.b64encode(name.encode()).decode()
    return client.post("/v1/uploads", headers={"Authorization": f"Bearer {credential}", "Tus-Resumable": "1.0.0",
                                               "Upload-Length": str(size), "Upload-Metadata": metadata})


def test_the_upload_credential_uploads_only_and_ends_with_the_session(app: Flask, owner: Signed, client) -> None:
    minted = owner.client.post("/console/upload-credential", headers={"X-CSRF-Token": owner.csrf,
                                                                       "Accept": "application/json"})
    assert minted.status_code == 200
    credential = minted.json["credential"]
    assert credential.startswith("mcu_")
    path = media("panorama/hill/1.JPG")
    created = _tus_create(client, credential, path.name, path.stat().st_size)
    assert created.status_code == 201, created.text
    patched = client.patch(created.headers["Location"], data=path.read_bytes(), headers={
        "Authorization": f"Bearer {credential}", "Tus-Resumable": "1.0.0", "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream"})
    assert patched.status_code == 204, patched.text
    assert patched.headers["Media-Service-Asset-Id"] in owner.client.get("/console/library").text
    # good for uploads only
    refused = client.get("/v1/assets", headers={"Authorization": f"Bearer {credential}"})
    assert refused.status_code == 403 and refused.json["code"] == "credential_restricted"
    # a forged or altered credential is refused
    assert _tus_create(client, credential[:-3] + "abc", "x.jpg", 10).status_code == 401
    # signing out ends it
    owner.client.post("/console/sign-out", data={"csrf_token": owner.csrf})
    refused = _tus_create(client, credential, path.name, 10)
    assert refused.status_code == 401 and "signed out" in refused.json["detail"]


def test_an_operator_invites_a_reviewer_who_chooses_a_password(app: Flask, merchant: MerchantCredentials) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["users", "invite", "--merchant", merchant.merchant_id, "--email", "Rev@Shop.example",
                                  "--role", "reviewer", "--base-url", "https://media.example"], obj=app)
    assert result.exit_code == 0, result.output
    link = re.search(r"https://media.example(/console/invite/\S+)", result.output).group(1)
    listed = runner.invoke(main, ["users", "list", "--merchant", merchant.merchant_id], obj=app)
    assert "rev@shop.example\treviewer\tinvited" in listed.output
    client = app.test_client()
    page = client.get(link)
    assert page.status_code == 200 and "reviewer" in page.text
    short = client.post(link, data={"csrf_token": csrf_of(page.text), "password": "short"})
    assert "12 to 256 characters" in short.text
    page = client.get(link)
    response = client.post(link, data={"csrf_token": csrf_of(page.text), "password": PASSWORD, "name": "Rev"})
    assert response.status_code == 303
    assert "rev@shop.example · reviewer" in client.get("/console/reviews").text
    assert app.test_client().get(link).status_code == 404  # used up
    assert "active" in runner.invoke(main, ["users", "list"], obj=app).output
    again = runner.invoke(main, ["users", "invite", "--merchant", merchant.merchant_id, "--email", "rev@shop.example"],
                          obj=app)
    assert again.exit_code != 0 and "already has a console account" in again.output
    with app.extensions["database"].session() as session:
        user = session.query(ConsoleUser).filter_by(email="rev@shop.example").one()
        assert user.password_hash.startswith("scrypt$") and user.invite_hash is None
    sign_in(app, "rev@shop.example")


def test_password_guessing_is_slowed_down(app: Flask, owner: Signed) -> None:
    client = app.test_client()
    statuses = []
    for _ in range(12):
        page = client.get("/console/sign-in")
        statuses.append(client.post("/console/sign-in", data={"csrf_token": csrf_of(page.text), "email": owner.email,
                                                               "password": "guess guess guess"}).status_code)
    assert statuses[:9] == [401] * 9 and statuses[-1] == 429
