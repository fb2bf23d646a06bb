"""Vault lifecycle and the ARM-shaped management API, driven by azure-mgmt-keyvault and the
coffer CLI: create, update, access policies, firewall, delete, recover, purge (crypto-shredding),
retention through dev-mode time travel."""
import base64
import json
import os
import shutil
import tempfile
import uuid

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.keyvault.secrets import SecretClient

from conftest import CofferServer


def mgmt_clients(server):
    from azure.mgmt.keyvault import KeyVaultManagementClient
    from azure.mgmt.resource.resources import ResourceManagementClient

    kw = dict(base_url=server.server, credential_scopes=[f"{server.server}/.default"])
    sub = server.creds["subscription_id"]
    cred = server.credential()
    return KeyVaultManagementClient(cred, sub, **kw), ResourceManagementClient(cred, sub, **kw)


@pytest.fixture(scope="module")
def private_server():
    """A server of its own: these tests move its clock."""
    tmp = tempfile.mkdtemp(prefix="coffer-lifecycle-")
    server = CofferServer(tmp).start()
    yield server
    server.stop()


def name():
    return "lc" + uuid.uuid4().hex[:10]


@pytest.mark.compat("azure-mgmt-*", "management")
def test_azure_mgmt_keyvault_whole_cycle(coffer):
    from azure.mgmt.keyvault.models import (
        AccessPolicyEntry, Permissions, Sku, VaultAccessPolicyParameters, VaultAccessPolicyProperties,
        VaultCheckNameAvailabilityParameters, VaultCreateOrUpdateParameters, VaultPatchParameters,
        VaultPatchProperties, VaultProperties,
    )

    kv, rm = mgmt_clients(coffer)
    tenant = coffer.creds["tenant_id"]
    rg = "clinic-" + uuid.uuid4().hex[:6]
    assert rm.resource_groups.create_or_update(rg, {"location": "local"}).name == rg
    assert rg in [g.name for g in rm.resource_groups.list()]
    v = name()
    assert kv.vaults.check_name_availability(VaultCheckNameAvailabilityParameters(name=v)).name_available
    assert not kv.vaults.check_name_availability(VaultCheckNameAvailabilityParameters(name="9bad")).name_available
    me = coffer.cli_json("principal", "show", "--id", coffer.creds["client_id"])["object_id"]
    params = VaultCreateOrUpdateParameters(location="local", tags={"ward": "radiology"}, properties=VaultProperties(
        tenant_id=tenant, sku=Sku(family="A", name="standard"), soft_delete_retention_in_days=7,
        access_policies=[AccessPolicyEntry(tenant_id=tenant, object_id=me, permissions=Permissions(secrets=["get", "set", "list"]))]))
    created = kv.vaults.begin_create_or_update(rg, v, params).result()
    assert created.name == v and created.properties.vault_uri == f"https://{v}.vault.localhost:{coffer.port}/"
    assert created.properties.soft_delete_retention_in_days == 7 and created.tags == {"ward": "radiology"}
    assert kv.vaults.get(rg, v).properties.enable_rbac_authorization is False
    updated = kv.vaults.update(rg, v, VaultPatchParameters(tags={"ward": "oncology"}, properties=VaultPatchProperties(enable_purge_protection=True)))
    assert updated.tags == {"ward": "oncology"} and updated.properties.enable_purge_protection is True
    assert v in [x.name for x in kv.vaults.list_by_resource_group(rg)]
    assert v in [x.name for x in kv.vaults.list_by_subscription()]
    # Retention is fixed at creation.
    with pytest.raises(HttpResponseError) as e:
        kv.vaults.update(rg, v, VaultPatchParameters(properties=VaultPatchProperties(soft_delete_retention_in_days=30)))
    assert e.value.status_code == 400
    # Access policies: add merges, replace overwrites, remove takes away.
    other = coffer.cli_json("principal", "create", "--type", "app", "--name", "radiology-bot")["object_id"]
    def policies(kind, perms):
        return VaultAccessPolicyParameters(properties=VaultAccessPolicyProperties(access_policies=[
            AccessPolicyEntry(tenant_id=tenant, object_id=other, permissions=Permissions(secrets=perms))]))
    kv.vaults.update_access_policy(rg, v, "add", policies("add", ["get"]))
    kv.vaults.update_access_policy(rg, v, "add", policies("add", ["list"]))
    entry = [p for p in kv.vaults.get(rg, v).properties.access_policies if p.object_id == other][0]
    assert sorted(entry.permissions.secrets) == ["get", "list"]
    kv.vaults.update_access_policy(rg, v, "replace", policies("replace", ["set"]))
    entry = [p for p in kv.vaults.get(rg, v).properties.access_policies if p.object_id == other][0]
    assert entry.permissions.secrets == ["set"]
    kv.vaults.update_access_policy(rg, v, "remove", policies("remove", ["set"]))
    assert other not in [p.object_id for p in kv.vaults.get(rg, v).properties.access_policies]

    SecretClient(coffer.vault_url(v), coffer.credential()).set_secret("film", "x-ray")
    kv.vaults.delete(rg, v)
    with pytest.raises(ResourceNotFoundError):
        kv.vaults.get(rg, v)
    deleted = kv.vaults.get_deleted(v, "local")
    assert deleted.properties.purge_protection_enabled is True
    assert (deleted.properties.scheduled_purge_date - deleted.properties.deletion_date).days == 7
    assert v in [d.name for d in kv.vaults.list_deleted()]
    # The name stays reserved; the data plane answers as for a vault that does not exist.
    with pytest.raises(HttpResponseError) as e:
        kv.vaults.begin_create_or_update(rg, v, params).result()
    assert e.value.status_code == 409 and e.value.error.code == "VaultAlreadyExists"
    with pytest.raises(HttpResponseError) as e:
        SecretClient(coffer.vault_url(v), coffer.credential()).get_secret("film")
    assert e.value.status_code == 404
    # Purge protection: no purge before the retention ends.
    with pytest.raises(HttpResponseError) as e:
        kv.vaults.begin_purge_deleted(v, "local").result()
    assert e.value.status_code == 403 and "purge protection" in e.value.message
    # Recover brings everything back (createMode recover).
    recover = VaultCreateOrUpdateParameters(location="local", properties=VaultProperties(
        tenant_id=tenant, sku=Sku(family="A", name="standard"), create_mode="recover"))
    assert kv.vaults.begin_create_or_update(rg, v, recover).result().name == v
    assert SecretClient(coffer.vault_url(v), coffer.credential()).get_secret("film").value == "x-ray"
    # A vault without purge protection is purged for good.
    v2 = name()
    kv.vaults.begin_create_or_update(rg, v2, params).result()
    kv.vaults.delete(rg, v2)
    kv.vaults.begin_purge_deleted(v2, "local").result()
    with pytest.raises(ResourceNotFoundError):
        kv.vaults.get_deleted(v2, "local")
    assert kv.vaults.check_name_availability(VaultCheckNameAvailabilityParameters(name=v2)).name_available
    with pytest.raises(ResourceNotFoundError):
        kv.vaults.begin_create_or_update("no-such-group", name(), params).result()


