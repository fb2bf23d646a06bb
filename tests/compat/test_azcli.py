"""The Azure CLI, unmodified, against Coffer: a custom cloud registered from Coffer's metadata,
a service-principal login, `az keyvault` vault commands, `az role assignment|definition` and
`az keyvault secret` on the data plane (RBAC and access-policy vaults)."""
import json
import os
import subprocess
import uuid

import pytest

from conftest import ROOT

AZ = ROOT / ".venv-az" / "bin" / "az"

pytestmark = pytest.mark.skipif(
    not AZ.exists() and os.environ.get("COFFER_REQUIRE_AZ") != "1",
    reason="the Azure CLI is not installed (scripts/setup-test-env.sh installs it into .venv-az)",
)


@pytest.fixture(scope="module")
def az(coffer, tmp_path_factory):
    config = tmp_path_factory.mktemp("azure-config")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "COFFER_"))}
    env.update(
        AZURE_CONFIG_DIR=str(config),
        PYTHONPATH=str(ROOT / "tests" / "compat" / "azshim"),
        REQUESTS_CA_BUNDLE=coffer.creds["ca_file"],
        AZURE_CORE_COLLECT_TELEMETRY="false",
        AZURE_CORE_NO_COLOR="true",
    )

    def run(*args, check=True):
        r = subprocess.run([str(AZ), *args, "-o", "json"], env=env, capture_output=True, text=True, timeout=180)
        if check:
            assert r.returncode == 0, f"az {' '.join(args)}: {r.stderr}"
        return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else r

    run("config", "set", "core.instance_discovery=false")
    run("cloud", "register", "-n", "Coffer", "--endpoint-resource-manager", coffer.server)
    run("cloud", "set", "-n", "Coffer")
    accounts = run("login", "--service-principal", "-u", coffer.creds["client_id"], "-p", coffer.creds["client_secret"],
                   "--tenant", coffer.creds["tenant_id"])
    assert accounts[0]["id"] == coffer.creds["subscription_id"]
    return run


@pytest.mark.compat("Azure CLI", "management")
@pytest.mark.compat("Azure CLI", "secrets")
@pytest.mark.compat("Azure CLI", "identity")
def test_az_keyvault_on_an_rbac_vault(coffer, az):
    v = "az" + uuid.uuid4().hex[:10]
    created = az("keyvault", "create", "--name", v, "--resource-group", "default")
    assert created["properties"]["vaultUri"] == f"https://{v}.vault.localhost:{coffer.port}/"
    assert created["properties"]["enableRbacAuthorization"] is True
    assert v in [x["name"] for x in az("keyvault", "list")]
    assert az("keyvault", "show", "--name", v)["name"] == v
    # RBAC: the creator needs a data role first, which az gives it.
    admin = coffer.cli_json("principal", "show", "--id", coffer.creds["client_id"])["object_id"]
    az("role", "assignment", "create", "--role", "Key Vault Secrets Officer", "--assignee-object-id", admin,
       "--assignee-principal-type", "ServicePrincipal", "--scope", created["id"])
    assert az("keyvault", "secret", "set", "--vault-name", v, "--name", "db", "--value", "from-az")["value"] == "from-az"
    assert az("keyvault", "secret", "show", "--vault-name", v, "--name", "db")["value"] == "from-az"
    assert [s["name"] for s in az("keyvault", "secret", "list", "--vault-name", v)] == ["db"]
    az("keyvault", "secret", "delete", "--vault-name", v, "--name", "db")
    az("keyvault", "secret", "recover", "--vault-name", v, "--name", "db")
    assert az("keyvault", "secret", "show", "--vault-name", v, "--name", "db")["value"] == "from-az"
    az("keyvault", "secret", "delete", "--vault-name", v, "--name", "db")
    az("keyvault", "secret", "purge", "--vault-name", v, "--name", "db")
    assert az("keyvault", "secret", "list", "--vault-name", v) == []
    # The vault's own lifecycle.
    az("keyvault", "delete", "--name", v)
    assert v in [d["name"] for d in az("keyvault", "list-deleted")]
    assert az("keyvault", "recover", "--name", v)["name"] == v
    az("keyvault", "delete", "--name", v)
    az("keyvault", "purge", "--name", v)
    assert v not in [d["name"] for d in az("keyvault", "list-deleted")]


