"""Where the CLI finds the API URL and the token: a flag, else the environment, else the
config file, else the default (URL only).

The config file is TOML with two keys, ``api_url`` and ``token``. It is ``--config PATH``, else
``$SNAPSHOTS_CONFIG``, else ``$XDG_CONFIG_HOME/snapshots/config.toml`` (``~/.config/…`` when
``XDG_CONFIG_HOME`` is unset). A missing default file is fine; a missing file that was named
explicitly, a file that is not TOML, or an unknown key is a ``ConfigError``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_API_URL = "http://127.0.0.1:8000"
ENV_API_URL = "SNAPSHOTS_API_URL"
ENV_TOKEN = "SNAPSHOTS_TOKEN"
ENV_CONFIG = "SNAPSHOTS_CONFIG"
KEYS = ("api_url", "token")


class ConfigError(Exception):
    """The configuration cannot be used (unreadable file, bad TOML, unknown key, bad URL)."""


@dataclass(frozen=True)
class Config:
    api_url: str
    token: str | None
    # where each value came from: "flag", "env", "file", "default"
    sources: dict[str, str] = field(default_factory=dict, compare=False)


def default_path(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "snapshots" / "config.toml"


def read_file(path: Path, *, required: bool) -> dict[str, str]:
    """The file's settings; ``{}`` for a missing file unless ``required``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise ConfigError(f"config file {path} does not exist") from None
        return {}
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(KEYS)}"
        )
    for key, value in data.items():
        if not isinstance(value, str):
            raise ConfigError(f"config file {path}: {key} must be a string")
    return {k: v for k, v in data.items() if v}


def resolve(
    env: Mapping[str, str],
    *,
    api_url: str | None = None,
    token: str | None = None,
    config: Path | None = None,
) -> Config:
    """Flag > environment > file > default, for each value on its own."""
    named = config or (Path(env[ENV_CONFIG]) if env.get(ENV_CONFIG) else None)
    from_file = read_file(named or default_path(env), required=named is not None)
    values: dict[str, str | None] = {}
    sources: dict[str, str] = {}
    for key, flag, env_name in (("api_url", api_url, ENV_API_URL), ("token", token, ENV_TOKEN)):
        for source, value in (
            ("flag", flag),
            ("env", env.get(env_name)),
            ("file", from_file.get(key)),
        ):
            if value:
                values[key], sources[key] = value, source
                break
    url = values.get("api_url") or DEFAULT_API_URL
    sources.setdefault("api_url", "default")
    if not url.lower().startswith(("http://", "https://")):
        raise ConfigError(
            f"API URL {url!r} ({sources['api_url']}) must start with http:// or https://"
        )
    return Config(url.rstrip("/"), values.get("token"), sources)
