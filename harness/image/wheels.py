"""Python inputs of the node image: third-party wheels and the project's own wheel.

Third-party wheels are pinned to exactly the versions installed in the environment running
the build (the project's venv, where the tests pass), found by walking the project's
runtime requirements with their markers evaluated for the image's Python (CPython 3.11 on
glibc x86-64). They are downloaded once into `<cache>/wheels/<key>/` (binary wheels only,
for that target). The project wheel is built from a copy of exactly the files that
`source_files()` hashes, so the thin image layer's key and its content always agree.

Without a source checkout (the harness installed from a wheel into a team's own venv),
the installed distribution is the source: its metadata gives the runtime requirements,
its recorded files are hashed, and the project wheel is re-packed from them.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path

from harness.image.errors import ImageError, Progress, report

PROJECT = "leader-harness"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SOURCE_PACKAGES = ("harness", "workloads", "nemesis", "reports")
SOURCE_EXTRA_FILES = ("pyproject.toml",)
WHEEL_BUILD_FILES = ("README.md",)  # needed by pyproject's `readme`, not part of the key
SKIP_DIRS = {"__pycache__"}
# pyproject's build backend, pinned; fetched once with its dependencies for offline builds.
BUILD_TOOLS = ("setuptools==84.2.1", "wheel==0.48.0")
SKIP_SUFFIXES = (".pyc", ".pyo")

# The image's interpreter: bookworm's python3 (3.11.2), glibc 2.36, x86-64.
TARGET_PYTHON = "3.11"
TARGET_ENVIRONMENT = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.2",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "python_full_version": "3.11.2",
    "python_version": "3.11",
    "sys_platform": "linux",
}
# pip does not widen an explicit --platform to older glibc tags: list every tag that
# glibc 2.36 accepts (PEP 600 names, then the legacy aliases).
_PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(36, 4, -1)] + [
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64",
]  # fmt: skip
TARGET_PIP_ARGS: tuple[str, ...] = (
    "--only-binary=:all:",
    "--implementation", "cp",
    "--python-version", TARGET_PYTHON,
    "--abi", "cp311",
    *(arg for tag in _PLATFORMS for arg in ("--platform", tag)),
)  # fmt: skip


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_class() -> type:
    # `packaging` where installed, else the copy pip always vendors.
    for module in ("packaging.requirements", "pip._vendor.packaging.requirements"):
        with contextlib.suppress(ImportError):
            requirement: type = importlib.import_module(module).Requirement
            return requirement
    raise ImageError("neither packaging nor pip's vendored copy of it can be imported")


def has_checkout(root: Path = PROJECT_ROOT) -> bool:
    """A source checkout (pyproject.toml beside the packages), not an installed wheel."""
    return (root / "pyproject.toml").is_file() and (root / "harness").is_dir()


def declared_dependencies(root: Path = PROJECT_ROOT) -> list[str]:
    """The runtime requirements in pyproject.toml (the source of truth, not egg-info);
    without a checkout, the installed distribution's own (extras left out)."""
    if not has_checkout(root):
        requirement_cls = _requirement_class()
        out = []
        for text in _installed().requires or []:
            req = requirement_cls(text)
            if req.marker is not None and "extra" in str(req.marker):
                continue
            out.append(text)
        return out
    try:
        data = tomllib.loads((root / "pyproject.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ImageError(f"cannot read {root / 'pyproject.toml'}: {exc}") from None
    return list(data.get("project", {}).get("dependencies", []))


def third_party_pins(root: Path = PROJECT_ROOT) -> dict[str, str]:
    """{canonical name: installed version} for the project's runtime dependency closure.

    Starts from pyproject.toml's dependencies and follows each installed distribution's
    requirements, markers evaluated for the image's Python.
    """
    requirement_cls = _requirement_class()
    pins: dict[str, str] = {}
    todo = declared_dependencies(root)
    while todo:
        req = requirement_cls(todo.pop())
        if req.marker is not None and not req.marker.evaluate(dict(TARGET_ENVIRONMENT, extra="")):
            continue
        name = _canonical(req.name)
        if name in pins:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            raise ImageError(
                f"{req.name} (needed by {PROJECT}) is not installed in {sys.prefix}: "
                "reinstall the project (`pip install -e .`) so the image gets what it needs"
            ) from None
        if dist.version not in req.specifier:
            raise ImageError(f"installed {req.name} {dist.version} does not satisfy {req}")
        pins[name] = dist.version
        todo.extend(dist.requires or [])
    return dict(sorted(pins.items()))


def requirements_text(pins: dict[str, str]) -> str:
    return "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))


def wheels_key(pins: dict[str, str]) -> str:
    blob = json.dumps({"pins": pins, "target": TARGET_PIP_ARGS}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def ensure_wheelhouse(
    cache_dir: Path, pins: dict[str, str], progress: Progress = None, force: bool = False
) -> Path:
    """Download the pinned third-party wheels (for the image's Python) once; return the dir."""
    house = Path(cache_dir) / "wheels" / wheels_key(pins)
    marker = house / "requirements.txt"
    if not force and marker.is_file() and marker.read_text() == requirements_text(pins):
        report(progress, f"wheels: cached ({len(pins)} third-party wheels)")
        return house
    with _replaced_when_done(house) as staging:
        req = staging / "requirements.txt"
        req.write_text(requirements_text(pins))
        report(progress, f"downloading {len(pins)} third-party wheels from PyPI (cp311 x86-64)")
        _pip(
            ["download", "--quiet", "--no-deps", *TARGET_PIP_ARGS,
             "--dest", str(staging), "-r", str(req)],
            "pip download of the pinned wheels failed (is PyPI reachable?)",
        )  # fmt: skip
        got = {_canonical(p.name.split("-")[0]) for p in staging.glob("*.whl")}
        if missing := sorted(set(pins) - got):
            raise ImageError(f"no wheel downloaded for {', '.join(missing)}")
    return house


def requirement_wheels_key(requirements: Sequence[str]) -> str:
    blob = json.dumps({"req": sorted(requirements), "target": TARGET_PIP_ARGS})
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def ensure_requirement_wheels(
    cache_dir: Path, requirements: Sequence[str], progress: Progress = None
) -> Path:
    """A run's `workload.requirements` and their dependencies, downloaded once as binary
    wheels for the image's Python into `<cache>/requirement-wheels/<key>/` with a
    requirements.txt listing them (what the requirements layer installs, offline)."""
    house = Path(cache_dir) / "requirement-wheels" / requirement_wheels_key(requirements)
    marker = house / "requirements.txt"
    text = "".join(f"{r}\n" for r in sorted(requirements))
    if marker.is_file() and marker.read_text() == text:
        report(progress, f"requirements: wheels cached ({', '.join(requirements)})")
        return house
    with _replaced_when_done(house) as staging:
        report(progress, f"downloading wheels for {', '.join(requirements)} (cp311 x86-64)")
        _pip(
            ["download", "--quiet", *TARGET_PIP_ARGS, "--dest", str(staging), *requirements],
            f"workload.requirements: pip could not get wheels for the node image's Python "
            f"(cp311, x86-64) for {', '.join(requirements)}",
        )
        (staging / "requirements.txt").write_text(text)
    return house


@contextlib.contextmanager
def _replaced_when_done(house: Path) -> Iterator[Path]:
    """A staging directory beside `house` that replaces it when the block ends without
    error, so a half-finished download is never taken for a complete wheelhouse."""
    house.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{house.name}.", dir=house.parent))
    try:
        yield staging
        if house.exists():
            shutil.rmtree(house)
        staging.rename(house)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


# -- the project itself -------------------------------------------------------------------


def _installed() -> metadata.Distribution:
    try:
        return metadata.distribution(PROJECT)
    except metadata.PackageNotFoundError:
        raise ImageError(
            f"{PROJECT} is neither a source checkout at {PROJECT_ROOT} nor an installed "
            "distribution: install it with pip"
        ) from None


def installed_files() -> list[tuple[str, Path]]:
    """(path in the wheel, file on disk) of the installed distribution: the package's
    files and its metadata, without byte code and installer records."""
    dist = _installed()
    out: list[tuple[str, Path]] = []
    for entry in dist.files or []:
        rel = entry.as_posix()
        parts = rel.split("/")
        if any(part in SKIP_DIRS for part in parts) or rel.endswith(SKIP_SUFFIXES):
            continue
        top = parts[0]
        if top.endswith(".dist-info"):
            if parts[-1] in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json"):
                continue
        elif top != "harness":
            continue  # console scripts and anything outside the package
        path = Path(str(dist.locate_file(entry)))
        if path.is_file():
            out.append((rel, path))
    if not any(rel.startswith("harness/") for rel, _ in out):
        raise ImageError(f"the installed {PROJECT} lists no files of the harness package")
    return sorted(out)


def source_files(root: Path = PROJECT_ROOT) -> list[Path]:
    """The files that make the project wheel (relative paths, sorted)."""
    if not has_checkout(root):
        return [Path(rel) for rel, _ in installed_files()]
    files: list[Path] = []
    for package in SOURCE_PACKAGES:
        for path in (root / package).rglob("*"):
            rel = path.relative_to(root)
            if any(part in SKIP_DIRS for part in rel.parts) or not path.is_file():
                continue
            if path.name.endswith(SKIP_SUFFIXES):
                continue
            files.append(rel)
    files += [Path(name) for name in SOURCE_EXTRA_FILES if (root / name).is_file()]
    return sorted(files)


def source_hash(root: Path = PROJECT_ROOT) -> str:
    """sha256 over every source file's path and content (the thin layer's input)."""
    digest = hashlib.sha256()
    if not has_checkout(root):
        for name, path in installed_files():
            data = path.read_bytes()
            digest.update(f"{name}\0{len(data)}\0".encode())
            digest.update(data)
        return digest.hexdigest()
    for rel in source_files(root):
        data = (root / rel).read_bytes()
        digest.update(f"{rel.as_posix()}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def ensure_build_tools(cache_dir: Path, progress: Progress = None) -> Path:
    """pyproject's build backend (pinned setuptools, wheel), downloaded once, for offline builds."""
    house = Path(cache_dir) / "wheels" / "build-tools"
    marker = house / "requirements.txt"
    text = "".join(f"{pin}\n" for pin in BUILD_TOOLS)
    if marker.is_file() and marker.read_text() == text:
        return house
    with _replaced_when_done(house) as staging:
        (staging / "requirements.txt").write_text(text)
        report(progress, f"downloading build tools ({', '.join(BUILD_TOOLS)})")
        _pip(
            ["download", "--quiet", "--only-binary=:all:", "--dest", str(staging),
             "-r", str(staging / "requirements.txt")],
            "pip download of the build tools failed (is PyPI reachable?)",
        )  # fmt: skip
    return house


def _pip(args: list[str], failure: str, cwd: str | None = None) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=cwd)
    if done.returncode != 0:
        tail = "\n  ".join((done.stderr or done.stdout).strip().splitlines()[-10:])
        raise ImageError(f"{failure}:\n  {tail}")


def build_project_wheel(
    dest: Path, build_tools: Path, root: Path = PROJECT_ROOT, progress: Progress = None
) -> Path:
    """Build the project's wheel from a private copy of its source files into `dest`.

    Offline: the build backend comes from the `build_tools` wheelhouse (--no-index).
    """
    if not has_checkout(root):
        return repack_installed_wheel(dest, progress)
    report(progress, "building the project wheel (pip wheel, offline)")
    with tempfile.TemporaryDirectory(prefix="leader-harness-src.") as tmp:
        src = Path(tmp) / "src"
        for rel in [*source_files(root), *(Path(n) for n in WHEEL_BUILD_FILES)]:
            if not (root / rel).is_file():
                continue
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, src / rel)
        out = Path(tmp) / "out"
        _pip(
            ["wheel", "--quiet", "--no-deps", "--no-index", "--find-links", str(build_tools),
             "--wheel-dir", str(out), str(src)],
            "building the project wheel failed",
            cwd=tmp,
        )  # fmt: skip
        wheels = sorted(out.glob("*.whl"))
        if len(wheels) != 1:
            raise ImageError(f"expected one project wheel, got {[w.name for w in wheels]}")
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / wheels[0].name
        shutil.copy2(wheels[0], target)
        return target


def repack_installed_wheel(dest: Path, progress: Progress = None) -> Path:
    """The project wheel re-made from the installed distribution (no checkout): its
    package files and metadata, with a fresh RECORD (PEP 427)."""
    import base64
    import zipfile

    dist = _installed()
    report(progress, f"packing the installed {PROJECT} {dist.version} as a wheel (no checkout)")
    files = installed_files()
    info = next(rel.split("/")[0] for rel, _ in files if ".dist-info/" in rel)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{PROJECT.replace('-', '_')}-{dist.version}-py3-none-any.whl"
    records = []
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as wheel:
        for rel, path in files:
            data = path.read_bytes()
            wheel.writestr(rel, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            records.append(f"{rel},sha256={digest.decode()},{len(data)}")
        records.append(f"{info}/RECORD,,")
        wheel.writestr(f"{info}/RECORD", "\n".join(records) + "\n")
    return target