@pytest.mark.compat("Azure CLI", "management")
@pytest.mark.compat("Azure CLI", "secrets")
def test_az_keyvault_with_access_policies(coffer, az):
    v = "az" + uuid.uuid4().hex[:10]
    az("keyvault", "create", "--name", v, "--resource-group", "default", "--enable-rbac-authorization", "false", "--no-self-perms")
    admin = coffer.cli_json("principal", "show", "--id", coffer.creds["client_id"])["object_id"]
    updated = az("keyvault", "set-policy", "--name", v, "--object-id", admin, "--secret-permissions", "get", "list", "set")
    assert sorted(updated["properties"]["accessPolicies"][0]["permissions"]["secrets"]) == ["get", "list", "set"]
    az("keyvault", "secret", "set", "--vault-name", v, "--name", "s", "--value", "policy-guarded")
    assert az("keyvault", "secret", "show", "--vault-name", v, "--name", "s")["value"] == "policy-guarded"
    assert az("keyvault", "update", "--name", v, "--enable-purge-protection", "true")["properties"]["enablePurgeProtection"] is True
    az("keyvault", "delete-policy", "--name", v, "--object-id", admin)
    r = az("keyvault", "secret", "show", "--vault-name", v, "--name", "s", check=False)
    assert r.returncode != 0 and "AccessDenied" in r.stderr


@pytest.mark.compat("Azure CLI", "authorization")
def test_az_role_assignment_and_definition_commands(coffer, az):
    """`az role` against ARM's Microsoft.Authorization: the creator of an RBAC vault gives itself
    a data role with az alone, at the vault and at one secret; lists and deletes it."""
    v = "az" + uuid.uuid4().hex[:10]
    vault = az("keyvault", "create", "--name", v, "--resource-group", "default")
    admin = coffer.cli_json("principal", "show", "--id", coffer.creds["client_id"])["object_id"]
    defs = az("role", "definition", "list", "--name", "Key Vault Secrets Officer")
    assert len(defs) == 1 and defs[0]["roleName"] == "Key Vault Secrets Officer" and defs[0]["roleType"] == "BuiltInRole"
    assert "Key Vault Secrets User" in [d["roleName"] for d in az("role", "definition", "list")]
    r = az("keyvault", "secret", "set", "--vault-name", v, "--name", "db", "--value", "x", check=False)
    assert r.returncode != 0 and "Forbidden" in r.stderr, "no data role yet"
    made = az("role", "assignment", "create", "--role", "Key Vault Secrets Officer", "--assignee-object-id", admin,
              "--assignee-principal-type", "ServicePrincipal", "--scope", vault["id"])
    assert made["principalId"] == admin and made["scope"].lower() == vault["id"].lower()
    assert made["roleDefinitionId"].endswith("/roleDefinitions/" + defs[0]["name"])
    assert az("keyvault", "secret", "set", "--vault-name", v, "--name", "db", "--value", "from-az")["value"] == "from-az"
    listed = az("role", "assignment", "list", "--scope", vault["id"], "--fill-principal-name", "false")
    assert [a["name"] for a in listed if a["principalId"] == admin and "Secrets Officer" in a["roleDefinitionName"]] \
        == [made["name"]], listed
    # One secret's scope, for a second principal.
    reader = coffer.cli_json("principal", "create", "--type", "app", "--name", "az-reader-" + v)["object_id"]
    item = az("role", "assignment", "create", "--role", "Key Vault Secrets User", "--assignee-object-id", reader,
              "--assignee-principal-type", "ServicePrincipal", "--scope", vault["id"] + "/secrets/db")
    assert item["scope"].lower().endswith("/secrets/db")
    shown = coffer.cli_json("role", "assignment", "list", "--scope", f"/vaults/{v}/secrets/db")
    assert [a["principalId"] for a in shown] == [reader], "the same assignment Coffer's own CLI shows"
    # Deleted by id: the data role is gone.
    az("role", "assignment", "delete", "--ids", made["id"])
    r = az("keyvault", "secret", "show", "--vault-name", v, "--name", "db", check=False)
    assert r.returncode != 0 and "Forbidden" in r.stderr


# ---- Microsoft Graph: `az ad …` manages Coffer's directory ----

