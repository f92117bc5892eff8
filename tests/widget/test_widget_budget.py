"""The whole widget (script and its styles) stays within the mobile budget: <= 30 KB gzipped, no imports."""

from __future__ import annotations

import gzip
import re

from tests.conftest import REPO

WIDGET = REPO / "static" / "media-viewer.js"


def test_widget_is_small_and_self_contained() -> None:
    source = WIDGET.read_bytes()
    assert len(gzip.compress(source, compresslevel=9)) <= 30 * 1024
    text = source.decode()
    assert not re.search(r"^\s*import\s", text, re.MULTILINE), "the widget must not load other modules"
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text
    assert "postMessage(" in text and "'*'" not in text and '"*"' not in text  # never posts to any origin
