"""Where the ``snapshots`` CLI finds its API URL and token: flag > env > file > default."""

from __future__ import annotations

from pathlib import Path

import pytest
from snapshot_client.config import DEFAULT_API_URL, ConfigError, default_path, resolve


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """An environment whose default config file holds both values."""
    env = {"HOME": str(tmp_path)}
    write(default_path(env), 'api_url = "http://file.example:1"\ntoken = "file-token"\n')
    return env


def test_default_path_follows_xdg_then_home(tmp_path: Path) -> None:
    assert default_path({"HOME": "/h"}) == Path("/h/.config/snapshots/config.toml")
    assert default_path({"HOME": "/h", "XDG_CONFIG_HOME": "/x"}) == Path("/x/snapshots/config.toml")


def test_file_then_env_then_flag(home: dict[str, str]) -> None:
    cfg = resolve(home)
    assert (cfg.api_url, cfg.token) == ("http://file.example:1", "file-token")
    assert cfg.sources == {"api_url": "file", "token": "file"}

    env = {**home, "SNAPSHOTS_API_URL": "http://env.example:2/", "SNAPSHOTS_TOKEN": "env-token"}
    cfg = resolve(env)
    assert (cfg.api_url, cfg.token) == ("http://env.example:2", "env-token")

    cfg = resolve(env, api_url="https://flag.example", token="flag-token")
    assert (cfg.api_url, cfg.token) == ("https://flag.example", "flag-token")
    assert cfg.sources == {"api_url": "flag", "token": "flag"}


def test_each_value_resolves_on_its_own(home: dict[str, str]) -> None:
    cfg = resolve({**home, "SNAPSHOTS_TOKEN": "env-token"}, api_url=None)
    assert (cfg.api_url, cfg.token) == ("http://file.example:1", "env-token")
    assert cfg.sources == {"api_url": "file", "token": "env"}


def test_empty_env_values_count_as_unset(home: dict[str, str]) -> None:
    cfg = resolve({**home, "SNAPSHOTS_API_URL": "", "SNAPSHOTS_TOKEN": ""})
    assert (cfg.api_url, cfg.token) == ("http://file.example:1", "file-token")


def test_defaults_without_any_file(tmp_path: Path) -> None:
    cfg = resolve({"HOME": str(tmp_path)})
    assert (cfg.api_url, cfg.token, cfg.sources["api_url"]) == (DEFAULT_API_URL, None, "default")


def test_named_file_beats_the_default_one(home: dict[str, str], tmp_path: Path) -> None:
    other = write(tmp_path / "other.toml", 'token = "other-token"\n')
    assert resolve(home, config=other).token == "other-token"
    assert resolve({**home, "SNAPSHOTS_CONFIG": str(other)}).token == "other-token"
    assert resolve(home, config=other).api_url == DEFAULT_API_URL  # not mixed with the default


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('api_url = "http://x"\ntokn = "typo"\n', "unknown key(s) tokn"),
        ("token = \n", "not valid TOML"),
        ("token = 5\n", "token must be a string"),
        ('api_url = "ftp://x"\n', "must start with http:// or https://"),
    ],
)
def test_bad_files_are_refused_with_the_reason(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "c.toml", text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve({"HOME": str(tmp_path)}, config=path)


def test_a_named_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        resolve({"HOME": str(tmp_path), "SNAPSHOTS_CONFIG": str(tmp_path / "missing.toml")})