def _sp_token(coffer, client_id, secret, resource):
    import requests

    r = requests.post(f"{coffer.server}/{coffer.creds['tenant_id']}/oauth2/v2.0/token", timeout=30,
                      verify=coffer.creds["ca_file"],
                      data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
                            "scope": f"{resource}/.default"})
    return r


@pytest.mark.compat("Azure CLI", "directory")
@pytest.mark.compat("Azure CLI", "authorization")
def test_az_ad_sp_create_for_rbac_gives_a_working_identity(coffer, az):
    """`az ad sp create-for-rbac --role --scopes` makes an application, its service principal
    and a secret through Graph, and the role assignment through ARM: the new identity signs in
    and reads the vault's secret, and Coffer's own CLI shows the same principal."""
    from azure.keyvault.secrets import SecretClient

    v = "az" + uuid.uuid4().hex[:10]
    vault = az("keyvault", "create", "--name", v, "--resource-group", "default")
    admin = coffer.cli_json("principal", "show", "--id", coffer.creds["client_id"])["object_id"]
    az("role", "assignment", "create", "--role", "Key Vault Secrets Officer", "--assignee-object-id", admin,
       "--assignee-principal-type", "ServicePrincipal", "--scope", vault["id"])
    az("keyvault", "secret", "set", "--vault-name", v, "--name", "db", "--value", "for-the-new-app")
    name = "rbac-" + v
    made = az("ad", "sp", "create-for-rbac", "--display-name", name, "--role", "Key Vault Secrets User",
              "--scopes", vault["id"])
    assert made["displayName"] == name and made["tenant"] == coffer.creds["tenant_id"] and made["password"]
    shown = coffer.cli_json("principal", "show", "--id", made["appId"])
    assert shown["type"] == "app" and shown["name"] == name, "the same object Coffer's CLI manages"
    # The new identity reads the secret with the password Graph generated.
    from azure.identity import ClientSecretCredential

    cred = ClientSecretCredential(coffer.creds["tenant_id"], made["appId"], made["password"], authority=coffer.server,
                                  disable_instance_discovery=True, connection_verify=coffer.creds["ca_file"])
    client = SecretClient(coffer.vault_url(v), cred, verify_challenge_resource=False,
                          connection_verify=coffer.creds["ca_file"])
    assert client.get_secret("db").value == "for-the-new-app"
    # Listing and showing it through az.
    sps = az("ad", "sp", "list", "--display-name", name)
    assert [s["appId"] for s in sps] == [made["appId"]] and sps[0]["id"] == shown["object_id"]
    assert az("ad", "sp", "show", "--id", made["appId"])["servicePrincipalType"] == "Application"
    listed = az("role", "assignment", "list", "--scope", vault["id"])
    mine = [a for a in listed if a["principalId"] == shown["object_id"]]
    assert [a["roleDefinitionName"] for a in mine] == ["Key Vault Secrets User"]
    assert mine[0]["principalName"] == made["appId"], "az fills the principal's name from Graph"
    # Run again with the same name: the same application, a new password (the old one ends).
    again = az("ad", "sp", "create-for-rbac", "--display-name", name)
    assert again["appId"] == made["appId"] and again["password"] != made["password"]
    assert _sp_token(coffer, made["appId"], made["password"], coffer.server).status_code == 401
    assert _sp_token(coffer, made["appId"], again["password"], coffer.server).status_code == 200
    # Deleting the service principal ends the identity.
    az("ad", "sp", "delete", "--id", made["appId"])
    assert _sp_token(coffer, made["appId"], again["password"], coffer.server).status_code == 401
    assert coffer.cli("principal", "show", "--id", made["appId"]).returncode != 0