@pytest.mark.compat("azure-mgmt-*", "authorization")
def test_azure_mgmt_authorization_role_assignments(coffer):
    """azure-mgmt-authorization, unmodified: role definitions by name, an assignment created at
    a vault, read back, listed for the scope and deleted; it grants data access meanwhile."""
    import uuid

    from azure.core.exceptions import HttpResponseError
    from azure.keyvault.secrets import SecretClient
    from azure.mgmt.authorization import AuthorizationManagementClient
    from azure.mgmt.authorization.models import RoleAssignmentCreateParameters

    kv, _ = mgmt_clients(coffer)
    sub = coffer.creds["subscription_id"]
    auth = AuthorizationManagementClient(coffer.credential(), sub, base_url=coffer.server,
                                         credential_scopes=[f"{coffer.server}/.default"])
    name = "mg" + uuid.uuid4().hex[:10]
    vault = kv.vaults.begin_create_or_update("default", name, {
        "location": "local", "properties": {"tenantId": coffer.creds["tenant_id"], "sku": {"family": "A", "name": "standard"},
                                            "enableRbacAuthorization": True}}).result()
    roles = list(auth.role_definitions.list(vault.id, filter="roleName eq 'Key Vault Secrets Officer'"))
    assert [r.role_name for r in roles] == ["Key Vault Secrets Officer"]
    assert auth.role_definitions.get(vault.id, roles[0].name).role_name == "Key Vault Secrets Officer"
    app = coffer.cli_json("principal", "show", "--id", coffer.creds["client_id"])["object_id"]
    secrets = SecretClient(coffer.vault_url(name), coffer.credential())
    with pytest.raises(HttpResponseError):
        secrets.set_secret("s", "v")
    made = auth.role_assignments.create(vault.id, str(uuid.uuid4()), RoleAssignmentCreateParameters(
        role_definition_id=roles[0].id, principal_id=app, principal_type="ServicePrincipal"))
    assert made.principal_id == app and made.scope == vault.id and made.role_definition_id == roles[0].id
    assert secrets.set_secret("s", "v").value == "v"
    assert auth.role_assignments.get(vault.id, made.name).id == made.id
    assert made.id in [a.id for a in auth.role_assignments.list_for_scope(vault.id, filter="atScope()")]
    auth.role_assignments.delete(vault.id, made.name)
    assert made.id not in [a.id for a in auth.role_assignments.list_for_scope(vault.id)]
    with pytest.raises(HttpResponseError):
        secrets.get_secret("s")


