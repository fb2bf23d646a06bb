"""Access control: the hospital scenario of the access-control issue, driven by the real
SDK, under RBAC (with item-scope grants) and under access policies; explain and who-can;
who may grant; custom roles."""
import json
import os
import subprocess
import time
import uuid

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient

from conftest import BIN

SECRETS = ["Sqldb-ConnectionString", "patient-records-db", "xray-store", "payment-schedule-api"]
DATA_STORES = ["Sqldb-ConnectionString", "patient-records-db", "xray-store"]


class TokenEndpointCredential:
    """A credential for users (password grant) or managed identities (identity endpoint)."""

    def __init__(self, fetch):
        self.fetch = fetch

    def get_token(self, *scopes, **kwargs):
        token, expires_in = self.fetch(scopes[0])
        return AccessToken(token, int(time.time()) + expires_in)


class World:
    def __init__(self, coffer, tmp_path, rbac):
        self.coffer, self.rbac = coffer, rbac
        self.tag = uuid.uuid4().hex[:6]
        self.config = tmp_path / "config"
        self.principals = {}

    def user(self, name):
        full = f"{name}-{self.tag}"
        r = self.coffer.cli("principal", "create", "--type", "user", "--name", full, "--password-stdin", input="hospital-pass\n")
        assert r.returncode == 0, r.stderr
        p = json.loads(r.stdout)
        self.principals[name] = p

        def fetch(scope):
            b = requests.post(f"{self.coffer.server}/{self.coffer.creds['tenant_id']}/oauth2/v2.0/token", data=dict(
                grant_type="password", client_id="coffer-cli", username=full, password="hospital-pass", scope=scope)).json()
            return b["access_token"], b["expires_in"]

        p["credential"] = TokenEndpointCredential(fetch)
        return p

    def app(self, name):
        p = self.coffer.cli_json("principal", "create", "--type", "app", "--name", f"{name}-{self.tag}")
        secret = self.coffer.cli_json("principal", "credential", "add", "--id", p["object_id"])["client_secret"]
        p["credential"] = ClientSecretCredential(self.coffer.creds["tenant_id"], p["client_id"], secret,
                                                 authority=self.coffer.server, disable_instance_discovery=True)
        self.principals[name] = p
        return p

    def managed_identity(self, name):
        p = self.coffer.cli_json("principal", "create", "--type", "managed-identity", "--name", f"{name}-{self.tag}")

        def fetch(scope):
            resource = scope[: -len("/.default")]
            b = requests.get(p["identity_endpoint"], params={"api-version": "2019-08-01", "resource": resource},
                             headers={"X-IDENTITY-HEADER": p["identity_header"]}).json()
            return b["access_token"], int(b["expires_on"]) - int(time.time())

        p["credential"] = TokenEndpointCredential(fetch)
        self.principals[name] = p
        return p

    def group(self, name, members):
        g = self.coffer.cli_json("group", "create", "--name", f"{name}-{self.tag}")
        for m in members:
            self.coffer.cli_json("group", "member", "add", "--group", g["object_id"], "--member", m["object_id"])
        self.principals[name] = g
        return g

    def as_user(self, name, *args):
        """Runs the CLI signed in as one of the world's users (a saved profile)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("COFFER_")}
        env.update(COFFER_CONFIG_DIR=str(self.config), COFFER_SERVER=self.coffer.server,
                   COFFER_CA_FILE=self.coffer.creds["ca_file"], COFFER_TENANT_ID=self.coffer.creds["tenant_id"],
                   COFFER_PROFILE=name)
        if not (self.config / "profiles" / f"{name}.json").exists():
            r = subprocess.run([BIN, "login", "--username", f"{name}-{self.tag}", "--password-stdin"], env=env,
                               input="hospital-pass\n", capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
        return subprocess.run([BIN, *args], env=env, capture_output=True, text=True)

    def client(self, name, vault=None):
        return SecretClient(self.coffer.vault_url(vault or self.vault), self.principals[name]["credential"])


def build(coffer, tmp_path, rbac):
    w = World(coffer, tmp_path, rbac)
    admin_oid = coffer.cli_json("principal", "show", "--id", coffer.creds["client_id"])["object_id"]
    site_admin = w.user("site-admin")
    coffer.cli_json("role", "assignment", "create", "--role", "Contributor", "--assignee", site_admin["object_id"], "--scope", "/")
    doctors = w.group("doctors", [w.user("doctor1"), w.user("doctor2")])
    technicians = w.group("technicians", [w.user("tech1"), w.user("tech2")])
    receptionists = w.group("receptionists", [w.user("reception1")])
    ml, dashboard, reader = w.app("ml-studio"), w.managed_identity("dashboard"), w.app("reader")

    # The site administrator creates the vault: management only, no data access.
    w.vault = f"hc{'r' if rbac else 'p'}{w.tag}"
    args = ["vault", "create", "--name", w.vault, "--no-self-perms"]
    if rbac:
        args += ["--enable-rbac-authorization", "true"]
    r = w.as_user("site-admin", *args)
    assert r.returncode == 0, r.stderr

    def grant_role(role, who, scope):
        r = w.as_user("site-admin", "role", "assignment", "create", "--role", role, "--assignee", who["object_id"],
                      "--scope", scope)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def grant_policy(who, *perms):
        r = w.as_user("site-admin", "vault", "set-policy", "--name", w.vault, "--object-id", who["object_id"],
                      "--secret-permissions", *perms)
        assert r.returncode == 0, r.stderr

    item = lambda n: f"/vaults/{w.vault}/secrets/{n}"
    if rbac:
        grant_role("Key Vault Secrets Officer", {"object_id": admin_oid}, f"/vaults/{w.vault}")
        grant_role("Key Vault Secrets User", doctors, item("patient-records-db"))
        grant_role("Key Vault Secrets User", technicians, item("xray-store"))
        grant_role("Key Vault Secrets User", receptionists, item("payment-schedule-api"))
        for n in DATA_STORES:
            grant_role("Key Vault Secrets User", ml, item(n))
        grant_role("Key Vault Secrets User", dashboard, f"/vaults/{w.vault}")
        grant_role("Key Vault Reader", reader, f"/vaults/{w.vault}")
    else:
        grant_policy({"object_id": admin_oid}, "all")
        for g in (doctors, technicians, receptionists, ml):
            grant_policy(g, "get")
        grant_policy(dashboard, "get", "list")
        grant_policy(reader, "list")
    seed = SecretClient(coffer.vault_url(w.vault), coffer.credential())
    for n in SECRETS:
        seed.set_secret(n, f"value-of-{n}")
    return w


def can_read(client, name):
    try:
        return client.get_secret(name).value == f"value-of-{name}"
    except HttpResponseError as e:
        assert e.status_code == 403, e
        return False


def forbidden_code(client, name):
    with pytest.raises(HttpResponseError) as e:
        client.get_secret(name)
    assert e.value.status_code == 403 and e.value.error.code == "Forbidden"
    return e.value


@pytest.mark.parametrize("rbac", [True, False], ids=["rbac", "access-policies"])
def test_hospital(coffer, tmp_path, rbac):
    w = build(coffer, tmp_path, rbac)
    inner = "ForbiddenByRbac" if rbac else "AccessDenied"

    # site-admin: sees every id and its attributes, and gets 403 on every value.
    site = w.client("site-admin")
    listed = {p.name: p for p in site.list_properties_of_secrets()}
    assert set(listed) == set(SECRETS)
    assert all(p.id.startswith(site.vault_url) and p.enabled for p in listed.values())
    for n in SECRETS:
        err = forbidden_code(site, n)
        assert err.error.innererror["code"] == inner
        assert w.principals["site-admin"]["object_id"] in err.message and w.vault in err.message

    expected = {
        "doctor1": ["patient-records-db"], "doctor2": ["patient-records-db"],
        "tech1": ["xray-store"], "tech2": ["xray-store"],
        "reception1": ["payment-schedule-api"],
        "ml-studio": DATA_STORES, "dashboard": SECRETS, "reader": [],
    }
    for who, allowed in expected.items():
        c = w.client(who)
        readable = [n for n in SECRETS if can_read(c, n)]
        if rbac or not allowed or who == "dashboard":
            assert readable == [n for n in SECRETS if n in allowed], (who, readable)
        else:
            # Access policies cannot narrow below the vault: a `get` grant reads every secret.
            assert set(allowed) <= set(readable), (who, readable)
    # The reader sees metadata, never a value.
    assert {p.name for p in w.client("reader").list_properties_of_secrets()} == set(SECRETS)
    assert forbidden_code(w.client("reader"), "xray-store").error.innererror["code"] == inner
    # A doctor can't list the vault under RBAC (the grant is on one secret).
    if rbac:
        with pytest.raises(HttpResponseError) as e:
            list(w.client("doctor1").list_properties_of_secrets())
        assert e.value.status_code == 403

    # Removing doctor1 from doctors removes the access at once.
    d1 = w.client("doctor1")
    assert can_read(d1, "patient-records-db")
    coffer.cli_json("group", "member", "remove", "--group", w.principals["doctors"]["object_id"],
                    "--member", w.principals["doctor1"]["object_id"])
    assert not can_read(d1, "patient-records-db")

    # A principal's token gives nothing in another vault without a grant there.
    other = coffer.new_vault()
    SecretClient(coffer.vault_url(other), coffer.credential()).set_secret("elsewhere", "value-of-elsewhere")
    for who in ["ml-studio", "dashboard", "doctor2"]:
        assert not can_read(w.client(who, other), "elsewhere")

    # explain: the decision and the exact grant.
    def explain(who, secret, action="getSecret"):
        return coffer.cli_json("access", "explain", "--assignee", w.principals[who]["object_id"], "--vault", w.vault,
                               "--secret", secret, "--action", action)

    e = explain("doctor2", "patient-records-db")
    assert e["decision"] == "allow" and e["model"] == ("rbac" if rbac else "accessPolicy")
    assert w.principals["doctors"]["object_id"] in e["reasons"][0]
    if rbac:
        assert "Key Vault Secrets User" in e["reasons"][0] and f"/vaults/{w.vault}/secrets/patient-records-db" in e["reasons"][0]
        assert explain("doctor2", "xray-store")["decision"] == "deny"
    assert explain("doctor1", "patient-records-db")["decision"] == "deny"
    assert explain("site-admin", "xray-store")["decision"] == "deny"
    listing = explain("site-admin", "xray-store", "listSecrets")
    assert listing["decision"] == "allow" and "management right" in listing["reasons"][0]
    assert explain("reader", "xray-store", "secrets/readMetadata/action")["decision"] == "allow"
    assert explain("dashboard", "payment-schedule-api", "Microsoft.KeyVault/vaults/secrets/getSecret/action")["decision"] == "allow"

    # who-can: every principal, expanded through groups, confirmed by the same evaluator.
    def who_can(secret):
        rows = coffer.cli_json("access", "who-can", "--vault", w.vault, "--secret", secret, "--action", "getSecret")
        return {r["name"].rsplit("-", 1)[0] if r["name"].endswith(w.tag) else r["name"] for r in rows}

    if rbac:
        assert who_can("patient-records-db") == {"doctor2", "ml-studio", "dashboard", "coffer-admin"}
        assert who_can("xray-store") == {"tech1", "tech2", "ml-studio", "dashboard", "coffer-admin"}
        assert who_can("payment-schedule-api") == {"reception1", "dashboard", "coffer-admin"}
    else:
        everyone_with_get = {"doctor2", "tech1", "tech2", "reception1", "ml-studio", "dashboard", "coffer-admin"}
        assert who_can("patient-records-db") == everyone_with_get
    # Every principal who-can names really can (and nobody else among those we know).
    for who, p in w.principals.items():
        if p.get("type") == "group":
            continue
        allowed_by_whocan = who in who_can("xray-store")
        assert allowed_by_whocan == can_read(w.client(who), "xray-store"), who


def test_who_may_grant(coffer, tmp_path):
    w = World(coffer, tmp_path, True)
    name = coffer.new_vault("--enable-rbac-authorization", "true")
    contributor, daa, grantee = w.user("contrib"), w.user("daa"), w.app("grantee")
    coffer.cli_json("role", "assignment", "create", "--role", "Contributor", "--assignee", contributor["object_id"], "--scope", f"/vaults/{name}")
    coffer.cli_json("role", "assignment", "create", "--role", "8b54135c-b56d-4d72-a534-26097cfdc8d8", "--assignee", daa["object_id"], "--scope", f"/vaults/{name}")

    def assign(as_who, role, scope=f"/vaults/{name}"):
        return w.as_user(as_who, "role", "assignment", "create", "--role", role, "--assignee", grantee["object_id"], "--scope", scope)

    r = assign("contrib", "Key Vault Secrets User")
    assert r.returncode == 2 and "AuthorizationFailed" in r.stderr
    # A contributor manages settings (and, as in Azure, access policies) but grants no roles.
    assert w.as_user("contrib", "vault", "update", "--name", name, "--tags", "ward=7").returncode == 0
    assert assign("daa", "Key Vault Secrets User").returncode == 0
    r = assign("daa", "Owner")
    assert r.returncode == 2 and "AuthorizationFailed" in r.stderr
    r = assign("daa", "Key Vault Secrets User", f"/vaults/{coffer.new_vault()}")
    assert r.returncode == 2, "a grant at one vault gives no rights at another"
    # Assignments are listed and deleted; a duplicate is refused.
    r = assign("daa", "Key Vault Secrets User")
    assert r.returncode == 2 and "RoleAssignmentExists" in r.stderr
    listed = coffer.cli_json("role", "assignment", "list", "--scope", f"/vaults/{name}", "--assignee", grantee["object_id"])
    assert [a["roleDefinitionName"] for a in listed] == ["Key Vault Secrets User"]
    assert coffer.cli("role", "assignment", "delete", "--id", listed[0]["id"]).returncode == 0
    assert coffer.cli_json("role", "assignment", "list", "--assignee", grantee["object_id"]) == []
    # Bad scopes and unknown roles are clear 4xx.
    r = coffer.cli("role", "assignment", "create", "--role", "Key Vault Secrets User", "--assignee", grantee["object_id"], "--scope", "/vaults/x/blobs/y")
    assert r.returncode == 2 and "scope" in r.stderr
    r = coffer.cli("role", "assignment", "create", "--role", "Chief Surgeon", "--assignee", grantee["object_id"], "--scope", "/")
    assert r.returncode == 2 and "RoleDefinitionDoesNotExist" in r.stderr


def test_who_may_grant_through_arm_role_assignments(coffer, tmp_path):
    """The same rules through ARM's `Microsoft.Authorization` (what `az role assignment` and
    azure-mgmt-authorization call): a contributor grants nothing, a Data Access Administrator
    grants data roles only, conditions and resource-group scopes are refused, and a vault path
    must name the vault's own resource group."""
    w = World(coffer, tmp_path, True)
    name = coffer.new_vault("--enable-rbac-authorization", "true")
    contributor, daa, grantee = w.user("contrib"), w.user("daa"), w.app("grantee")
    coffer.cli_json("role", "assignment", "create", "--role", "Contributor", "--assignee", contributor["object_id"], "--scope", f"/vaults/{name}")
    coffer.cli_json("role", "assignment", "create", "--role", "8b54135c-b56d-4d72-a534-26097cfdc8d8", "--assignee", daa["object_id"], "--scope", f"/vaults/{name}")
    sub = coffer.creds["subscription_id"]
    authz = "providers/Microsoft.Authorization"
    vault_scope = f"/subscriptions/{sub}/resourceGroups/default/providers/Microsoft.KeyVault/vaults/{name}"
    role_id = lambda role: f"/subscriptions/{sub}/{authz}/roleDefinitions/{role}"
    secrets_user, owner = "4633458b-17de-408a-b874-0445c86b69e6", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"

    def put(who, scope, role, name_=None, **extra):
        token = w.principals[who]["credential"].get_token(f"{coffer.server}/.default").token
        props = {"roleDefinitionId": role_id(role), "principalId": grantee["object_id"], **extra}
        return requests.put(f"{coffer.server}{scope}/{authz}/roleAssignments/{name_ or uuid.uuid4()}?api-version=2022-04-01",
                            json={"properties": props}, headers={"Authorization": f"Bearer {token}"})

    r = put("contrib", vault_scope, secrets_user)
    assert r.status_code == 403 and r.json()["error"]["code"] == "AuthorizationFailed", r.text
    assert put("daa", vault_scope, owner).status_code == 403, "a data access administrator grants data roles only"
    r = put("daa", vault_scope, secrets_user, condition="@Resource[x] StringEquals 'y'", conditionVersion="2.0")
    assert r.status_code == 400 and "condition" in r.json()["error"]["message"].lower(), r.text
    # A grant at a vault gives no right at its resource group (which would cover its other vaults).
    r = put("daa", f"/subscriptions/{sub}/resourceGroups/default", secrets_user)
    assert r.status_code == 403 and "/resourceGroups/default" in r.json()["error"]["message"], r.text
    r = put("daa", vault_scope.replace("/resourceGroups/default/", "/resourceGroups/elsewhere/"), secrets_user)
    assert r.status_code == 404, r.text
    r = put("daa", vault_scope, secrets_user, name_="not-a-guid")
    assert r.status_code == 400 and "GUID" in r.json()["error"]["message"], r.text
    made = uuid.uuid4()
    r = put("daa", vault_scope, secrets_user, name_=made)
    assert r.status_code == 201 and r.json()["properties"]["scope"] == vault_scope, r.text
    # ARM's PUT is idempotent; the same grant under another name is a conflict.
    assert put("daa", vault_scope, secrets_user, name_=made).status_code == 201
    r = put("daa", vault_scope, secrets_user)
    assert r.status_code == 409 and r.json()["error"]["code"] == "RoleAssignmentExists", r.text
    listed = coffer.cli_json("role", "assignment", "list", "--scope", f"/vaults/{name}", "--assignee", grantee["object_id"])
    assert [a["id"] for a in listed] == [str(made)], "one assignment, the same one Coffer's CLI sees"
    # Listing at a vault shows what applies there, not what applies at a vault whose name merely
    # starts the same.
    longer = name + "x"
    coffer.cli_json("vault", "create", "--name", longer, "--enable-rbac-authorization", "true")
    coffer.cli_json("role", "assignment", "create", "--role", "Key Vault Secrets User", "--assignee", grantee["object_id"],
                    "--scope", f"/vaults/{longer}")
    admin = coffer.token(resource=coffer.server)
    r = requests.get(f"{coffer.server}{vault_scope}/{authz}/roleAssignments?api-version=2022-04-01",
                     headers={"Authorization": f"Bearer {admin}"})
    scopes = {a["properties"]["scope"] for a in r.json()["value"]}
    assert vault_scope in scopes and not any(sc.endswith(f"/vaults/{longer}") for sc in scopes), scopes


