"""The machine: Debian packages the benchmark needs, CPU layout for pinning, a description for the report."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fastrr import paths

# Debian package → a file or command that shows it is installed (checked with dpkg-query first).
DEBIAN_PACKAGES: dict[str, str] = {
    "nginx": "nginx",
    "php8.2-fpm": "php-fpm8.2",
    "php8.2-cli": "php8.2",
    "php8.2-cgi": "php-cgi8.2",
    "php8.2-opcache": "",
    "wrk": "wrk",
    "php-slim": "/usr/share/php/Slim/App.php",
    "php-nyholm-psr7": "/usr/share/php/Nyholm/Psr7/Request.php",
    "php-psr-http-message": "",
    "php-psr-http-factory": "",
}


class SetupError(RuntimeError):
    """The benchmark cannot run here; the message says what to do."""


def _dpkg_installed(package: str) -> bool:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True,
                             timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "ok installed" in out.stdout


def missing_packages(packages: dict[str, str] | None = None,
                     installed: Callable[[str], bool] = _dpkg_installed) -> list[str]:
    """Packages that dpkg does not know as installed (without dpkg: whose marker file/command is absent)."""
    packages = DEBIAN_PACKAGES if packages is None else packages
    have_dpkg = shutil.which("dpkg-query") is not None
    missing = []
    for package, marker in packages.items():
        if have_dpkg:
            ok = installed(package)
        elif marker.startswith("/"):
            ok = Path(marker).exists()
        else:
            ok = not marker or shutil.which(marker) is not None
        if not ok:
            missing.append(package)
    return missing


def apt_command(packages: Sequence[str], root: bool) -> list[list[str]]:
    """The commands that install `packages`: run as they are when root, printed with sudo otherwise."""
    sudo = [] if root else ["sudo"]
    return [sudo + ["apt-get", "update", "-qq"],
            sudo + ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-qq", *packages]]


def ensure_packages(say: Callable[[str], None], packages: dict[str, str] | None = None,
                    installed: Callable[[str], bool] = _dpkg_installed,
                    run: Callable[[list[str]], int] | None = None, root: bool | None = None) -> list[str]:
    """Installs the missing Debian packages when root; otherwise raises SetupError with the exact command."""
    missing = missing_packages(packages, installed)
    if not missing:
        return []
    root = os.geteuid() == 0 if root is None else root
    commands = apt_command(missing, root)
    if not root or (run is None and shutil.which("apt-get") is None):
        shown = " && ".join(" ".join(c) for c in commands)
        raise SetupError(f"missing Debian packages: {' '.join(missing)}\nInstall them with:\n  {shown}")
    say(f"Installing Debian packages the benchmark needs: {' '.join(missing)} (apt-get, as root)")
    runner = run or (lambda argv: subprocess.run(argv, check=False).returncode)
    for argv in commands:
        if runner(argv) != 0:
            raise SetupError(f"command failed: {' '.join(argv)}")
    still = missing_packages(packages, installed)
    if still:
        raise SetupError(f"still missing after apt-get: {' '.join(still)}")
    return missing


@dataclass(frozen=True)
class Layout:
    """Where servers and the load generator run. cpus=None: anywhere (unpinned)."""

    mode: str                      # "pinned" | "unpinned"
    server_cpus: str | None = None
    load_cpus: str | None = None

    def taskset(self, cpus: str | None) -> list[str]:
        return ["taskset", "-c", cpus] if cpus is not None else []

    @property
    def server_prefix(self) -> list[str]:
        return self.taskset(self.server_cpus)

    @property
    def load_prefix(self) -> list[str]:
        return self.taskset(self.load_cpus)

    def describe(self) -> str:
        if self.mode == "pinned":
            return f"server on CPU {self.server_cpus}, wrk on CPU {self.load_cpus}"
        return "unpinned (servers and wrk share all CPUs)"


def available_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def layout_for(mode: str, cpus: Sequence[int] | None = None, have_taskset: bool | None = None) -> Layout:
    """The pinned layout needs ≥ 2 CPUs and taskset; otherwise it falls back to unpinned."""
    cpus = list(available_cpus() if cpus is None else cpus)
    have_taskset = shutil.which("taskset") is not None if have_taskset is None else have_taskset
    if mode == "pinned" and len(cpus) >= 2 and have_taskset:
        return Layout("pinned", str(cpus[0]), str(cpus[1]))
    return Layout("unpinned")


def _first_line(argv: Sequence[str], pattern: str = r"(.+)") -> str:
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (out.stdout or "") + (out.stderr or "")
    m = re.search(pattern, text)
    return m.group(1).strip() if m else "?"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def os_release() -> str:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return platform.system()
    m = re.search(r'^PRETTY_NAME="?([^"\n]+)', text, re.M)
    return m.group(1) if m else platform.system()


def git_revision(root: Path) -> str:
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return f"{rev}{'+dirty' if dirty else ''}" if rev else "?"


# What a run measures, copied at its start (see snapshot_code) and hashed (code_fingerprint).
SNAPSHOT_DIRS = ("fastrr", "php", "bench/apps", "bench/hot")
FINGERPRINT_GLOBS = ("fastrr/**/*.py", "fastrr/*.so", "php/src/**/*.php", "php/demo/*.php", "bench/apps/**/*.php",
                     "bench/hot/*.php", "php/bin/*")


def snapshot_code(root: Path, dest: Path) -> Path:
    """Copies the server, the PHP library and the apps to `dest`; servers run from the copy, so a
    run measures the code as it was when it started even while others keep editing the tree."""
    for rel in SNAPSHOT_DIRS:
        # the package itself (not root/fastrr: from a wheel, root is the package's _tree copy)
        src = paths.PACKAGE if rel == "fastrr" else root / rel
        if not src.is_dir():  # an installed fastrr whose wheel has no bench/hot: the run goes without it
            continue
        shutil.copytree(src, dest / rel, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests", "build", "_tree"))
    return dest


def code_fingerprint(root: Path) -> str:
    """A short hash of the code being measured (server, C extension, PHP library, apps), the
    harness excluded: two runs with the same fingerprint measured the same code."""
    import hashlib

    digest = hashlib.sha1()
    files = sorted({p for pattern in FINGERPRINT_GLOBS for p in root.glob(pattern)
                    if p.is_file() and "benchmark" not in p.relative_to(root).parts})
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        try:
            digest.update(path.read_bytes())
        except OSError:
            continue
    return digest.hexdigest()[:12]


def describe_machine(root: Path, php: str, fpm: str) -> dict[str, object]:
    mem = 0
    try:
        with open("/proc/meminfo") as fh:
            mem = int(fh.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cpus": len(available_cpus()),
        "memory_gib": round(mem / 2**30, 1),
        "os": os_release(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "php": _first_line([php, "-v"], r"^(PHP \S+)"),
        "php_fpm": _first_line([fpm, "-v"], r"^(PHP \S+ \(fpm-fcgi\))"),
        "nginx": _first_line(["nginx", "-v"], r"nginx version: (?:nginx/)?(\S+)"),
        "wrk": _first_line(["wrk", "-v"], r"^wrk (?:\w+/)?([\d.]+)"),
        "fastrr": git_revision(root),
        "loadavg_start": list(os.getloadavg()),
    }


def filesystem(path: Path, mounts: str = "/proc/mounts") -> str:
    """The file system type `path` is on (the longest mount point in `mounts` that holds it)."""
    best, kind = "", "?"
    try:
        with open(mounts) as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 3 and (str(path) + "/").startswith(parts[1].rstrip("/") + "/") \
                        and len(parts[1]) >= len(best):
                    best, kind = parts[1], parts[2]
    except OSError:
        pass
    return kind
