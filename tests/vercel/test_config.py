"""vercel.json says what we rely on: one function per file, a duration and memory for
every function (the cron's long one winning over the general glob), and the sync cron."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from local.server import API_DIR, ROOT, discover_routes, resolve

CRON_FILE = "api/cron/sync.py"  # arrives with the sync; its glob and cron are kept until then
STUDENT_MAX_DURATION_S = 30
CRON_MAX_DURATION_S = 300  # Fluid compute's ceiling on Hobby; the sync checkpoints inside it
# Functions that run the sync inside the request: the cron, and an admin's "run now".
SYNC_FILES = frozenset({CRON_FILE, "api/admin/sync/runs/index.py"})
MEMORY_MB = 1024


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    value = json.loads((ROOT / "vercel.json").read_text())
    assert isinstance(value, dict)
    return value


def _function_files() -> list[str]:
    return sorted(route.file.relative_to(ROOT).as_posix() for route in discover_routes(API_DIR))


def _glob(pattern: str) -> re.Pattern[str]:
    """minimatch's reading of the globs we use: `**/` spans zero or more directories,
    `*` and `?` stay inside one segment, and neither matches a leading dot."""
    assert not set(pattern) & set("{}[]!+@"), f"{pattern}: a glob feature this test cannot read"
    out = ""
    rest = pattern
    while rest:
        if rest.startswith("**/"):
            out, rest = out + r"(?:[^/.][^/]*/)*", rest[3:]
        elif rest[0] == "*":
            out, rest = out + r"(?:[^/.][^/]*)?", rest[1:]
        elif rest[0] == "?":
            out, rest = out + r"[^/]", rest[1:]
        else:
            out, rest = out + re.escape(rest[0]), rest[1:]
    return re.compile(out + r"\Z")


def _settings_for(config: dict[str, Any], file: str) -> dict[str, Any]:
    """What Vercel applies to `file`: the FIRST pattern in `functions` that matches
    (@vercel/build-utils getLambdaOptionsFromFunction), so order matters."""
    for pattern, settings in config["functions"].items():
        if file == pattern or _glob(pattern).match(file):
            assert isinstance(settings, dict)
            return settings
    raise AssertionError(f"no functions pattern in vercel.json matches {file}")


def test_one_function_per_file(config: dict[str, Any]) -> None:
    # requirements.txt at the root would make the CLI guess a single-app framework.
    assert "framework" in config
    assert config["framework"] is None


def test_the_glob_reading_matches_minimatch() -> None:
    glob = _glob("api/**/*.py")
    assert glob.match("api/health.py")
    assert glob.match("api/mock-exams/[id]/capacity.py")
    assert not glob.match("api/.hidden.py")
    assert not glob.match("lib/http.py")
    assert not _glob("api/*.py").match("api/bookings/list.py")


def test_every_function_has_its_duration_and_memory(config: dict[str, Any]) -> None:
    files = _function_files()
    assert files, "no function files under api/"
    for file in files:
        settings = _settings_for(config, file)
        expected = CRON_MAX_DURATION_S if file in SYNC_FILES else STUDENT_MAX_DURATION_S
        assert settings.get("maxDuration") == expected, file
        assert settings.get("memory") == MEMORY_MB, file
    assert _settings_for(config, CRON_FILE)["maxDuration"] == CRON_MAX_DURATION_S


def test_function_settings_use_only_known_keys(config: dict[str, Any]) -> None:
    for pattern, settings in config["functions"].items():
        assert set(settings) <= {"maxDuration", "memory", "includeFiles", "excludeFiles"}, pattern
        for key in ("includeFiles", "excludeFiles"):
            # One glob string each: the schema rejects a list.
            assert isinstance(settings.get(key, ""), str), (pattern, key)
        assert isinstance(settings["maxDuration"], int)
        assert 1 <= settings["maxDuration"] <= 800  # 800: the Pro/Enterprise ceiling


def test_every_glob_matches_a_function(config: dict[str, Any]) -> None:
    # Vercel fails the build on a `functions` pattern that matches no function.
    files = _function_files()
    for pattern in config["functions"]:
        if pattern == CRON_FILE:
            continue  # allowed ahead of its file (see CRON_FILE)
        assert any(file == pattern or _glob(pattern).match(file) for file in files), pattern


def test_the_sync_cron(config: dict[str, Any]) -> None:
    assert config["crons"] == [{"path": "/api/cron/sync", "schedule": "0 */2 * * *"}]
    routes = discover_routes(API_DIR)
    for cron in config["crons"]:
        assert set(cron) == {"path", "schedule"}  # the only keys Vercel accepts
        # Crons do not follow redirects: the path must be a function's own.
        assert cron["path"] == "/" + CRON_FILE.removesuffix(".py") or resolve(routes, cron["path"])


def test_the_dev_config_drops_only_what_vercel_dev_refuses(config: dict[str, Any]) -> None:
    from local.vercel_dev import dev_config

    dev: dict[str, Any] = dev_config(config)
    assert dev["crons"] == config["crons"] and dev["framework"] is None
    for pattern, settings in config["functions"].items():
        kept = dev["functions"][pattern]
        assert "maxDuration" not in kept and "memory" not in kept
        assert kept["excludeFiles"] == settings["excludeFiles"]
    assert config["functions"]["api/**/*.py"]["maxDuration"] == STUDENT_MAX_DURATION_S  # untouched


def test_every_function_leaves_the_same_files_out(config: dict[str, Any]) -> None:
    # excludeFiles is read from the first matching pattern: each carries the same list.
    excluded = {settings.get("excludeFiles") for settings in config["functions"].values()}
    assert len(excluded) == 1 and None not in excluded
    for folder in ("tests/**", "bench/**", "reliability/**", "local/**", ".env*", ".local/**"):
        assert folder in next(iter(excluded)), folder
