"""The vendored b24jssdk bundle is byte for byte the file its manifest names."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

VENDOR = Path(__file__).parent / "vendor" / "b24jssdk"


def manifest() -> dict:
    """Return the vendor manifest."""
    return json.loads((VENDOR / "manifest.json").read_text(encoding="utf-8"))


def test_every_vendored_file_matches_its_manifest_hash() -> None:
    files = manifest()["files"]
    assert {entry["path"] for entry in files} == {"b24jssdk.umd.min.js", "LICENSE"}
    for entry in files:
        digest = hashlib.sha256((VENDOR / entry["path"]).read_bytes()).hexdigest()
        assert digest == entry["sha256"], entry["path"]


def test_the_directory_holds_only_the_listed_files() -> None:
    listed = {entry["path"] for entry in manifest()["files"]} | {"manifest.json"}
    assert {path.name for path in VENDOR.iterdir()} == listed


def test_the_bundle_is_the_version_the_manifest_names_and_has_the_frame_client() -> None:
    data = manifest()
    bundle = (VENDOR / "b24jssdk.umd.min.js").read_text(encoding="utf-8")
    assert f"@version {data['version']}" in bundle
    assert "initializeB24Frame" in bundle
    assert data["licence"] == "MIT"
    assert "MIT License" in (VENDOR / data["licence_file"]).read_text(encoding="utf-8")
