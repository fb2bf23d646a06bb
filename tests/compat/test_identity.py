"""The identity provider: principals and credentials through the CLI, profiles, and every
azure-identity credential the issue names, reading a secret through SecretClient."""
import asyncio
import base64
import json
import os
import subprocess

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.keyvault.secrets import SecretClient

from conftest import BIN, self_signed

pytestmark = pytest.mark.compat("Python SDK", "identity")


def claims(token):
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.fixture
def shared_vault(coffer, credential):
    """A vault holding one secret, plus a helper that grants a principal read access."""
    name = coffer.new_vault()
    SecretClient(coffer.vault_url(name), credential).set_secret("shared", "for-everyone")

    def grant(object_id, *perms):
        coffer.cli_json("vault", "set-policy", "--name", name, "--object-id", object_id,
                        "--secret-permissions", *(perms or ("get", "list")))

    return name, grant


def token_request(coffer, **form):
    return requests.post(f"{coffer.server}/{coffer.creds['tenant_id']}/oauth2/v2.0/token", data=form)


def test_principal_commands_print_what_scripts_need(coffer):
    user = coffer.cli("principal", "create", "--type", "user", "--name", "dr-house", "--password-stdin",
                      input="vicodin-1234\n")
    assert user.returncode == 0, user.stderr
    u = json.loads(user.stdout)
    assert len(u["object_id"]) == 36 and u["type"] == "user" and "client_id" not in u
    app = coffer.cli_json("principal", "create", "--type", "app", "--name", "ml-studio")
    assert app["object_id"] != app["client_id"] and len(app["client_id"]) == 36
    mi = coffer.cli_json("principal", "create", "--type", "managed-identity", "--name", "dashboard")
    assert mi["identity_endpoint"].startswith(coffer.server + "/") and len(mi["identity_header"]) >= 32
    cred = coffer.cli_json("principal", "credential", "add", "--id", app["object_id"], "--expires", "2099-01-01")
    assert len(cred["client_secret"]) >= 32 and cred["expires"] == 4070908800
    listed = coffer.cli_json("principal", "credential", "list", "--id", app["object_id"])
    assert [c["id"] for c in listed] == [cred["id"]] and "client_secret" not in listed[0]
    assert coffer.cli_json("principal", "show", "--id", app["client_id"])["object_id"] == app["object_id"]
    assert {p["name"] for p in coffer.cli_json("principal", "list")} >= {"dr-house", "ml-studio", "dashboard"}
    assert coffer.cli_json("principal", "disable", "--id", u["object_id"])["enabled"] is False
    assert coffer.cli_json("principal", "enable", "--id", u["object_id"])["enabled"] is True
    # A second user with the same name is refused; a weak password too.
    r = coffer.cli("principal", "create", "--type", "user", "--name", "DR-HOUSE", "--password-stdin", input="another-pass\n")
    assert r.returncode == 2 and "already exists" in r.stderr
    r = coffer.cli("principal", "create", "--type", "user", "--name", "weak", "--password-stdin", input="short\n")
    assert r.returncode == 2 and "8 characters" in r.stderr
    g = coffer.cli_json("group", "create", "--name", "doctors")
    coffer.cli_json("group", "member", "add", "--group", g["object_id"], "--member", u["object_id"])
    assert [m["name"] for m in coffer.cli_json("group", "member", "list", "--group", g["object_id"])] == ["dr-house"]
    assert g["object_id"] in coffer.cli_json("principal", "show", "--id", u["object_id"])["groups"]
    coffer.cli_json("group", "member", "remove", "--group", g["object_id"], "--member", u["object_id"])
    assert coffer.cli_json("group", "member", "list", "--group", g["object_id"]) == []
    assert coffer.cli("principal", "delete", "--id", mi["object_id"]).returncode == 0
    r = coffer.cli("principal", "show", "--id", mi["object_id"])
    assert r.returncode == 2 and "PrincipalNotFound" in r.stderr


