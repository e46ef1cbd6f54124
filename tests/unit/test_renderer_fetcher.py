"""The URL fetcher serves the bundled assets and refuses everything else."""

from __future__ import annotations

from pathlib import Path

import pytest
from snapshot_renderer.render.fetcher import AssetsOnlyFetcher
from snapshot_renderer.render.resources import assets_dir


@pytest.fixture
def assets(tmp_path: Path) -> Path:
    root = tmp_path / "assets"
    (root / "fonts").mkdir(parents=True)
    (root / "style.css").write_text("body { color: black }")
    (root / "fonts" / "face.woff2").write_bytes(b"wOF2")
    (tmp_path / "secret.txt").write_text("secret")
    (root / "link.css").symlink_to(tmp_path / "secret.txt")
    return root


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/x.css",
        "https://example.com/x.png",
        "http://127.0.0.1:15672/api/overview",
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
        "ftp://example.com/file",
        "data:text/css,body{color:red}",
        "data:image/png;base64,iVBORw0KGgo=",
        "javascript:alert(1)",
    ],
)
def test_refuses_anything_but_bundled_assets(assets: Path, url: str) -> None:
    refused: list[str] = []
    fetcher = AssetsOnlyFetcher(assets, on_refuse=refused.append)

    with pytest.raises(ValueError, match="refused"):
        fetcher.fetch(url)

    assert fetcher.refused == 1 and refused == [url]


@pytest.mark.parametrize(
    "relative",
    ["../secret.txt", "link.css", "missing.css", "fonts", "fonts/../../secret.txt"],
)
def test_refuses_escapes_symlinks_and_non_files(assets: Path, relative: str) -> None:
    fetcher = AssetsOnlyFetcher(assets)
    url = f"file://{assets}/{relative}"

    with pytest.raises(ValueError):
        fetcher.fetch(url)
    assert fetcher.refused == 1


def test_refuses_file_urls_with_a_remote_host(assets: Path) -> None:
    fetcher = AssetsOnlyFetcher(assets)
    with pytest.raises(ValueError):
        fetcher.fetch(f"file://evil.example{assets}/style.css")


def test_serves_a_file_inside_assets(assets: Path) -> None:
    fetcher = AssetsOnlyFetcher(assets)

    response = fetcher.fetch((assets / "style.css").as_uri())

    assert response.read() == b"body { color: black }"
    assert response.content_type == "text/css"
    assert fetcher.refused == 0
    font = fetcher.fetch((assets / "fonts" / "face.woff2").as_uri())
    assert font.read() == b"wOF2"


def test_serves_the_real_bundled_stylesheet() -> None:
    fetcher = AssetsOnlyFetcher(assets_dir())

    response = fetcher(f"{assets_dir().as_uri()}/snapshot.css")

    assert b"@page" in response.read()