def test_custom_roles_with_wildcards(coffer, tmp_path, credential):
    w = World(coffer, tmp_path, True)
    name = coffer.new_vault("--enable-rbac-authorization", "true")
    definition = {
        "roleName": f"Secret keeper {w.tag}",
        "description": "Everything on secrets but purge",
        "dataActions": ["Microsoft.KeyVault/vaults/secrets/*"],
        "notDataActions": ["Microsoft.KeyVault/vaults/secrets/purge/action"],
    }
    role = coffer.cli_json("role", "definition", "create", "--role-definition", json.dumps(definition))
    assert role["roleType"] == "CustomRole" and len(role["id"]) == 36
    assert role["id"] in [r["id"] for r in coffer.cli_json("role", "definition", "list", "--custom-role-only")]
    builtins = {r["roleName"]: r["id"] for r in coffer.cli_json("role", "definition", "list")}
    assert builtins["Key Vault Secrets User"] == "4633458b-17de-408a-b874-0445c86b69e6"
    assert builtins["Key Vault Administrator"] == "00482a5a-887f-4fb3-b363-3b7fe8e74483"
    keeper = w.app("keeper")
    coffer.cli_json("role", "assignment", "create", "--role", role["roleName"], "--assignee", keeper["object_id"], "--scope", f"/vaults/{name}")
    c = w.client("keeper", name)
    c.set_secret("s", "v")
    assert c.get_secret("s").value == "v"
    c.begin_delete_secret("s").wait()
    with pytest.raises(HttpResponseError) as e:
        c.purge_deleted_secret("s")
    assert e.value.status_code == 403 and e.value.error.innererror["code"] == "ForbiddenByRbac"
    assert "secrets/purge/action" in e.value.message
    r = coffer.cli("role", "definition", "delete", "--name", role["id"])
    assert r.returncode == 2 and "RoleDefinitionHasAssignments" in r.stderr
    r = coffer.cli("role", "definition", "delete", "--name", "Owner")
    assert r.returncode == 2 and "built-in" in r.stderr
    bad = dict(definition, roleName="bad", dataActions=["Microsoft.Storage/*"])
    r = coffer.cli("role", "definition", "create", "--role-definition", json.dumps(bad))
    assert r.returncode == 2 and "BadParameter" in r.stderr


