"""Environment facts shared by the benchmark scripts' report headers."""

import hashlib
import os
import platform
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def code_fingerprint(repo_root=REPO_ROOT):
    """Git commit, whether the package has uncommitted changes, and a hash of its sources."""
    pkg = Path(repo_root) / "skdeepcluster"
    digest = hashlib.sha256()
    for path in sorted(pkg.rglob("*.py")):
        digest.update(str(path.relative_to(pkg)).encode())
        digest.update(path.read_bytes())
    parts = []
    try:
        def git(*cmd):
            return subprocess.run(["git", *cmd], cwd=repo_root, capture_output=True,
                                  text=True, timeout=10).stdout.strip()

        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "skdeepcluster")
        if commit:
            parts.append(f"git {commit}" + (" + uncommitted changes in skdeepcluster/"
                                            if dirty else " (clean)"))
    except (OSError, subprocess.SubprocessError):
        pass
    parts.append(f"sha256(skdeepcluster/**/*.py) {digest.hexdigest()[:16]}")
    return ", ".join(parts)


def load_average():
    """The 1/5/15-minute load averages as text (``n/a`` where the platform has none)."""
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover - not available on this platform
        return "n/a"


def cpu_model():
    """The CPU's model name (``/proc/cpuinfo``), or what :mod:`platform` reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
