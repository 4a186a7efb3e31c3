"""A user's own runs under unlucky timing: kills, signals, read-only files, racing commands."""

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from zoo_core import artifacts


def _run_as_nobody(code: str, folder: Path) -> subprocess.CompletedProcess:
    """Run ``code`` in a Python process that has dropped root for the user ``nobody``, who owns
    ``folder``: file permissions are enforced there, as for any user but root. The modules it
    uses are imported first, while the interpreter's files (perhaps under /root) are readable."""
    nobody = pwd.getpwnam("nobody")
    os.chown(folder, nobody.pw_uid, nobody.pw_gid)
    prelude = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from zoo_core import artifacts
        os.setgid({nobody.pw_gid})
        os.setgroups([])
        os.setuid({nobody.pw_uid})
        """
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": str(folder)},
    )


@pytest.mark.skipif(
    not hasattr(os, "setuid") or os.geteuid() != 0,
    reason="needs root to become another user (as a non-root user, the plain write checks it)",
)
def test_atomic_write_replaces_a_read_only_file_as_a_non_root_user():
    # tmp_path is private to root: the folder must be one that nobody can reach and own.
    folder = Path(tempfile.mkdtemp(prefix="zoo-readonly-"))
    try:
        os.chmod(folder, 0o755)
        target = folder / "config.json"
        proc = _run_as_nobody(
            f"""
            target = Path({str(target)!r})
            target.write_text("old")
            target.chmod(0o444)
            artifacts.atomic_write(target, lambda p: p.write_text("new"))
            assert target.read_text() == "new"
            assert target.stat().st_mode & 0o777 == 0o444  # it keeps the permissions it had
            assert target.stat().st_uid == os.getuid()  # and was written by nobody
            """,
            folder,
        )
        assert proc.returncode == 0, proc.stderr
        assert sorted(p.name for p in folder.iterdir()) == ["config.json"]  # no temporary left
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_atomic_write_keeps_a_read_only_mode():
    # The same write as root, where the mode is not enforced: the mode still carries over.
    folder = Path(tempfile.mkdtemp(prefix="zoo-readonly-"))
    try:
        target = folder / "f"
        target.write_text("old")
        target.chmod(0o444)
        artifacts.atomic_write(target, lambda p: p.write_text("new"))
        assert target.read_text() == "new" and target.stat().st_mode & 0o777 == 0o444
    finally:
        shutil.rmtree(folder, ignore_errors=True)