def test_client_secret_credential_and_token_claims(coffer, shared_vault):
    from azure.identity import ClientSecretCredential

    vault, grant = shared_vault
    app = coffer.cli_json("principal", "create", "--type", "app", "--name", "billing")
    secret = coffer.cli_json("principal", "credential", "add", "--id", app["object_id"])["client_secret"]
    cred = ClientSecretCredential(coffer.creds["tenant_id"], app["client_id"], secret, authority=coffer.server,
                                  disable_instance_discovery=True)
    client = SecretClient(coffer.vault_url(vault), cred)
    with pytest.raises(HttpResponseError) as e:
        client.get_secret("shared")
    assert e.value.status_code == 403
    grant(app["object_id"])
    assert client.get_secret("shared").value == "for-everyone"
    c = claims(cred.get_token(f"https://vault.localhost:{coffer.port}/.default").token)
    assert c["oid"] == app["object_id"] and c["appid"] == app["client_id"] and c["tid"] == coffer.creds["tenant_id"]
    assert c["aud"] == f"https://vault.localhost:{coffer.port}"
    assert c["iss"] == f"https://localhost:{coffer.port}/{coffer.creds['tenant_id']}/v2.0"
    assert c["nbf"] <= c["iat"] < c["exp"] and "upn" not in c


def test_certificate_credential(coffer, shared_vault, tmp_path):
    from azure.identity import CertificateCredential
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    vault, grant = shared_vault
    key, cert = self_signed("lab-robot")
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "both.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()) + cert_pem)

    app = coffer.cli_json("principal", "create", "--type", "app", "--name", "lab-robot")
    added = coffer.cli_json("principal", "credential", "add", "--id", app["object_id"], "--certificate", str(tmp_path / "cert.pem"))
    assert added["kind"] == "certificate" and added["thumbprint"]
    grant(app["object_id"])
    cred = CertificateCredential(coffer.creds["tenant_id"], app["client_id"], str(tmp_path / "both.pem"),
                                 authority=coffer.server, disable_instance_discovery=True)
    assert SecretClient(coffer.vault_url(vault), cred).get_secret("shared").value == "for-everyone"

    # Another key that claims the same certificate is refused.
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "forged.pem").write_bytes(other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()) + cert_pem)
    forged = CertificateCredential(coffer.creds["tenant_id"], app["client_id"], str(tmp_path / "forged.pem"),
                                   authority=coffer.server, disable_instance_discovery=True)
    with pytest.raises(ClientAuthenticationError):
        forged.get_token(f"https://vault.localhost:{coffer.port}/.default")


@pytest.fixture
def managed_identity(coffer, shared_vault, monkeypatch):
    vault, grant = shared_vault
    mi = coffer.cli_json("principal", "create", "--type", "managed-identity", "--name", "nightly-job")
    grant(mi["object_id"])
    for var in ["AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_USERNAME", "MSI_ENDPOINT"]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", mi["identity_endpoint"])
    monkeypatch.setenv("IDENTITY_HEADER", mi["identity_header"])
    return vault, mi


def test_managed_identity_and_default_credential(coffer, managed_identity):
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    vault, mi = managed_identity
    for cred in [ManagedIdentityCredential(), DefaultAzureCredential()]:
        assert SecretClient(coffer.vault_url(vault), cred).get_secret("shared").value == "for-everyone"
    # Rotating the identity header: the old one stops working, the new one works.
    new = coffer.cli_json("principal", "credential", "add", "--id", mi["object_id"])
    url = f"{mi['identity_endpoint']}?api-version=2019-08-01&resource=https://vault.localhost:{coffer.port}"
    assert requests.get(url, headers={"X-IDENTITY-HEADER": mi["identity_header"]}).status_code == 401
    r = requests.get(url, headers={"X-IDENTITY-HEADER": new["identity_header"], "Metadata": "true"})
    assert r.status_code == 200 and int(r.json()["expires_on"]) > 0 and r.json()["resource"].startswith("https://vault.")
    assert requests.get(url.replace("2019-08-01", "2017-09-01"), headers={"X-IDENTITY-HEADER": new["identity_header"]}).status_code == 400


def test_async_credentials(coffer, managed_identity):
    from azure.identity.aio import ClientSecretCredential, ManagedIdentityCredential
    from azure.keyvault.secrets.aio import SecretClient as AsyncSecretClient

    vault, _ = managed_identity

    async def read(cred):
        async with cred, AsyncSecretClient(coffer.vault_url(vault), cred) as c:
            return (await c.get_secret("shared")).value

    admin = ClientSecretCredential(coffer.creds["tenant_id"], coffer.creds["client_id"], coffer.creds["client_secret"],
                                   authority=coffer.server, disable_instance_discovery=True)
    assert asyncio.run(read(admin)) == "for-everyone"
    assert asyncio.run(read(ManagedIdentityCredential())) == "for-everyone"


