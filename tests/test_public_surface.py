"""The public surface stays what merchants use: HTTP routes, OpenAPI operations and CLI commands.

`tests/support/public_surface.json` is the surface as it was before the service was reorganised into
feature packages; a change to it is a change to the product, made on purpose: regenerate the file with
`python -m tests.test_public_surface > tests/support/public_surface.json` and say why in the commit.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from media_service import create_app
from media_service.cli import main
from media_service.web.openapi import openapi_document

SNAPSHOT = Path(__file__).parent / "support" / "public_surface.json"
OPERATIONS = ("get", "post", "put", "patch", "delete", "head", "options")


def _cli_tree(command: click.Command, prefix: str = "") -> dict[str, list[str]]:
    name = f"{prefix} {command.name}".strip()
    tree = {name: sorted(p.opts[0] if p.opts else str(p.name) for p in command.params)}
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            tree.update(_cli_tree(sub, name))
    return tree


def public_surface(data_dir: str) -> dict[str, Any]:
    app = create_app({"DATA_DIR": data_dir})
    routes = sorted(f"{rule.rule} {','.join(sorted(m for m in rule.methods or () if m not in ('HEAD', 'OPTIONS')))}"
                    for rule in app.url_map.iter_rules())
    with app.app_context():
        document = openapi_document()
    operations = sorted(f"{method.upper()} {path}" for path, item in document["paths"].items()
                        for method in item if method in OPERATIONS)
    return {"routes": routes, "openapi_operations": operations, "cli": _cli_tree(main)}


def test_routes_openapi_and_cli_are_unchanged(tmp_path: Path) -> None:
    expected = json.loads(SNAPSHOT.read_text())
    actual = public_surface(str(tmp_path))
    for part in ("routes", "openapi_operations", "cli"):
        assert actual[part] == expected[part], f"the public {part} changed; see this module's docstring"


if __name__ == "__main__":
    json.dump(public_surface(tempfile.mkdtemp()), sys.stdout, indent=1, sort_keys=True)
