"""The official Azure SDK for Go (azsecrets, azkeys, azcertificates, azidentity; pinned in
tests/compat/go/go.mod, downloaded by scripts/setup-test-env.sh) against Coffer, unchanged:
tests/compat/go/main.go runs each area and checks every result (signatures with crypto/ecdsa
and crypto/rsa). The Go SDK sends the api-version it was built with; Coffer serves it."""
import shutil
import subprocess

import pytest

from conftest import ROOT
from test_js_sdk import sdk_env

GO = ROOT / "tests" / "compat" / "go"


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    go = shutil.which("go")
    if not go:
        pytest.skip("go is not installed")
    out = tmp_path_factory.mktemp("go") / "compat"
    r = subprocess.run([go, "build", "-o", str(out), "."], cwd=GO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.parametrize("area", [
    pytest.param("secrets", marks=[pytest.mark.compat("Go SDK", "secrets"), pytest.mark.compat("Go SDK", "identity")]),
    pytest.param("keys", marks=pytest.mark.compat("Go SDK", "keys")),
    pytest.param("certificates", marks=pytest.mark.compat("Go SDK", "certificates")),
])
def test_go_sdk(coffer, vault, program, area):
    env = sdk_env(coffer, vault, SSL_CERT_FILE=coffer.creds["ca_file"])
    r = subprocess.run([str(program), area], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and f"ok {area}" in r.stdout, f"{area}: {r.stdout}\n{r.stderr}"