def test_switching_models_and_rbac_ignores_policies(coffer, credential):
    name = coffer.new_vault()
    c = SecretClient(coffer.vault_url(name), credential)
    c.set_secret("s", "v")
    coffer.cli_json("vault", "update", "--name", name, "--enable-rbac-authorization", "true")
    with pytest.raises(HttpResponseError) as e:
        c.get_secret("s")
    assert e.value.status_code == 403 and e.value.error.innererror["code"] == "ForbiddenByRbac"
    admin = coffer.cli_json("principal", "show", "--id", coffer.creds["client_id"])["object_id"]
    coffer.cli_json("role", "assignment", "create", "--role", "Key Vault Secrets User", "--assignee", admin, "--scope", f"/vaults/{name}/secrets/s")
    assert c.get_secret("s").value == "v"
    coffer.cli_json("vault", "update", "--name", name, "--enable-rbac-authorization", "false")
    assert c.get_secret("s").value == "v"


def test_a_resource_group_contributor_makes_vaults_there_only(coffer, tmp_path):
    """Contributor at `/resourceGroups/G` (Coffer's CLI scope for an ARM resource group) makes and
    manages vaults in G, not elsewhere, and grants no roles; an unknown group is not a scope."""
    w = World(coffer, tmp_path, True)
    token = lambda: coffer.token(resource=coffer.server)  # noqa: E731
    arm = f"{coffer.server}/subscriptions/{coffer.creds['subscription_id']}"
    group = "ward-" + w.tag
    r = requests.put(f"{arm}/resourceGroups/{group}", params={"api-version": "2022-09-01"}, json={"location": "local"},
                     headers={"Authorization": f"Bearer {token()}"})
    assert r.status_code in (200, 201), r.text
    lead = w.user("ward-lead")
    coffer.cli_json("role", "assignment", "create", "--role", "Contributor", "--assignee", lead["object_id"],
                    "--scope", f"/resourceGroups/{group}")
    mine = {"Authorization": f"Bearer {lead['credential'].get_token(coffer.server + '/.default').token}"}
    body = {"location": "local", "properties": {"tenantId": coffer.creds["tenant_id"],
                                                "sku": {"family": "A", "name": "standard"}}}
    put = lambda rg, v: requests.put(f"{arm}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{v}",  # noqa: E731
                                     params={"api-version": "2023-07-01"}, json=body, headers=mine)
    r = put(group, "wv" + w.tag)
    assert r.status_code in (200, 201), r.text
    r = put("default", "dv" + w.tag)
    assert r.status_code == 403 and r.json()["error"]["code"] == "AuthorizationFailed", r.text
    assert "dv" + w.tag not in [v["name"] for v in coffer.cli_json("vault", "list")]
    # Who manages the group reads the grants at it (not the tenant's others).
    r = w.as_user("ward-lead", "role", "assignment", "list", "--scope", f"/resourceGroups/{group}")
    assert r.returncode == 0, r.stderr
    assert [(a["principalId"], a["roleDefinitionName"]) for a in json.loads(r.stdout)] == [(lead["object_id"], "Contributor")]
    # Contributor grants no roles, in the group either.
    r = w.as_user("ward-lead", "role", "assignment", "create", "--role", "Key Vault Secrets User", "--assignee",
                  lead["object_id"], "--scope", f"/resourceGroups/{group}")
    assert r.returncode == 2 and "AuthorizationFailed" in r.stderr
    r = coffer.cli("role", "assignment", "create", "--role", "Reader", "--assignee", lead["object_id"],
                   "--scope", "/resourceGroups/no-such-group-" + w.tag)
    assert r.returncode == 2 and "ResourceGroupNotFound" in r.stderr
