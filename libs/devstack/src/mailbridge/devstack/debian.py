"""Make sure the Debian packages behind the local servers are installed.

As root on Debian the missing packages are installed with apt-get; otherwise a
clear error names the exact command to run.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

log = logging.getLogger(__name__)

_SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"]
)
# Keep postfix from configuring and starting a system-wide MTA on port 25.
_DEBCONF_SELECTIONS = (
    "postfix postfix/main_mailer_type select No configuration\n"
    "postfix postfix/mailname string localhost\n"
)
_lock = threading.Lock()
_apt_updated = False


class MissingPackagesError(RuntimeError):
    """Required packages are missing and cannot be installed from here."""


def find_binary(name: str) -> str | None:
    """Return the path of an executable, looking in the sbin directories too.

    ``name`` may be an absolute path (e.g. ``/usr/lib/dovecot/lmtp``).
    """
    if os.path.isabs(name):
        return name if os.access(name, os.X_OK) else None
    return shutil.which(name, path=_SEARCH_PATH)


def missing_packages(binaries_to_packages: Mapping[str, Iterable[str]]) -> list[str]:
    """Packages that provide the binaries which are not installed, in a stable order."""
    packages: list[str] = []
    for binary, providers in binaries_to_packages.items():
        if find_binary(binary) is None:
            packages.extend(p for p in providers if p not in packages)
    return packages


def ensure_debian_packages(binaries_to_packages: Mapping[str, Iterable[str]]) -> None:
    """Install the packages for missing binaries (as root), or raise naming them."""
    with _lock:
        packages = missing_packages(binaries_to_packages)
        if not packages:
            return
        command = "apt-get install " + " ".join(packages)
        if os.geteuid() != 0:
            raise MissingPackagesError(f"missing packages; as root run: {command}")
        if not _is_debian() or find_binary("apt-get") is None:
            raise MissingPackagesError(f"missing packages, and this is not Debian: {command}")
        log.info("installing Debian packages: %s", " ".join(packages))
        _apt_install(packages)
        still_missing = missing_packages(binaries_to_packages)
        if still_missing:
            raise MissingPackagesError(f"still missing after {command}: {still_missing}")


def _apt_install(packages: list[str]) -> None:
    global _apt_updated
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        _run(["apt-get", "update"], env)
        _apt_updated = True
    if "postfix" in packages and find_binary("debconf-set-selections") is not None:
        _run(["debconf-set-selections"], env, stdin=_DEBCONF_SELECTIONS)
    _run(["apt-get", "install", "-y", "--no-install-recommends", *packages], env)


def _run(argv: list[str], env: dict[str, str], stdin: str | None = None) -> None:
    result = subprocess.run(argv, env=env, input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise MissingPackagesError(
            f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )


def _is_debian() -> bool:
    return Path("/etc/debian_version").exists()
