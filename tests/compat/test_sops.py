"""SOPS (`getsops/sops`, built unmodified by scripts/setup-test-env.sh) encrypts and decrypts a
file with a Coffer key (`--azure-kv`). SOPS builds azidentity's DefaultAzureCredential with no
options; of its chain, the managed identity (`IDENTITY_ENDPOINT`/`IDENTITY_HEADER`, App
Service's protocol) is the one that needs no custom authority — the client-secret credential
would ask login.microsoftonline.com to discover Coffer's authority first (see the README).

`https://V.vault.localhost` must resolve to the server, as DNS would in production; Go does not
resolve `*.localhost`, so an HTTP CONNECT proxy (`HTTPS_PROXY`, which Go's default transport
honours) stands in for that."""
import json
import os
import socket
import subprocess
import uuid

import pytest

from conftest import ROOT
from loopback import serving, splice

SOPS = ROOT / ".tools" / "bin" / "sops"

pytestmark = pytest.mark.skipif(
    not SOPS.exists() and os.environ.get("COFFER_REQUIRE_SOPS") != "1",
    reason="sops is not built (scripts/setup-test-env.sh builds it into .tools/bin)",
)


@pytest.fixture
def loopback_proxy(coffer):
    """An HTTP CONNECT proxy on a free loopback port: every tunnel to a `*.localhost` name goes to
    the test server (anything else is refused)."""
    def tunnel(client):
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 8192:
            chunk = client.recv(4096)
            if not chunk:
                client.close()
                return
            head += chunk
        host = head.split(b" ", 2)[1].decode().rsplit(":", 1)[0]
        if not (host == "localhost" or host.endswith(".localhost")):
            client.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\n")
            client.close()
            return
        client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        splice(client, coffer.port)

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    with serving(listener, tunnel) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.mark.compat("SOPS", "keys")
@pytest.mark.compat("SOPS", "identity")
def test_sops_encrypts_and_decrypts_with_a_coffer_key(coffer, tmp_path, loopback_proxy):
    vault = coffer.new_vault("--enable-rbac-authorization", "true")
    coffer.cli_json("role", "assignment", "create", "--role", "Key Vault Crypto Officer", "--assignee",
                    coffer.cli_json("principal", "show", "--id", coffer.creds["client_id"])["object_id"],
                    "--scope", f"/vaults/{vault}")
    key = coffer.cli_json("key", "create", "--vault-name", vault, "--name", "sops", "--kty", "RSA", "--size", "2048")
    kid = key["key"]["kid"]
    mi = coffer.cli_json("principal", "create", "--type", "managed-identity", "--name", "sops-" + uuid.uuid4().hex[:8])
    coffer.cli_json("role", "assignment", "create", "--role", "Key Vault Crypto User", "--assignee", mi["object_id"],
                    "--scope", f"/vaults/{vault}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "COFFER_", "IDENTITY_", "MSI_"))}
    env.update(IDENTITY_ENDPOINT=mi["identity_endpoint"], IDENTITY_HEADER=mi["identity_header"],
               SSL_CERT_FILE=coffer.creds["ca_file"], HTTPS_PROXY=loopback_proxy, NO_PROXY="",
               HOME=str(tmp_path))
    plain = tmp_path / "config.yaml"
    plain.write_text("database:\n  password: s3cr3t-for-sops\n")

    def sops(*args):
        return subprocess.run([str(SOPS), *args], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)

    enc = sops("--encrypt", "--azure-kv", kid, str(plain))
    assert enc.returncode == 0, enc.stderr
    assert "s3cr3t-for-sops" not in enc.stdout and "azure_kv" in enc.stdout and kid.split("/keys/")[0] in enc.stdout
    (tmp_path / "config.enc.yaml").write_text(enc.stdout)
    dec = sops("--decrypt", str(tmp_path / "config.enc.yaml"))
    assert dec.returncode == 0, dec.stderr
    assert "s3cr3t-for-sops" in dec.stdout
    # Coffer saw the wrap and the unwrap, by the managed identity.
    r = coffer.cli("audit", "query", "--vault", vault, "--caller", mi["object_id"], "--result", "success")
    ops = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert {"KeyEncrypt", "KeyDecrypt"} <= {r["operationName"] for r in ops}, ops
    # Without the role, SOPS cannot decrypt.
    grants = coffer.cli_json("role", "assignment", "list", "--scope", f"/vaults/{vault}")
    for g in grants:
        if g["principalId"] == mi["object_id"]:
            assert coffer.cli("role", "assignment", "delete", "--id", g["id"]).returncode == 0
    dec = sops("--decrypt", str(tmp_path / "config.enc.yaml"))
    assert dec.returncode != 0 and "s3cr3t-for-sops" not in dec.stdout
