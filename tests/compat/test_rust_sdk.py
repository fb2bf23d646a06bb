"""The official Azure SDK for Rust (azure_security_keyvault_secrets and _keys 1.1.0-beta.1,
_certificates 1.1.0-beta.2, with azure_identity 1.1.0-beta.1; they send
api-version=2026-03-01-preview) against Coffer,
unchanged: tests/compat/rust, a crate of its own beside the workspace (its own lock file),
built by scripts/setup-test-env.sh and again here (incremental)."""
import shutil
import subprocess

import pytest

from conftest import ROOT
from test_js_sdk import sdk_env

CRATE = ROOT / "tests" / "compat" / "rust"
# The stable crates (api-version 2025-07-01) cannot share a lock file with the betas; the crate
# builds into the betas' target directory, so what the two have in common is built once.
STABLE = ROOT / "tests" / "compat" / "rust-stable"


def build(crate):
    cargo = shutil.which("cargo")
    if not cargo:
        pytest.skip("cargo is not installed")
    r = subprocess.run([cargo, "build", "--locked", "--quiet", "--target-dir", str(CRATE / "target")], cwd=crate,
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr
    return CRATE / "target" / "debug" / crate.name.replace("rust", "coffer-compat-rust")


@pytest.fixture(scope="module")
def program():
    return build(CRATE)


@pytest.fixture(scope="module")
def stable_program():
    return build(STABLE)


@pytest.mark.parametrize("area", [
    pytest.param("secrets", marks=[pytest.mark.compat("Rust SDK", "secrets"), pytest.mark.compat("Rust SDK", "identity")]),
    pytest.param("keys", marks=pytest.mark.compat("Rust SDK", "keys")),
    pytest.param("certificates", marks=pytest.mark.compat("Rust SDK", "certificates")),
])
def test_rust_sdk(coffer, vault, program, area):
    env = sdk_env(coffer, vault, CA_FILE=coffer.creds["ca_file"])
    r = subprocess.run([str(program), area], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and f"ok {area}" in r.stdout, f"{r.stdout}\n{r.stderr}"


@pytest.mark.compat("Rust SDK", "secrets")
def test_rust_sdk_stable_crates(coffer, vault, stable_program):
    env = sdk_env(coffer, vault, CA_FILE=coffer.creds["ca_file"])
    r = subprocess.run([str(stable_program), "secrets"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "ok secrets" in r.stdout, f"{r.stdout}\n{r.stderr}"
