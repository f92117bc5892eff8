"""The widget tests' helpers; the browser fixtures (``browser``, ``page``, ``host_site``) are the shared plugin
``tests/support/browser.py``."""

from __future__ import annotations

from tests.support.browser import ARTIFACTS, CHROMIUM, FLAGS, HostSite, shot

__all__ = ["ARTIFACTS", "CHROMIUM", "FLAGS", "HostSite", "shot"]
