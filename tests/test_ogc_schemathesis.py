"""schemathesis against our OpenAPI document and the running server: generated requests for every
operation (examples, boundary values, fuzzing, stateful links), none answered with a 5xx.

Bounded (a few examples per operation, fixed seed) so that it stays near a minute; the schemas it
resolves come from the server itself (/ogc/schemas, kept in the repo), so it needs no internet."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

MAX_EXAMPLES = 5
SEED = 20250701


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(server, tmp_path, artifacts):
    cli = Path(sys.executable).with_name("schemathesis")
    report = artifacts / "schemathesis.log"
    result = subprocess.run(
        [str(cli), "run", f"{server}/ogc/openapi?f=json", "--checks", "not_a_server_error",
         "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "2",
         "--request-timeout", "30", "--generation-database", "none", "--no-color"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    report.write_text(result.stdout + result.stderr, encoding="utf-8")
    tail = "\n".join(result.stdout.splitlines()[-60:])
    assert result.returncode == 0, f"schemathesis found server errors (full log: {report}):\n{tail}"
    assert "Tested:" in result.stdout and "Server error" not in result.stdout, tail
