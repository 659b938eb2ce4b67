"""The README's demo command keeps working: hack/demo.py runs end to end and prints served features."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(900)
def test_demo_serves_online_features(control_plane):  # control_plane: binaries provisioned, else skip
    out = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "demo.py")],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=850,
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-6000:]
    assert "demo OK" in out.stdout
    assert "Ready" in out.stdout