@pytest.mark.compat("Azure CLI", "directory")
def test_az_ad_app_commands(coffer, az):
    name = "app-" + uuid.uuid4().hex[:10]
    app = az("ad", "app", "create", "--display-name", name)
    assert app["displayName"] == name and app["passwordCredentials"] == []
    assert [a["appId"] for a in az("ad", "app", "list", "--display-name", name)] == [app["appId"]]
    assert az("ad", "app", "show", "--id", app["appId"])["id"] == app["id"]
    sp = az("ad", "sp", "create", "--id", app["appId"])
    assert sp["appId"] == app["appId"]
    reset = az("ad", "app", "credential", "reset", "--id", app["appId"], "--years", "1")
    assert reset["appId"] == app["appId"] and reset["password"]
    creds = az("ad", "app", "credential", "list", "--id", app["appId"])
    assert len(creds) == 1 and creds[0]["endDateTime"] > creds[0]["startDateTime"]
    assert _sp_token(coffer, app["appId"], reset["password"], coffer.server).status_code == 200
    az("ad", "app", "credential", "delete", "--id", app["appId"], "--key-id", creds[0]["keyId"])
    assert _sp_token(coffer, app["appId"], reset["password"], coffer.server).status_code == 401
    # What Coffer does not keep is refused, not dropped.
    r = az("ad", "app", "create", "--display-name", name + "-web", "--web-redirect-uris", "https://x.example/cb",
           check=False)
    assert r.returncode != 0 and "does not keep" in r.stderr
    az("ad", "app", "delete", "--id", app["appId"])
    assert az("ad", "app", "list", "--display-name", name) == []
    r = az("ad", "app", "show", "--id", app["appId"], check=False)
    assert r.returncode != 0


@pytest.mark.compat("Azure CLI", "directory")
@pytest.mark.compat("Azure CLI", "authorization")
def test_az_ad_users_groups_and_assignee_names(coffer, az):
    """Users and groups through `az ad`, a role assigned by a user's sign-in name, reached
    through a group; the user signs in with az and sees only itself."""
    tag = uuid.uuid4().hex[:8]
    upn = f"dana-{tag}@coffer.local"
    user = az("ad", "user", "create", "--display-name", "Dana Scully", "--user-principal-name", upn,
              "--password", "Xfiles-1013!")
    assert user["userPrincipalName"] == upn and user["displayName"] == "Dana Scully"
    shown = coffer.cli_json("principal", "show", "--id", user["id"])
    assert (shown["name"], shown["display_name"]) == (upn, "Dana Scully"), "the same object Coffer's CLI shows"
    assert az("ad", "user", "show", "--id", upn)["id"] == user["id"]
    assert [u["id"] for u in az("ad", "user", "list", "--upn", upn)] == [user["id"]]
    assert [u["id"] for u in az("ad", "user", "list", "--display-name", "Dana")] == [user["id"]]
    group = az("ad", "group", "create", "--display-name", "Pathology " + tag, "--mail-nickname", "path" + tag)
    assert az("ad", "group", "create", "--display-name", "Pathology " + tag, "--mail-nickname", "path" + tag)["id"] \
        == group["id"], "az ad group create finds the existing group"
    az("ad", "group", "member", "add", "--group", group["id"], "--member-id", user["id"])
    assert [m["id"] for m in az("ad", "group", "member", "list", "--group", "Pathology " + tag)] == [user["id"]]
    assert az("ad", "group", "member", "check", "--group", group["id"], "--member-id", user["id"])["value"] is True
    assert [g["id"] for g in az("ad", "user", "get-member-groups", "--id", upn)] == [group["id"]]
    assert coffer.cli_json("principal", "show", "--id", group["id"])["members"] == [user["id"]]
    # A role by the user's name; a second by the group's object id.
    v = "az" + uuid.uuid4().hex[:10]
    vault = az("keyvault", "create", "--name", v, "--resource-group", "default")
    made = az("role", "assignment", "create", "--role", "Key Vault Secrets User", "--assignee", upn,
              "--scope", vault["id"])
    assert made["principalId"] == user["id"] and made["principalType"] == "User"
    by_group = az("role", "assignment", "create", "--role", "Key Vault Reader", "--assignee", group["id"],
                  "--scope", vault["id"])
    assert by_group["principalId"] == group["id"] and by_group["principalType"] == "Group"
    # Disabled through Graph: the user can no longer get a token; removed from the group; deleted.
    az("ad", "user", "update", "--id", upn, "--account-enabled", "false")
    assert coffer.cli_json("principal", "show", "--id", user["id"])["enabled"] is False
    az("ad", "group", "member", "remove", "--group", group["id"], "--member-id", user["id"])
    assert az("ad", "group", "member", "list", "--group", group["id"]) == []
    az("ad", "user", "delete", "--id", user["id"])
    assert az("ad", "user", "list", "--upn", upn) == []
    az("ad", "group", "delete", "--group", group["id"])
    assert az("ad", "group", "list", "--display-name", "Pathology " + tag) == []


