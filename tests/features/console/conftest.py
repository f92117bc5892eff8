"""Console fixtures: merchant users and a signed-in browser-like client (the real sign-in form)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient

from media_service.features.console.service import create_user
from tests.conftest import MerchantCredentials

PASSWORD = "a long enough passphrase"


@dataclass
class ConsoleUser:
    email: str
    merchant_id: str
    client: FlaskClient
    csrf: str


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def sign_in(app: Flask, email: str, password: str = PASSWORD) -> FlaskClient:
    client = app.test_client()
    page = client.get("/console/sign-in")
    response = client.post("/console/sign-in", data={"csrf_token": csrf_of(page.text), "email": email,
                                                     "password": password})
    assert response.status_code == 303, response.text
    return client


def add_user(app: Flask, merchant: MerchantCredentials, email: str, role: str) -> ConsoleUser:
    with app.extensions["database"].session() as session:
        create_user(session, merchant.merchant_id, email, role, password=PASSWORD)
    client = sign_in(app, email)
    return ConsoleUser(email, merchant.merchant_id, client, csrf_of(client.get("/console/jobs").text))


@pytest.fixture
def owner(app: Flask, merchant: MerchantCredentials) -> ConsoleUser:
    return add_user(app, merchant, "owner@shop-a.example", "owner")


@pytest.fixture
def reviewer(app: Flask, merchant: MerchantCredentials) -> ConsoleUser:
    return add_user(app, merchant, "reviewer@shop-a.example", "reviewer")


@pytest.fixture
def other_owner(app: Flask, other_merchant: MerchantCredentials) -> ConsoleUser:
    return add_user(app, other_merchant, "owner@shop-b.example", "owner")