def test_cli_lifecycle_and_role_assignments_are_not_recovered(coffer):
    v = coffer.new_vault("--retention-days", "7")
    admin = coffer.cli_json("principal", "show", "--id", coffer.creds["client_id"])["object_id"]
    coffer.cli_json("role", "assignment", "create", "--role", "Key Vault Reader", "--assignee", admin, "--scope", f"/vaults/{v}")
    assert coffer.cli("vault", "delete", "--name", v).returncode == 0
    assert v in [d["name"] for d in coffer.cli_json("vault", "list-deleted")]
    shown = coffer.cli_json("vault", "show-deleted", "--name", v)
    assert shown["properties"]["scheduledPurgeDate"] > shown["properties"]["deletionDate"]
    assert coffer.cli_json("vault", "check-name", "--name", v)["reason"] == "AlreadyExists"
    r = coffer.cli("vault", "create", "--name", v)
    assert r.returncode == 2
    assert coffer.cli_json("vault", "recover", "--name", v)["name"] == v
    # Access policies come back with the vault; role assignments do not (as in Azure).
    assert coffer.cli_json("vault", "show", "--name", v)["properties"]["accessPolicies"]
    assert coffer.cli_json("role", "assignment", "list", "--scope", f"/vaults/{v}") == []
    coffer.cli("vault", "delete", "--name", v)
    assert coffer.cli("vault", "purge", "--name", v).returncode == 0
    assert coffer.cli_json("vault", "check-name", "--name", v)["nameAvailable"] is True
    r = coffer.cli("vault", "show-deleted", "--name", v)
    assert r.returncode == 2 and "DeletedVaultNotFound" in r.stderr


def test_firewall(coffer, credential):
    v = coffer.new_vault()
    c = SecretClient(coffer.vault_url(v), credential)
    c.set_secret("s", "v")
    acls = coffer.cli_json("vault", "network-rule", "add", "--name", v, "--ip-address", "10.0.0.0/8")
    assert acls["ipRules"] == [{"value": "10.0.0.0/8"}]
    assert c.get_secret("s").value == "v", "rules do nothing while the default action is Allow"
    coffer.cli_json("vault", "update", "--name", v, "--default-action", "Deny")
    with pytest.raises(HttpResponseError) as e:
        c.get_secret("s")
    assert e.value.status_code == 403 and e.value.error.innererror["code"] == "ForbiddenByFirewall"
    assert "127.0.0.1" in e.value.message
    coffer.cli_json("vault", "network-rule", "add", "--name", v, "--ip-address", "127.0.0.1")
    assert c.get_secret("s").value == "v"
    assert len(coffer.cli_json("vault", "network-rule", "list", "--name", v)["ipRules"]) == 2
    coffer.cli_json("vault", "network-rule", "remove", "--name", v, "--ip-address", "127.0.0.1")
    with pytest.raises(HttpResponseError):
        c.get_secret("s")
    # Management is not behind the vault's firewall.
    assert coffer.cli_json("vault", "show", "--name", v)["properties"]["networkAcls"]["defaultAction"] == "Deny"
    r = coffer.cli("vault", "network-rule", "add", "--name", v, "--ip-address", "999.1.1.1")
    assert r.returncode == 2 and "BadParameter" in r.stderr


