"""How the web app's parts depend on each other, read from the source rather than trusted.

- ``accounts`` and ``capture`` do not import each other both ways (capture's views use accounts'
  roles; accounts reaches capture's models through the app registry and relations);
- importing a module sets nothing up: ``alliance.web.capture.storage`` imported without
  :func:`alliance.web.django_setup` leaves Django unconfigured (in a fresh process);
- only the settings edges read or write ``os.environ``.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
WEB = SRC / "alliance" / "web"


def imported_modules(path: Path, package: str | None = None) -> set[str]:
    """Every module a file imports, at the top or inside functions, relative imports resolved.

    ``package`` is the file's package (default: from its place under ``src/``).
    """
    package = package or ".".join(path.relative_to(SRC).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = parts[:len(parts) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            found.add(module)
            # `from alliance.web import capture` imports the package alliance.web.capture too.
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def imports_between(source: str, target: str) -> list[str]:
    """``file -> module`` for each import of a module of app ``target`` by a file of app ``source``."""
    prefix = f"alliance.web.{target}"
    return sorted(f"{path.relative_to(SRC)} -> {module}"
                  for path in (WEB / source).rglob("*.py")
                  for module in imported_modules(path)
                  if module == prefix or module.startswith(prefix + "."))


def test_the_import_reader_sees_relative_imports_and_imports_inside_functions(tmp_path):
    source = tmp_path / "example.py"
    source.write_text("from . import models\nfrom .. import audit\n\n"
                      "def f():\n    from alliance.web.accounts.access import role_in\n", encoding="utf-8")
    found = imported_modules(source, package="alliance.web.capture")
    assert {"alliance.web.capture.models", "alliance.web.audit", "alliance.web.accounts.access"} <= found


def test_accounts_and_capture_do_not_import_each_other_both_ways():
    accounts_to_capture = imports_between("accounts", "capture")
    capture_to_accounts = imports_between("capture", "accounts")
    assert capture_to_accounts, "the reader found no import at all: it is broken"
    assert not (accounts_to_capture and capture_to_accounts), (
        "accounts and capture import each other:\n" + "\n".join(accounts_to_capture + capture_to_accounts))


def test_the_audit_app_imports_no_other_app():
    for app in ("accounts", "capture", "monitor"):
        assert imports_between("audit", app) == []


def test_importing_storage_does_not_set_django_up():
    code = ("import django.conf\n"
            "try:\n"
            "    import alliance.web.capture.storage\n"
            "except Exception as error:\n"
            "    print(type(error).__name__)\n"
            "print('configured' if django.conf.settings.configured else 'not configured')\n")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["ImproperlyConfigured", "not configured"]


def test_only_the_settings_edges_touch_the_process_environment():
    edges = {WEB / "settings.py", WEB / "wsgi.py", WEB / "__init__.py"}
    touching = []
    for path in sorted((SRC / "alliance").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv", "unsetenv")
                    and isinstance(node.value, ast.Name) and node.value.id == "os" and path not in edges):
                touching.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert touching == []