def test_revocation_is_immediate(coffer, shared_vault):
    vault, grant = shared_vault
    app = coffer.cli_json("principal", "create", "--type", "app", "--name", "revocable")
    cred = coffer.cli_json("principal", "credential", "add", "--id", app["object_id"])
    grant(app["object_id"])
    form = dict(grant_type="client_credentials", client_id=app["client_id"], client_secret=cred["client_secret"],
                scope=f"https://vault.localhost:{coffer.port}/.default")
    token = token_request(coffer, **form).json()["access_token"]
    url = f"{coffer.vault_url(vault)}/secrets/shared?api-version=7.6"

    def read(t):
        return requests.get(url, headers={"Authorization": f"Bearer {t}"})

    assert read(token).status_code == 200
    coffer.cli_json("principal", "disable", "--id", app["object_id"])
    r = read(token)
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers
    assert token_request(coffer, **form).status_code == 401
    coffer.cli_json("principal", "enable", "--id", app["object_id"])
    assert read(token).status_code == 200
    # Removing the credential revokes the tokens obtained with it.
    coffer.cli("principal", "credential", "remove", "--id", app["object_id"], "--credential-id", cred["id"])
    assert read(token).status_code == 401
    assert token_request(coffer, **form).status_code == 401
    # A deleted principal's tokens stop working.
    cred2 = coffer.cli_json("principal", "credential", "add", "--id", app["object_id"])
    token2 = token_request(coffer, **{**form, "client_secret": cred2["client_secret"]}).json()["access_token"]
    assert read(token2).status_code == 200
    assert coffer.cli("principal", "delete", "--id", app["object_id"]).returncode == 0
    r = read(token2)
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers


def test_group_membership_changes_take_effect_at_once(coffer, shared_vault):
    vault, grant = shared_vault
    coffer.cli("principal", "create", "--type", "user", "--name", "nurse-joy", "--password-stdin", input="pokemon-center\n")
    user = coffer.cli_json("principal", "show", "--id", next(
        p["object_id"] for p in coffer.cli_json("principal", "list") if p["name"] == "nurse-joy"))
    group = coffer.cli_json("group", "create", "--name", "nurses")
    grant(group["object_id"])
    body = token_request(coffer, grant_type="password", client_id="coffer-cli", username="nurse-joy",
                         password="pokemon-center", scope=f"https://vault.localhost:{coffer.port}/.default").json()
    c = claims(body["access_token"])
    assert c["upn"] == "nurse-joy" and c["oid"] == user["object_id"] and "refresh_token" in body
    url = f"{coffer.vault_url(vault)}/secrets/shared?api-version=7.6"
    h = {"Authorization": f"Bearer {body['access_token']}"}
    assert requests.get(url, headers=h).status_code == 403
    coffer.cli_json("group", "member", "add", "--group", group["object_id"], "--member", user["object_id"])
    assert requests.get(url, headers=h).status_code == 200
    coffer.cli_json("group", "member", "remove", "--group", group["object_id"], "--member", user["object_id"])
    assert requests.get(url, headers=h).status_code == 403


def test_failed_sign_ins_are_throttled_without_revealing_who_exists(coffer):
    coffer.cli("principal", "create", "--type", "user", "--name", "locked-out", "--password-stdin", input="right-password\n")
    scope = f"https://vault.localhost:{coffer.port}/.default"
    answers = {}
    for name in ["locked-out", "nobody-by-this-name"]:
        bodies = [token_request(coffer, grant_type="password", client_id="coffer-cli", username=name,
                                password="wrong-password", scope=scope) for _ in range(5)]
        assert {b.status_code for b in bodies} == {400}
        answers[name] = bodies[0].json()["error_description"]
        r = token_request(coffer, grant_type="password", client_id="coffer-cli", username=name,
                          password="right-password", scope=scope)
        assert r.status_code == 429 and r.json()["error"] == "temporarily_unavailable"
        assert int(r.headers["Retry-After"]) > 0 and "Too many failed sign-in attempts" in r.json()["error_description"]
    assert answers["locked-out"] == answers["nobody-by-this-name"]
    # Others are not affected.
    ok = token_request(coffer, grant_type="client_credentials", client_id=coffer.creds["client_id"],
                       client_secret=coffer.creds["client_secret"], scope=scope)
    assert ok.status_code == 200


