"""deploy/: the systemd unit passes `systemd-analyze verify`; the container config loads."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config import load_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify insists the commands exist: point them at this environment's `monitor`.
    unit = (DEPLOY / "news-monitor.service").read_text()
    installed = str(Path(sys.executable).parent / "monitor")
    (tmp_path / "news-monitor.service").write_text(
        unit.replace("/opt/news-monitor/bin/monitor", installed)
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "news-monitor.service")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (0, "") == (result.returncode, result.stderr + result.stdout)


def test_the_container_config_loads(tmp_path: Path) -> None:
    shutil.copy(DEPLOY / "monitor.yaml", tmp_path)
    shutil.copy(DEPLOY.parent / "config" / "watchlists.yaml", tmp_path)
    env = {"DATABASE_URL": "postgresql+psycopg://monitor:pw@postgres:5432/monitor"}
    config = load_config(tmp_path / "monitor.yaml", env)
    assert "postgresql+psycopg://monitor:pw@postgres:5432/monitor" == config.monitor.database
    assert config.monitor.http is not None
    assert ("0.0.0.0", 9464) == (config.monitor.http.host, config.monitor.http.port)
