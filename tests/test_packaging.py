"""The Apache-2.0 LICENSE is at the repository root and declared, so the wheel ships it.

Building a wheel is too slow for the test suite; `pip wheel --no-deps -w DIR .` puts the file
in the wheel's ``.dist-info/licenses/LICENSE`` (PEP 639, hatchling >= 1.27).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
LICENSE = REPO_ROOT / "LICENSE"


def _pyproject() -> dict[str, Any]:
    with (REPO_ROOT / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)


def test_license_file_is_the_apache_2_text() -> None:
    assert LICENSE.is_file()
    text = LICENSE.read_text(encoding="utf-8")
    assert text.lstrip().startswith("Apache License")
    assert "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert "Copyright 2026 The judgealign authors" in text
    assert "[name of copyright owner]" not in text
    # All nine sections of the terms, not an excerpt.
    for number in range(1, 10):
        assert re.search(rf"^\s+{number}\. \w", text, re.MULTILINE), f"section {number} missing"


def test_pyproject_declares_the_license_file() -> None:
    project = _pyproject()["project"]
    assert project["license"] == "Apache-2.0"  # an SPDX expression (PEP 639)
    assert "LICENSE" in project["license-files"]


def test_build_backend_supports_license_files() -> None:
    build = _pyproject()["build-system"]
    assert build["build-backend"] == "hatchling.build"
    (hatchling,) = [req for req in build["requires"] if req.startswith("hatchling")]
    match = re.fullmatch(r"hatchling>=(\d+)\.(\d+)(?:\.\d+)?", hatchling.replace(" ", ""))
    assert match, hatchling
    assert (int(match[1]), int(match[2])) >= (1, 27), "PEP 639 license-files needs hatchling>=1.27"


def test_wheel_target_packages_the_source() -> None:
    wheel = _pyproject()["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["packages"] == ["src/judgealign"]