def test_signing_key_rotation_keeps_old_tokens_valid(coffer, vault):
    old = coffer.token()
    old_kid = json.loads(base64.urlsafe_b64decode(old.split(".")[0] + "==="))["kid"]
    rotated = coffer.cli_json("signing-key", "rotate")
    assert rotated["kid"] != old_kid
    jwks = requests.get(f"{coffer.server}/{coffer.creds['tenant_id']}/discovery/v2.0/keys").json()
    assert {old_kid, rotated["kid"]} <= {k["kid"] for k in jwks["keys"]}
    url = f"{coffer.vault_url(vault)}/secrets?api-version=7.6"
    assert requests.get(url, headers={"Authorization": f"Bearer {old}"}).status_code == 200
    fresh = token_request(coffer, grant_type="client_credentials", client_id=coffer.creds["client_id"],
                          client_secret=coffer.creds["client_secret"], scope=f"https://vault.localhost:{coffer.port}/.default").json()["access_token"]
    assert json.loads(base64.urlsafe_b64decode(fresh.split(".")[0] + "==="))["kid"] == rotated["kid"]
    assert requests.get(url, headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_login_profiles_and_logout(coffer, shared_vault, tmp_path):
    vault, grant = shared_vault
    coffer.cli("principal", "create", "--type", "user", "--name", "receptionist", "--password-stdin", input="front-desk-1\n")
    oid = next(p["object_id"] for p in coffer.cli_json("principal", "list") if p["name"] == "receptionist")
    grant(oid)
    base = {k: v for k, v in os.environ.items() if not k.startswith("COFFER_")}
    env = {**base, "COFFER_CONFIG_DIR": str(tmp_path), "COFFER_SERVER": coffer.server,
           "COFFER_CA_FILE": coffer.creds["ca_file"], "COFFER_TENANT_ID": coffer.creds["tenant_id"]}

    def run(*args, input=None, extra=None):
        return subprocess.run([BIN, *args], env={**env, **(extra or {})}, capture_output=True, text=True, input=input)

    r = run("login", "--username", "receptionist", "--password-stdin", input="front-desk-1\n")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["object_id"] == oid
    profile = tmp_path / "profiles" / "default.json"
    assert oct(profile.stat().st_mode & 0o777) == "0o600"
    assert "front-desk-1" not in profile.read_text()
    # Later commands use the profile, even with no server variables at all.
    bare = {**base, "COFFER_CONFIG_DIR": str(tmp_path)}
    r = subprocess.run([BIN, "secret", "show", "--vault-name", vault, "--name", "shared"], env=bare, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["value"] == "for-everyone"
    # The user is not an administrator ...
    assert run("principal", "list").returncode == 2
    # ... but COFFER_* variables win over the profile.
    admin = {"COFFER_CLIENT_ID": coffer.creds["client_id"], "COFFER_CLIENT_SECRET": coffer.creds["client_secret"]}
    assert run("principal", "list", extra=admin).returncode == 0
    # A second profile for an application, chosen with --profile.
    app = coffer.cli_json("principal", "create", "--type", "app", "--name", "kiosk")
    secret = coffer.cli_json("principal", "credential", "add", "--id", app["object_id"])["client_secret"]
    grant(app["object_id"])
    assert run("login", "--client-id", app["client_id"], "--client-secret", secret, "--profile", "kiosk").returncode == 0
    # A secret that begins with '-' (1 in 64 generated ones do) is the secret, not a flag.
    r = run("login", "--client-id", app["client_id"], "--client-secret", "-not-the-secret", "--profile", "dash")
    assert r.returncode != 0 and "unexpected argument" not in r.stderr, r.stderr
    r = run("secret", "show", "--vault-name", vault, "--name", "shared", "--profile", "kiosk")
    assert r.returncode == 0 and json.loads(r.stdout)["value"] == "for-everyone"
    # A wrong password does not save anything.
    r = run("login", "--username", "receptionist", "--password-stdin", "--profile", "bad", input="nope-nope\n")
    assert r.returncode == 2 and not (tmp_path / "profiles" / "bad.json").exists()
    # Logout forgets the profile and revokes its refresh token.
    saved = profile.read_text()
    assert run("logout").returncode == 0 and not profile.exists()
    profile.write_text(saved)
    r = run("secret", "show", "--vault-name", vault, "--name", "shared")
    assert r.returncode == 2 and "sign-in failed" in r.stderr
