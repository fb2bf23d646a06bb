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
    # A resource group scope would grant more than asked: refused.
    rg = vault["id"].split("/providers/")[0]
    r = az("role", "assignment", "create", "--role", "Key Vault Secrets User", "--assignee-object-id", reader,
           "--assignee-principal-type", "ServicePrincipal", "--scope", rg, check=False)
    assert r.returncode != 0 and "resource group" in r.stderr
    # Deleted by id: the data role is gone.
    az("role", "assignment", "delete", "--ids", made["id"])
    r = az("keyvault", "secret", "show", "--vault-name", v, "--name", "db", check=False)
    assert r.returncode != 0 and "Forbidden" in r.stderr
