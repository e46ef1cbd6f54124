"""One setting for the per-snapshot limits (SNAPSHOT_MAX_SNAPSHOT_*), read by both services;
the older service-specific names still override it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from snapshot_api.settings import Settings as ApiSettings
from snapshot_renderer.settings import Settings as RendererSettings
from snapshot_shared import limits
from snapshot_shared.limits import SnapshotLimits

NAMES = ("MESSAGES", "WEIGHT", "MEMBERS")
PREFIXES = ("SNAPSHOT_", "SNAPSHOT_API_", "SNAPSHOT_RENDERER_")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for prefix in PREFIXES:
        for name in NAMES:
            monkeypatch.delenv(f"{prefix}MAX_SNAPSHOT_{name}", raising=False)


def _api() -> ApiSettings:
    return ApiSettings(env="development")


def test_defaults_are_the_shared_constants() -> None:
    expected = SnapshotLimits(
        limits.SNAPSHOT_MESSAGES, limits.SNAPSHOT_WEIGHT, limits.SNAPSHOT_MEMBERS
    )
    assert _api().snapshot_limits == expected
    assert RendererSettings().snapshot_limits == expected


def test_one_setting_sets_both_services(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNAPSHOT_MAX_SNAPSHOT_MESSAGES", "70")
    monkeypatch.setenv("SNAPSHOT_MAX_SNAPSHOT_WEIGHT", "9000")
    monkeypatch.setenv("SNAPSHOT_MAX_SNAPSHOT_MEMBERS", "3")
    expected = SnapshotLimits(70, 9000, 3)
    renderer = RendererSettings()
    assert _api().snapshot_limits == expected
    assert renderer.snapshot_limits == expected
    assert renderer.max_job_bytes == expected.job_bytes()  # sized by the shared setting


def test_a_service_name_overrides_the_shared_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNAPSHOT_MAX_SNAPSHOT_MESSAGES", "70")
    monkeypatch.setenv("SNAPSHOT_API_MAX_SNAPSHOT_MESSAGES", "60")
    monkeypatch.setenv("SNAPSHOT_RENDERER_MAX_SNAPSHOT_MEMBERS", "4")
    api, renderer = _api(), RendererSettings()
    assert (api.max_snapshot_messages, api.max_snapshot_members) == (60, limits.SNAPSHOT_MEMBERS)
    assert (renderer.max_snapshot_messages, renderer.max_snapshot_members) == (70, 4)
    assert renderer.max_job_bytes == renderer.snapshot_limits.job_bytes()


def test_a_bad_shared_value_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNAPSHOT_MAX_SNAPSHOT_WEIGHT", "0")
    with pytest.raises(ValidationError, match="max_snapshot_weight"):
        RendererSettings()
    with pytest.raises(ValidationError, match="max_snapshot_weight"):
        _api()