def test_retention_is_enforced_by_the_purge_job(private_server):
    s = private_server
    v = s.new_vault("--retention-days", "7")
    protected = s.new_vault("--retention-days", "7", "--enable-purge-protection", "true")
    c = SecretClient(s.vault_url(v), s.credential(), connection_verify=s.creds["ca_file"])
    c.set_secret("old", "1")
    c.begin_delete_secret("old").wait()
    c.set_secret("kept", "2")
    s.cli("vault", "delete", "--name", protected)
    r = s.cli("vault", "purge", "--name", protected)
    assert r.returncode == 2 and "purge protection" in r.stderr
    moved = s.cli_json("dev", "advance-time", "--days", "6")
    assert moved["purged"] == {"objects": 0, "vaults": 0}
    # Tokens issued before the jump have expired on the server's clock: sign in again.
    c = SecretClient(s.vault_url(v), s.credential(), connection_verify=s.creds["ca_file"])
    assert c.get_deleted_secret("old").name == "old"
    assert protected in [d["name"] for d in s.cli_json("vault", "list-deleted")]
    moved = s.cli_json("dev", "advance-time", "--days", "1", "--seconds", "60")
    assert moved["purged"] == {"objects": 1, "vaults": 1}
    c = SecretClient(s.vault_url(v), s.credential(), connection_verify=s.creds["ca_file"])
    with pytest.raises(ResourceNotFoundError):
        c.get_deleted_secret("old")
    assert c.set_secret("old", "again").value == "again", "the name is free once purged"
    assert c.get_secret("kept").value == "2"
    assert protected not in [d["name"] for d in s.cli_json("vault", "list-deleted")]
    assert s.cli_json("vault", "check-name", "--name", protected)["nameAvailable"] is True
    # Only tenant administrators may move the clock.
    app = s.cli_json("principal", "create", "--type", "app", "--name", "not-an-admin")
    secret = s.cli_json("principal", "credential", "add", "--id", app["object_id"])["client_secret"]
    env = {**s.env(), "COFFER_CLIENT_ID": app["client_id"], "COFFER_CLIENT_SECRET": secret}
    import subprocess
    from conftest import BIN
    r = subprocess.run([BIN, "dev", "advance-time", "--days", "1"], env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "AuthorizationFailed" in r.stderr


def test_key_rotation_policy_is_carried_out_by_the_job(private_server):
    s = private_server
    v = s.new_vault()
    k = ["--vault-name", v, "--name", "auto"]
    first = s.cli_json("key", "create", *k, "--kty", "EC")
    s.cli_json("key", "rotation-policy", "update", *k, "--value", json.dumps({
        "lifetimeActions": [{"trigger": {"timeAfterCreate": "P30D"}, "action": {"type": "Rotate"}}],
        "attributes": {"expiryTime": "P90D"}}))
    assert s.cli_json("dev", "advance-time", "--days", "29")["rotated_keys"] == 0
    moved = s.cli_json("dev", "advance-time", "--days", "2")
    assert moved["rotated_keys"] == 1
    versions = s.cli_json("key", "list-versions", *k)
    assert len(versions) == 2
    latest = s.cli_json("key", "show", *k)
    assert latest["key"]["kid"] != first["key"]["kid"]
    assert latest["attributes"]["exp"] == latest["attributes"]["created"] + 90 * 86400
    assert s.cli_json("dev", "advance-time", "--days", "1")["rotated_keys"] == 0, "the new version is not due yet"
    # The old version still verifies what it signed.
    digest = base64.b64encode(bytes(32)).decode()
    sig = s.cli_json("key", "sign", *k, "--version", first["key"]["kid"].rsplit("/", 1)[1], "--algorithm", "ES256", "--value", digest)
    assert sig["kid"] == first["key"]["kid"]


def test_certificate_auto_renew_is_carried_out_by_the_job(private_server):
    from azure.keyvault.certificates import (
        CertificateClient, CertificateContact, CertificatePolicy, CertificatePolicyAction, LifetimeAction)
    from cryptography import x509

    s = private_server
    v = s.new_vault()
    certs = CertificateClient(s.vault_url(v), s.credential(), connection_verify=s.creds["ca_file"])
    policy = CertificatePolicy(
        issuer_name="Self", subject="CN=lab.hospital.example", validity_in_months=1,
        lifetime_actions=[LifetimeAction(CertificatePolicyAction.auto_renew, days_before_expiry=10)])
    first = certs.begin_create_certificate("lab", policy).result()
    # A certificate whose policy only e-mails contacts is never renewed.
    notify = CertificatePolicy(
        issuer_name="Self", subject="CN=notify.example", validity_in_months=1,
        lifetime_actions=[LifetimeAction(CertificatePolicyAction.email_contacts, days_before_expiry=10)])
    certs.begin_create_certificate("notify", notify).result()
    certs.set_contacts([CertificateContact(email="pki@hospital.example")])
    validity = first.properties.expires_on - first.properties.not_before
    assert 27 <= validity.days <= 31
    days_until_due = validity.days - 10
    assert s.cli_json("dev", "advance-time", "--days", str(days_until_due - 2))["renewed_certificates"] == 0
    moved = s.cli_json("dev", "advance-time", "--days", "3")
    assert moved["renewed_certificates"] == 1
    # Tokens issued before the jump have expired on the server's clock: sign in again.
    certs = CertificateClient(s.vault_url(v), s.credential(), connection_verify=s.creds["ca_file"])
    assert len(list(certs.list_properties_of_certificate_versions("lab"))) == 2
    assert len(list(certs.list_properties_of_certificate_versions("notify"))) == 1
    renewed = certs.get_certificate("lab")
    assert renewed.properties.version != first.properties.version
    assert renewed.properties.x509_thumbprint != first.properties.x509_thumbprint
    assert renewed.properties.not_before > first.properties.not_before
    c = x509.load_der_x509_certificate(bytes(renewed.cer))
    assert c.subject.rfc4514_string() == "CN=lab.hospital.example"
    assert s.cli_json("dev", "advance-time", "--days", "1")["renewed_certificates"] == 0, "the new version is not due yet"
    # The e-mail action is an event (in the audit log) naming the contacts, raised once per version.
    r = s.cli("audit", "query", "--vault", v, "--object", "notify", "--operation", "CertificateNearExpiry")
    events = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    # (The 30-day near-expiry scan raises its own CertificateNearExpiry too; this is the action's.)
    events = [e for e in events if "EmailContacts" in e["resultDescription"]]
    assert len(events) == 1 and "pki@hospital.example" in events[0]["resultDescription"], events
    # The renewal is recorded as the system's action, with the new version's event.
    r = s.cli("audit", "query", "--vault", v, "--object", "lab", "--result", "success", "--operation", "CertificateRenew")
    renewals = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert [x["properties"]["version"] for x in renewals] == [renewed.properties.version]
    assert renewals[0]["identity"]["claim"]["kind"] == "system"


def test_purge_is_crypto_shredding():
    tmp = tempfile.mkdtemp(prefix="coffer-shred-")
    s = CofferServer(tmp).start()
    try:
        v = s.new_vault()
        SecretClient(s.vault_url(v), s.credential(), connection_verify=s.creds["ca_file"]).set_secret("ssn", "123-45-6789")
        s.cli("vault", "delete", "--name", v)
        s.stop()
        copy = tempfile.mkdtemp(prefix="coffer-db-copy-")
        for f in os.listdir(tmp):
            if f.startswith("coffer.db"):
                shutil.copy(os.path.join(tmp, f), copy)
        keys_before = set(os.listdir(os.path.join(tmp, "keys")))
        s.start()
        assert s.cli("vault", "purge", "--name", v).returncode == 0
        s.stop()
        assert len(keys_before - set(os.listdir(os.path.join(tmp, "keys")))) == 1, "the vault's key is destroyed"
        # Put the pre-purge database back: the vault's rows are there, its key is not.
        for f in os.listdir(tmp):
            if f.startswith("coffer.db"):
                os.remove(os.path.join(tmp, f))
        for f in os.listdir(copy):
            shutil.copy(os.path.join(copy, f), tmp)
        s.start()
        assert s.cli_json("vault", "recover", "--name", v)["name"] == v
        r = requests.get(f"{s.vault_url(v)}/secrets/ssn?api-version=7.6", headers={"Authorization": f"Bearer {s.token()}"},
                         verify=s.creds["ca_file"])
        assert r.status_code == 500 and "123-45-6789" not in r.text
        assert r.json()["error"]["code"] == "InternalError"
    finally:
        s.stop()
