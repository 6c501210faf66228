"""The lock files: every dependency pinned with hashes, and the Makefile installs from them.

Issue 11, finding 10: "no lock file, so an install can pull any future version of 20
dependencies". The locks are made by ``make lock`` (uv); these checks fail when a dependency is
added to ``pyproject.toml`` without regenerating them, or when an install path stops using them.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCKS = {"runtime": ROOT / "requirements" / "lock.txt", "dev": ROOT / "requirements" / "dev-lock.txt"}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, tuple[str, int]]:
    """Package → (version, number of hashes) of a lock file."""
    out: dict[str, tuple[str, int]] = {}
    current = None
    for line in path.read_text().splitlines():
        match = _PIN.match(line)
        if match:
            current = _normal(match.group(1))
            out[current] = (match.group(3), 0)
        if current and "--hash=sha256:" in line:
            version, hashes = out[current]
            out[current] = (version, hashes + line.count("--hash=sha256:"))
    return out


def _requirements(names: list[str]) -> set[str]:
    return {_normal(re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0]) for r in names}


def test_every_pin_has_a_hash_and_no_line_is_unpinned():
    for path in LOCKS.values():
        locked = pins(path)
        assert len(locked) > 50, path
        assert all(hashes >= 1 for _, hashes in locked.values()), [p for p, (_, h) in locked.items() if not h]
        requirement_lines = [line for line in path.read_text().splitlines()
                             if line and not line.startswith((" ", "#", "-"))]
        assert all(_PIN.match(line) for line in requirement_lines), path


def test_the_locks_hold_every_dependency_and_agree_on_versions():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime, dev = pins(LOCKS["runtime"]), pins(LOCKS["dev"])
    needed = _requirements(project["dependencies"]) | _requirements(project["optional-dependencies"]["production"])
    assert needed <= set(runtime), needed - set(runtime)
    assert needed | _requirements(project["optional-dependencies"]["dev"]) <= set(dev)
    assert {"setuptools", "wheel"} <= set(runtime) & set(dev)  # the build itself installs nothing unhashed
    assert {p: v for p, (v, _) in runtime.items()} == {p: dev[p][0] for p in runtime}


def test_make_demo_and_make_test_install_from_the_locks():
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r $(LOCK)" in makefile and "--require-hashes -r $(DEV_LOCK)" in makefile
    assert "LOCK     := requirements/lock.txt" in makefile and "DEV_LOCK := requirements/dev-lock.txt" in makefile
    # alliance itself is installed without resolving dependencies again
    assert makefile.count("--no-deps --no-build-isolation -e .") == 2
    assert "pip install --quiet -e ." not in makefile
