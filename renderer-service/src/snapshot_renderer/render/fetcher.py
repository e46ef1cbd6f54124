"""The only URL fetcher WeasyPrint gets: bundled assets in, everything else refused.

Nothing is fetched at render time (DESIGN §6): no network, no redirects, no ``data:``, no file
outside the assets directory (symlinks are resolved before the check).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from weasyprint.urls import URLFetcher, URLFetcherResponse


class AssetsOnlyFetcher(URLFetcher):  # type: ignore[misc]  # weasyprint is untyped
    """Serve ``file://`` URLs inside the assets directory; refuse every other URL."""

    def __init__(self, assets_dir: Path, on_refuse: Callable[[str], None] | None = None) -> None:
        super().__init__(allowed_protocols=("file",), allow_redirects=False)
        self.assets_dir = assets_dir.resolve()
        self.refused = 0
        self._on_refuse = on_refuse

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> URLFetcherResponse:
        """Return the asset behind ``url`` or raise ``ValueError``."""
        path = self._allowed_path(url)
        if path is None:
            self.refused += 1
            if self._on_refuse is not None:
                self._on_refuse(url)
            raise ValueError(f"refused to fetch {url[:200]!r}: only bundled assets are served")
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(
            path.as_uri(), body=path.read_bytes(), headers={"Content-Type": content_type}
        )

    def _allowed_path(self, url: str) -> Path | None:
        """The real path of an allowed ``file://`` URL, else ``None``."""
        parts = urlsplit(url)
        if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
            return None
        try:
            path = Path(unquote(parts.path)).resolve(strict=True)
        except (OSError, RuntimeError, ValueError):
            return None
        if not path.is_file() or not path.is_relative_to(self.assets_dir):
            return None
        return path
