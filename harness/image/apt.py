"""A private apt configuration for fetching pinned .debs from Debian's signed archive.

The machine's own apt setup (/etc/apt) is never read or changed: sources list, state, cache,
configuration fragments and the main apt.conf all live under one directory of ours, passed
both through `APT_CONFIG` (so /etc/apt/apt.conf.d is never parsed) and as `-o` options.
Every source is `signed-by` Debian's archive keyring, so `apt-get update` verifies the
Release signatures and `apt-get download` checks each .deb against the signed index.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from harness.image.errors import ImageError

MIRROR = "http://deb.debian.org/debian"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


class PrivateApt:
    """apt-get / apt-cache confined to `root`, with `suites` of Debian's main archive."""

    def __init__(
        self,
        root: Path,
        suites: Sequence[str],
        mirror: str = MIRROR,
        keyring: Path = KEYRING,
    ) -> None:
        self.root = Path(root)
        self.suites = tuple(dict.fromkeys(suites))
        self.mirror = mirror
        self.keyring = Path(keyring)

    # -- configuration --------------------------------------------------------------------

    @property
    def sources_list(self) -> Path:
        return self.root / "etc" / "sources.list"

    @property
    def status_file(self) -> Path:
        """dpkg's status as apt sees it: empty (nothing installed) unless a caller puts an
        image's own status there to resolve dependencies against that image."""
        return self.root / "state" / "status"

    @property
    def apt_conf(self) -> Path:
        return self.root / "etc" / "apt.conf"

    def sources_text(self) -> str:
        return "".join(
            f"deb [signed-by={self.keyring}] {self.mirror} {suite} main\n" for suite in self.suites
        )

    def settings(self) -> dict[str, str]:
        """Every apt directory setting, each pointing inside `root` (or at nothing)."""
        return {
            "Dir::Etc": str(self.root / "etc"),
            "Dir::Etc::Main": str(self.apt_conf),
            "Dir::Etc::Parts": str(self.root / "etc" / "apt.conf.d"),
            "Dir::Etc::SourceList": str(self.sources_list),
            "Dir::Etc::SourceParts": "/dev/null",
            "Dir::Etc::Preferences": "/dev/null",
            "Dir::Etc::PreferencesParts": "/dev/null",
            "Dir::Etc::Trusted": "/dev/null",
            "Dir::Etc::TrustedParts": "/dev/null",
            "Dir::State": str(self.root / "state"),
            "Dir::State::status": str(self.root / "state" / "status"),
            "Dir::Cache": str(self.root / "cache"),
            "Acquire::Languages": "none",
            "APT::Get::List-Cleanup": "true",
        }

    def options(self) -> list[str]:
        args: list[str] = []
        for key, value in self.settings().items():
            args += ["-o", f"{key}={value}"]
        return args

    def write_config(self) -> None:
        if not self.keyring.is_file():
            raise ImageError(
                f"Debian's archive keyring {self.keyring} is missing: "
                "apt-get install debian-archive-keyring"
            )
        for sub in ("etc/apt.conf.d", "state/lists/partial", "cache/archives/partial"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.status_file.touch()
        self.sources_list.write_text(self.sources_text())
        self.apt_conf.write_text(
            "".join(f'{key} "{value}";\n' for key, value in self.settings().items())
        )

    # -- commands -------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["APT_CONFIG"] = str(self.apt_conf)
        env["LC_ALL"] = "C"
        env["DEBIAN_FRONTEND"] = "noninteractive"
        return env

    def run(self, tool: str, args: Sequence[str], cwd: Path | None = None, what: str = "") -> str:
        cmd = [tool, *self.options(), *args]
        try:
            done = subprocess.run(
                cmd, cwd=cwd, env=self._env(), capture_output=True, text=True, check=False
            )
        except FileNotFoundError:
            raise ImageError(f"{tool} not found: this needs a Debian machine with apt") from None
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()[-8:]
            raise ImageError(
                f"{what or tool + ' ' + ' '.join(args)} failed (exit {done.returncode}):\n  "
                + "\n  ".join(detail)
            )
        return done.stdout

    def update(self) -> None:
        """Fetch and verify the suites' indexes; any warning (bad signature, 404) is an error."""
        self.write_config()
        self.run(
            "apt-get",
            ["update", "-q", "--error-on=any"],
            what=f"apt-get update for {', '.join(self.suites)} from {self.mirror} "
            "(is the archive reachable, and does the keyring verify it?)",
        )

    def available_versions(self, package: str) -> list[str]:
        out = self.run("apt-cache", ["madison", package], what=f"apt-cache madison {package}")
        versions = []
        for line in out.splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) >= 2 and parts[0] == package:
                versions.append(parts[1])
        return versions

    def download(self, package: str, version: str, dest: Path) -> Path:
        """Download exactly `package=version` into `dest`; fail clearly if it is gone."""
        if version not in self.available_versions(package):
            have = ", ".join(self.available_versions(package)) or "none"
            raise ImageError(
                f"{package} {version} is no longer in Debian's archive for "
                f"{', '.join(self.suites)} (available: {have}); update the pin in "
                "harness/image/servers.py"
            )
        dest.mkdir(parents=True, exist_ok=True)
        # apt drops privileges to _apt for downloads; let it write there (no warning).
        with contextlib.suppress(LookupError, PermissionError, OSError):
            shutil.chown(dest, user="_apt")
        self.run(
            "apt-get",
            ["download", "-q", f"{package}={version}"],
            cwd=dest,
            what=f"apt-get download {package}={version}",
        )
        quoted = re.escape(version.split(":")[-1])
        for path in dest.glob(f"{package}_*.deb"):
            if re.fullmatch(rf"{re.escape(package)}_{quoted}_[a-z0-9]+\.deb", path.name):
                return path
        raise ImageError(f"apt-get download {package}={version} left no .deb in {dest}")

    def download_with_dependencies(self, pins: Sequence[str], dest: Path) -> list[Path]:
        """Download `pins` (package=version) and every dependency that the status file
        does not already satisfy (no recommends) into `dest`; returns the .debs.

        `apt-get install --download-only` resolves and fetches only: nothing is unpacked
        or configured, and each .deb is checked against the signed index like a download."""
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "partial").mkdir(exist_ok=True)
        # apt drops privileges to _apt for downloads, as in `download`.
        for path in (dest, dest / "partial"):
            with contextlib.suppress(LookupError, PermissionError, OSError):
                shutil.chown(path, user="_apt")
        self.run(
            "apt-get",
            [
                "install", "-q", "-y", "--download-only", "--no-install-recommends",
                "-o", f"Dir::Cache::archives={dest}",
                *pins,
            ],
            what=f"apt-get install --download-only {' '.join(pins)} (resolving dependencies)",
        )  # fmt: skip
        shutil.rmtree(dest / "partial", ignore_errors=True)
        (dest / "lock").unlink(missing_ok=True)
        return sorted(dest.glob("*.deb"))
