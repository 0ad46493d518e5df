"""The soak in its short mode (60 s): `scripts/soak --short` must pass (flat RSS, no failed request).
The full 10-minute soak is `scripts/soak` (see docs/reliability.md)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from faultkit import HERE

pytestmark = pytest.mark.timeout(240)


def test_short_soak_keeps_memory_flat():
    done = subprocess.run([sys.executable, str(HERE / "soak.py"), "--short"], capture_output=True,
                          text=True, timeout=200)
    print(done.stdout, file=sys.stderr)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "soak: PASS" in done.stdout