@pytest.mark.compat("Azure CLI", "directory")
@pytest.mark.compat("Azure CLI", "management")
def test_az_keyvault_create_gives_its_creator_an_access_policy(coffer, az):
    """Without --no-self-perms, az finds its own object id through Graph (a service principal:
    `/me` is refused, then `servicePrincipals` by its appId) and writes it into the policy."""
    v = "az" + uuid.uuid4().hex[:10]
    created = az("keyvault", "create", "--name", v, "--resource-group", "default",
                 "--enable-rbac-authorization", "false")
    admin = coffer.cli_json("principal", "show", "--id", coffer.creds["client_id"])["object_id"]
    policies = created["properties"]["accessPolicies"]
    assert [p["objectId"] for p in policies] == [admin]
    assert policies[0]["permissions"]["secrets"] == ["all"], "as az writes it"
    az("keyvault", "secret", "set", "--vault-name", v, "--name", "s", "--value", "self-perms")
    assert az("keyvault", "secret", "show", "--vault-name", v, "--name", "s")["value"] == "self-perms"


@pytest.fixture
def port_443_to_coffer(coffer):
    """127.0.0.1:443 forwarded to the test server while a test runs. MSAL Python (so `az login
    -u/-p` and azure-identity's UsernamePasswordCredential) asks the authority's *host* for the
    user realm on port 443 whatever port the authority has; in production Coffer listens on 443,
    here a forwarder stands in for that."""
    import socket

    from loopback import serving, splice

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", 443))
    except OSError as e:
        pytest.fail(f"port 443 on loopback is needed for this test (run as root, with 443 free): {e}")
    with serving(listener, lambda client: splice(client, coffer.port)):
        yield


