"""The developer's commands: `make test` on a fresh machine, the translation check."""

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _make_dry_run(target: str) -> list[str]:
    result = subprocess.run(
        ["make", "--dry-run", "--no-print-directory", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.splitlines()


def test_make_test_installs_the_system_packages_before_linting():
    steps = _make_dry_run("test")

    installs = steps.index("scripts/system-packages.sh")
    assert installs < steps.index("scripts/check-translations.sh")
    assert installs < steps.index(".venv/bin/ruff check .")


def test_make_lint_alone_installs_no_system_package():
    steps = _make_dry_run("lint")

    assert "scripts/check-translations.sh" in steps
    assert "scripts/system-packages.sh" not in steps


def test_the_translation_check_says_when_gettext_is_missing(tmp_path: Path):
    # A PATH with what the script needs but msgfmt.
    for tool in ("cmp", "env"):
        (tmp_path / tool).symlink_to(shutil.which(tool))
    bash = shutil.which("bash")
    assert bash

    result = subprocess.run(
        [bash, "scripts/check-translations.sh"],
        cwd=ROOT,
        env={**os.environ, "PATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert "msgfmt (GNU gettext) is not installed" in result.stderr
    assert "apt-get install -y gettext" in result.stderr
    assert "stale" not in result.stderr
