"""Vercel's own CLI, pinned, for `vercel build` and `vercel dev` on this machine.

The version lives in local/vercel/package.json and its lock; `ensure_cli()` installs
that tree into .local/vercel-cli/ (git-ignored) and reinstalls when the pin changes.
Node.js and npm are the only things it needs from the machine. `npm install --no-save`
rather than `npm ci`: the lock names the CLI's native helpers for every platform, and
`npm ci` refuses a tree where the registry lacks one of them (the registry reachable
here serves only the linux ones); install takes the lock's versions and skips an
optional package it cannot get.

Why an `overrides` entry: vercel@64.0.2 pins `sandbox@4.4.0`, a release the npm
registry reachable here does not serve (npm answers "No matching version"); `sandbox`
is only the `vercel sandbox` subcommand, which neither `build` nor `dev` loads, so the
nearest served release (4.5.0) stands in for it.

Both commands run the Python builder (@vercel/python), which needs `uv` and a Python
3.12 first on PATH: `cli_env()` puts .venv/bin (which holds both, from pyproject.toml's
dev group) in front.

    build(project_dir)            -> the .vercel/output directory of `vercel build`
    functions(output)             -> every function bundle the build wrote
    materialise(bundle, project_dir, target) -> the bundle as files, from its config alone
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PIN_DIR = ROOT / "local" / "vercel"
INSTALL_DIR = ROOT / ".local" / "vercel-cli"
VENV_BIN = ROOT / ".venv" / "bin"
# Installing the CLI fetches ~290 packages (360 MB unpacked): ~20 s here, minutes on a
# slow link. Ten minutes means the registry is not answering.
NPM_TIMEOUT_S = 600.0
# `vercel build` creates one virtual environment, syncs uv.lock into it (~10 s) and
# writes one bundle per function (~1 s each): ~25 s here for 18 functions.
BUILD_TIMEOUT_S = 600.0
# A stub link: `vercel build` needs .vercel/project.json, and `framework: null` keeps
# one function per api/ file (as vercel.json says). No account is involved.
STUB_PROJECT = {"projectId": "prj_local", "orgId": "team_local", "settings": {"framework": None}}


class VercelCliError(RuntimeError):
    """The CLI could not be installed, or a command of it failed (with its output)."""


def pinned_version() -> str:
    package = json.loads((PIN_DIR / "package.json").read_text())
    version = package["dependencies"]["vercel"]
    assert isinstance(version, str)
    return version


def _pin_digest() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((PIN_DIR / name).read_bytes())
    return digest.hexdigest()


def ensure_cli(install_dir: Path = INSTALL_DIR) -> Path:
    """The pinned `vercel` executable, installed now if missing or stale."""
    binary = install_dir / "node_modules" / ".bin" / "vercel"
    stamp = install_dir / ".pin.sha256"
    want = _pin_digest()
    if binary.exists() and stamp.exists() and stamp.read_text() == want:
        return binary
    npm = shutil.which("npm")
    if npm is None:
        raise VercelCliError("npm is not installed: Vercel's CLI comes from the npm registry")
    install_dir.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(PIN_DIR / name, install_dir / name)
    completed = subprocess.run(
        [npm, "install", "--no-save", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=install_dir,
        capture_output=True,
        text=True,
        timeout=NPM_TIMEOUT_S,
        check=False,
    )
    if completed.returncode != 0 or not binary.exists():
        raise VercelCliError(
            f"npm install of vercel@{pinned_version()} failed:\n{completed.stderr}"
        )
    stamp.write_text(want)
    return binary


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment the CLI runs in: .venv/bin first (Python 3.12 and uv for the
    Python builder), no telemetry, no update check."""
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VERCEL_TELEMETRY_DISABLED"] = "1"
    env["NO_UPDATE_NOTIFIER"] = "1"
    env.update(extra or {})
    return env


def build(project_dir: Path, *, cli: Path | None = None) -> Path:
    """Run `vercel build` in project_dir (a copy: it writes .vercel/ there) and return
    its output directory. Raises VercelCliError with the build log when it fails."""
    cli = cli or ensure_cli()
    link = project_dir / ".vercel" / "project.json"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.write_text(json.dumps(STUB_PROJECT))
    completed = subprocess.run(
        [str(cli), "build", "--yes"],
        cwd=project_dir,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    output = project_dir / ".vercel" / "output"
    if completed.returncode != 0 or not (output / "config.json").exists():
        raise VercelCliError(f"vercel build failed:\n{completed.stdout}\n{completed.stderr}")
    return output


@dataclass(frozen=True)
class Bundle:
    """One `.func` directory of the Build Output API: its path (`api/health`), and its
    `.vc-config.json` (handler, runtime, limits, and `filePathMap`: bundle path ->
    source path relative to the project, the files a prebuilt deploy uploads)."""

    path: str
    func_dir: Path
    config: dict[str, Any]

    @property
    def file_map(self) -> dict[str, str]:
        value = self.config.get("filePathMap", {})
        assert isinstance(value, dict)
        return value


def functions(output: Path) -> list[Bundle]:
    root = output / "functions"
    found = []
    for config_file in sorted(root.rglob("*.func/.vc-config.json")):
        func_dir = config_file.parent
        path = func_dir.relative_to(root).as_posix().removesuffix(".func")
        found.append(Bundle(path, func_dir, json.loads(config_file.read_text())))
    return found


def materialise(bundle: Bundle, project_dir: Path, target: Path) -> int:
    """Lay out the bundle as the platform would unpack it: the files in the .func
    directory plus every filePathMap entry (resolved against project_dir). Returns
    its size in bytes."""
    size = 0
    for source in bundle.func_dir.rglob("*"):
        if source.is_file():
            destination = target / source.relative_to(bundle.func_dir)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
            size += destination.stat().st_size
    for inside, outside in bundle.file_map.items():
        source = (project_dir / outside).resolve()
        destination = target / inside
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)
        size += destination.stat().st_size
    return size