@pytest.mark.compat("Azure CLI", "directory")
@pytest.mark.compat("Azure CLI", "identity")
def test_az_login_as_a_user_who_sees_only_itself(coffer, az, port_443_to_coffer):
    """A user signs in with `az login -u -p` (the password grant), `az ad signed-in-user show`
    is that user, and a user who is not an administrator reads only itself and changes nothing."""
    tag = uuid.uuid4().hex[:8]
    upn = f"fox-{tag}@coffer.local"
    user = az("ad", "user", "create", "--display-name", "Fox Mulder", "--user-principal-name", upn,
              "--password", "Trustno1-1013!")
    # Fox signs in with az: he sees himself and no one else.
    config = os.path.join(coffer.data_dir, f"az-fox-{tag}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "COFFER_"))}
    env.update(AZURE_CONFIG_DIR=str(config), PYTHONPATH=str(ROOT / "tests" / "compat" / "azshim"),
               REQUESTS_CA_BUNDLE=coffer.creds["ca_file"], AZURE_CORE_COLLECT_TELEMETRY="false")

    def fox(*args):
        r = subprocess.run([str(AZ), *args, "-o", "json"], env=env, capture_output=True, text=True, timeout=180)
        return r, (json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else None)

    fox("config", "set", "core.instance_discovery=false")
    fox("cloud", "register", "-n", "Coffer", "--endpoint-resource-manager", coffer.server)
    fox("cloud", "set", "-n", "Coffer")
    r, _ = fox("login", "-u", upn, "-p", "Trustno1-1013!", "--tenant", coffer.creds["tenant_id"],
                "--allow-no-subscriptions")
    assert r.returncode == 0, r.stderr
    r, me = fox("ad", "signed-in-user", "show")
    assert r.returncode == 0 and me["id"] == user["id"] and me["userPrincipalName"] == upn, r.stderr
    r, seen = fox("ad", "user", "list")
    assert r.returncode == 0 and [u["id"] for u in seen] == [user["id"]], "a user reads only itself"
    r, _ = fox("ad", "group", "create", "--display-name", "Mine " + tag, "--mail-nickname", "mine" + tag)
    assert r.returncode != 0 and "not a tenant administrator" in r.stderr
    r, _ = fox("ad", "user", "show", "--id", coffer.cli_json("principal", "show", "--id", coffer.creds["client_id"])
               ["object_id"])
    assert r.returncode != 0, "another object is not found for a user who is not an administrator"
    az("ad", "user", "delete", "--id", user["id"])
    r, _ = fox("ad", "signed-in-user", "show")
    assert r.returncode != 0, "a deleted user's token no longer works"


@pytest.mark.compat("Azure CLI", "keys")
@pytest.mark.compat("Azure CLI", "certificates")
def test_az_keyvault_key_and_certificate_commands(coffer, az, tmp_path):
    v = "az" + uuid.uuid4().hex[:10]
    vault = az("keyvault", "create", "--name", v, "--resource-group", "default")
    admin = coffer.cli_json("principal", "show", "--id", coffer.creds["client_id"])["object_id"]
    for role in ("Key Vault Crypto Officer", "Key Vault Certificates Officer", "Key Vault Secrets User"):
        az("role", "assignment", "create", "--role", role, "--assignee-object-id", admin,
           "--assignee-principal-type", "ServicePrincipal", "--scope", vault["id"])
    # Keys.
    key = az("keyvault", "key", "create", "--vault-name", v, "--name", "k", "--kty", "RSA", "--size", "2048")
    assert key["key"]["kty"] == "RSA" and key["key"]["kid"].startswith(f"https://{v}.vault.localhost")
    assert az("keyvault", "key", "show", "--vault-name", v, "--name", "k")["key"]["kid"] == key["key"]["kid"]
    assert [k["name"] for k in az("keyvault", "key", "list", "--vault-name", v)] == ["k"]
    import base64
    plain = base64.b64encode(b"sealed by az").decode()
    enc = az("keyvault", "key", "encrypt", "--vault-name", v, "--name", "k", "--algorithm", "RSA-OAEP-256",
             "--value", plain, "--data-type", "base64")
    dec = az("keyvault", "key", "decrypt", "--vault-name", v, "--name", "k", "--algorithm", "RSA-OAEP-256",
             "--value", enc["result"], "--data-type", "base64")
    assert base64.b64decode(dec["result"]) == b"sealed by az"
    pem = tmp_path / "k.pem"
    az("keyvault", "key", "download", "--vault-name", v, "--name", "k", "--file", str(pem))
    assert pem.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    rotated = az("keyvault", "key", "rotate", "--vault-name", v, "--name", "k")
    assert rotated["key"]["kid"] != key["key"]["kid"]
    assert len(az("keyvault", "key", "list-versions", "--vault-name", v, "--name", "k")) == 2
    backup = tmp_path / "k.backup"
    az("keyvault", "key", "backup", "--vault-name", v, "--name", "k", "--file", str(backup))
    az("keyvault", "key", "delete", "--vault-name", v, "--name", "k")
    az("keyvault", "key", "purge", "--vault-name", v, "--name", "k")
    assert az("keyvault", "key", "restore", "--vault-name", v, "--file", str(backup))["key"]["kid"] \
        .startswith(f"https://{v}.vault.localhost")
    # Certificates.
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(az("keyvault", "certificate", "get-default-policy")))
    az("keyvault", "certificate", "create", "--vault-name", v, "--name", "web", "--policy", f"@{policy}")
    cert = az("keyvault", "certificate", "show", "--vault-name", v, "--name", "web")
    assert cert["policy"]["x509CertificateProperties"]["subject"] == "CN=CLIGetDefaultPolicy" and cert["cer"]
    assert [c["name"] for c in az("keyvault", "certificate", "list", "--vault-name", v)] == ["web"]
    der = tmp_path / "web.pem"
    az("keyvault", "certificate", "download", "--vault-name", v, "--name", "web", "--file", str(der), "--encoding", "PEM")
    assert der.read_text().startswith("-----BEGIN CERTIFICATE-----")
    # The certificate's secret (its key), as `az keyvault secret download` gives it.
    pfx = tmp_path / "web.pfx"
    az("keyvault", "secret", "download", "--vault-name", v, "--name", "web", "--file", str(pfx), "--encoding", "base64")
    assert pfx.stat().st_size > 500
    az("keyvault", "certificate", "delete", "--vault-name", v, "--name", "web")
    assert [c["name"] for c in az("keyvault", "certificate", "list-deleted", "--vault-name", v)] == ["web"]
    az("keyvault", "certificate", "recover", "--vault-name", v, "--name", "web")
    assert az("keyvault", "certificate", "show", "--vault-name", v, "--name", "web")["id"]


