"""The official Azure SDK for JavaScript (@azure/keyvault-secrets, -keys, -certificates and
@azure/identity, pinned in tests/compat/js/package.json and installed by
scripts/setup-test-env.sh) against Coffer, unchanged: tests/compat/js/scenario.mjs runs each
area in Node and checks every result (signatures with node:crypto)."""
import datetime
import os
import shutil
import subprocess
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from conftest import ROOT

JS = ROOT / "tests" / "compat" / "js"

pytestmark = pytest.mark.skipif(
    not (JS / "node_modules" / "@azure" / "keyvault-secrets").exists() and os.environ.get("COFFER_REQUIRE_JS") != "1",
    reason="the JavaScript SDK is not installed (scripts/setup-test-env.sh installs it into tests/compat/js)",
)


def pem_bundle():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imported.example")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(9)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM)).decode()


def sdk_env(coffer, vault, **extra):
    """What every SDK program reads: the dev administrator's credentials, the authority, the
    vault, a PEM key and certificate to import; nothing of the caller's own Azure settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "COFFER_"))}
    env.update(TENANT_ID=coffer.creds["tenant_id"], CLIENT_ID=coffer.creds["client_id"],
               CLIENT_SECRET=coffer.creds["client_secret"], AUTHORITY=coffer.server,
               VAULT_URL=coffer.vault_url(vault), PEM_BUNDLE=pem_bundle(), **extra)
    return env


def run_area(coffer, vault, area):
    env = sdk_env(coffer, vault, NODE_EXTRA_CA_CERTS=coffer.creds["ca_file"])
    node = shutil.which("node")
    assert node, "node is not installed"
    r = subprocess.run([node, "--import", "./localhost.mjs", "scenario.mjs", area], cwd=JS, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{area}: {r.stdout}\n{r.stderr}"
    assert f"ok {area}" in r.stdout, r.stdout


@pytest.mark.parametrize("area", [
    pytest.param("secrets", marks=[pytest.mark.compat("JavaScript SDK", "secrets"), pytest.mark.compat("JavaScript SDK", "identity")]),
    pytest.param("keys", marks=pytest.mark.compat("JavaScript SDK", "keys")),
    pytest.param("certificates", marks=pytest.mark.compat("JavaScript SDK", "certificates")),
])
def test_javascript_sdk(coffer, vault, area):
    run_area(coffer, vault, area)


@pytest.mark.compat("JavaScript SDK", "identity")
def test_javascript_managed_identity_and_default_credential(coffer, vault):
    """`ManagedIdentityCredential` (App Service's protocol) and `DefaultAzureCredential` (from the
    environment, with `AZURE_AUTHORITY_HOST`) of @azure/identity sign in to Coffer unchanged."""
    from azure.keyvault.secrets import SecretClient

    SecretClient(coffer.vault_url(vault), coffer.credential(), verify_challenge_resource=False,
                 connection_verify=coffer.creds["ca_file"]).set_secret("for-identities", "read by every credential")
    mi = coffer.cli_json("principal", "create", "--type", "managed-identity", "--name", "js-mi-" + uuid.uuid4().hex[:8])
    coffer.cli_json("vault", "set-policy", "--name", vault, "--object-id", mi["object_id"], "--secret-permissions", "get")
    env = sdk_env(coffer, vault, NODE_EXTRA_CA_CERTS=coffer.creds["ca_file"],
                  IDENTITY_ENDPOINT=mi["identity_endpoint"], IDENTITY_HEADER=mi["identity_header"],
                  AZURE_TENANT_ID=coffer.creds["tenant_id"], AZURE_CLIENT_ID=coffer.creds["client_id"],
                  AZURE_CLIENT_SECRET=coffer.creds["client_secret"], AZURE_AUTHORITY_HOST=coffer.server)
    node = shutil.which("node")
    r = subprocess.run([node, "--import", "./localhost.mjs", "scenario.mjs", "identity-credentials"], cwd=JS, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    assert "ok ManagedIdentityCredential" in r.stdout and "ok DefaultAzureCredential" in r.stdout, r.stdout
    # The managed identity's read is in the audit log under its own object id.
    audit = coffer.cli("audit", "query", "--vault", vault, "--caller", mi["object_id"], "--operation", "SecretGet")
    assert audit.returncode == 0 and '"SecretGet"' in audit.stdout, audit.stdout