@pytest.mark.compat("Azure CLI", "authorization")
@pytest.mark.compat("Azure CLI", "management")
def test_az_role_assignment_at_a_resource_group(coffer, az):
    """A role at a resource group covers every vault of that group — one made later too — and
    no vault of another group; the assignment ends with its group (a group made again under the
    name inherits nothing)."""
    from azure.identity import ClientSecretCredential
    from azure.keyvault.secrets import SecretClient

    tag = uuid.uuid4().hex[:8]
    group = az("group", "create", "--name", "Ward-" + tag, "--location", "local")
    admin = coffer.cli_json("principal", "show", "--id", coffer.creds["client_id"])["object_id"]
    inside, outside = "in" + tag, "out" + tag
    for v, rg in ((inside, group["name"]), (outside, "default")):
        made = az("keyvault", "create", "--name", v, "--resource-group", rg)
        az("role", "assignment", "create", "--role", "Key Vault Secrets Officer", "--assignee-object-id", admin,
           "--assignee-principal-type", "ServicePrincipal", "--scope", made["id"])
        az("keyvault", "secret", "set", "--vault-name", v, "--name", "s", "--value", "in " + v)
    sp = az("ad", "sp", "create-for-rbac", "--display-name", "ward-reader-" + tag, "--role", "Key Vault Secrets User",
            "--scopes", group["id"])
    cred = ClientSecretCredential(coffer.creds["tenant_id"], sp["appId"], sp["password"], authority=coffer.server,
                                  disable_instance_discovery=True, connection_verify=coffer.creds["ca_file"])
    client = lambda v: SecretClient(coffer.vault_url(v), cred, verify_challenge_resource=False,  # noqa: E731
                                    connection_verify=coffer.creds["ca_file"])
    assert client(inside).get_secret("s").value == "in " + inside
    from azure.core.exceptions import HttpResponseError
    with pytest.raises(HttpResponseError) as e:
        client(outside).get_secret("s")
    assert e.value.status_code == 403, "a vault of another group is not covered"
    # A vault made in the group later is covered too.
    later = az("keyvault", "create", "--name", "late" + tag, "--resource-group", group["name"])
    az("role", "assignment", "create", "--role", "Key Vault Secrets Officer", "--assignee-object-id", admin,
       "--assignee-principal-type", "ServicePrincipal", "--scope", later["id"])
    az("keyvault", "secret", "set", "--vault-name", "late" + tag, "--name", "s", "--value", "later")
    assert client("late" + tag).get_secret("s").value == "later"
    # Listed at the group (with what is below it), at a vault inside (inherited) and by Coffer's CLI.
    at_group = az("role", "assignment", "list", "--scope", group["id"])
    sp_oid = coffer.cli_json("principal", "show", "--id", sp["appId"])["object_id"]
    mine = [a for a in at_group if a["principalId"] == sp_oid]
    assert [a["scope"] for a in mine] == [group["id"]], at_group
    import requests
    raw = requests.get(f"{coffer.server}{group['id']}/providers/Microsoft.Authorization/roleAssignments",
                       params={"api-version": "2022-04-01"}, verify=coffer.creds["ca_file"], timeout=30,
                       headers={"Authorization": f"Bearer {coffer.token(resource=coffer.server)}"}).json()["value"]
    assert any(a["properties"]["scope"] == later["id"] for a in raw), "without atScope(), what is below too"
    inherited = az("role", "assignment", "list", "--scope", later["id"], "--include-inherited")
    assert any(a["principalId"] == sp_oid for a in inherited)
    assert [a["principalId"] for a in coffer.cli_json("role", "assignment", "list", "--scope",
                                                      "/resourceGroups/" + group["name"])] == [sp_oid]
    # The group goes (its vaults first): its assignment ends; a group of that name inherits nothing.
    for v in (inside, "late" + tag):
        az("keyvault", "delete", "--name", v)
        az("keyvault", "purge", "--name", v)
    az("group", "delete", "--name", group["name"], "--yes")
    assert coffer.cli_json("role", "assignment", "list", "--assignee", sp_oid) == []
    again = az("group", "create", "--name", group["name"], "--location", "local")
    az("keyvault", "create", "--name", inside, "--resource-group", again["name"])
    with pytest.raises(HttpResponseError) as e:
        client(inside).get_secret("s")
    assert e.value.status_code == 403
