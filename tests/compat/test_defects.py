"""Defects found while reading the code, each reproduced through the real server: `explain`
agreeing with enforcement for a disabled principal, fail-closed token revocation and refresh,
one body limit in Azure's shape on every surface, and portal names that cannot change the
data-plane route."""
import json
import os
import tempfile
import time
import uuid

import requests

from conftest import CofferServer, swap_link


def uid(prefix):
    return prefix + uuid.uuid4().hex[:10]



def test_explain_denies_a_disabled_principal_as_enforcement_does(coffer):
    s = coffer
    v = s.new_vault()
    name = uid("porter")
    oid = s.new_user(name, "porter-password-1")
    s.cli_json("vault", "set-policy", "--name", v, "--object-id", oid, "--secret-permissions", "get")
    explain = lambda: s.cli_json("access", "explain", "--assignee", oid, "--vault", v, "--secret", "x",
                                 "--action", "getSecret")
    assert explain()["decision"] == "allow"
    s.cli_json("principal", "disable", "--id", oid)
    e = explain()
    assert e["decision"] == "deny", e
    assert any("disabled" in r for r in e["reasons"]), e
    who = s.cli_json("access", "who-can", "--vault", v, "--secret", "x", "--action", "getSecret")
    listed = who if isinstance(who, list) else who.get("principals", [])
    assert oid not in [p["object_id"] for p in listed]
    r = requests.post(f"{s.server}/{s.creds['tenant_id']}/oauth2/v2.0/token",
                      data={"grant_type": "password", "client_id": "coffer-cli", "username": name,
                            "password": "porter-password-1", "scope": f"https://vault.localhost:{s.port}/.default"},
                      verify=s.creds["ca_file"], timeout=60)
    assert r.status_code == 400, "and enforcement refuses it"



def test_token_revocation_and_refresh_fail_closed(tmp_path):
    base = tempfile.mkdtemp(prefix="coffer-revoke-")
    real, link = os.path.join(base, "audit.log"), os.path.join(base, "current.log")
    os.symlink(real, link)
    s = CofferServer(tmp_path, ["--audit-file", link]).start()
    try:
        name = uid("nurse")
        s.new_user(name, "nurse-password-1")
        url = f"{s.server}/{s.creds['tenant_id']}/oauth2/v2.0/token"
        scope = f"https://vault.localhost:{s.port}/.default"
        post = lambda **form: requests.post(url, data=dict(form, scope=scope), verify=s.creds["ca_file"], timeout=60)
        rt = post(grant_type="password", client_id="coffer-cli", username=name, password="nurse-password-1").json()[
            "refresh_token"]

        swap_link(link, "/dev/full")
        revoke = requests.post(f"{s.server}/{s.creds['tenant_id']}/oauth2/v2.0/revoke", data={"token": rt},
                               verify=s.creds["ca_file"], timeout=60)
        assert revoke.status_code == 503, revoke.text
        refused = post(grant_type="refresh_token", client_id="coffer-cli", refresh_token=rt)
        assert refused.status_code == 503, "a refresh stores a token: refused before it does"
        refused = post(grant_type="password", client_id="coffer-cli", username=name, password="nurse-password-1")
        assert refused.status_code == 503
        swap_link(link, real)
        time.sleep(0.5)

        # Neither the revocation nor the refused refresh happened: the token still works, once.
        ok = post(grant_type="refresh_token", client_id="coffer-cli", refresh_token=rt)
        assert ok.status_code == 200, ok.text
    finally:
        s.stop()


def test_one_body_limit_in_azures_shape_on_the_control_surface(coffer):
    s = coffer
    token = s.token(s.server)
    v = uid("big")
    url = (f"{s.server}/subscriptions/{s.creds['subscription_id']}/resourceGroups/default/providers/"
           f"Microsoft.KeyVault/vaults/{v}?api-version=2023-07-01")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    # 3 MB: above axum's 2 MB default, below the 4 MiB every surface accepts.
    body = json.dumps({"location": "local", "properties": {}, "padding": "x" * (3 << 20)})
    r = requests.put(url, data=body, headers=headers, verify=s.creds["ca_file"], timeout=60)
    assert r.status_code == 200, r.text[:300]
    body = json.dumps({"location": "local", "properties": {}, "padding": "x" * (5 << 20)})
    r = requests.put(url, data=body, headers=headers, verify=s.creds["ca_file"], timeout=60)
    assert r.status_code == 413, r.text[:300]
    assert r.json()["error"]["code"] == "RequestBodyTooLarge"


def test_a_name_from_the_portal_cannot_change_the_data_plane_route(coffer):
    s = coffer
    v = s.new_vault()
    bundle = requests.put(f"{s.vault_url(v)}/secrets/db?api-version=7.5", json={"value": "v1"},
                          headers={"Authorization": f"Bearer {s.token()}"}, verify=s.creds["ca_file"], timeout=60).json()
    version = bundle["id"].rsplit("/", 1)[1]
    name = uid("reader")
    oid = s.new_user(name, "reader-password-1")
    s.cli_json("vault", "set-policy", "--name", v, "--object-id", oid, "--secret-permissions", "get", "list")
    web = s.portal_session(name, "reader-password-1")
    # "db/VERSION" as one name: it is refused as a name, not served as version VERSION of "db".
    r = web.get(f"{s.server}/portal/vaults/{v}/secrets/db%2F{version}", timeout=10)
    assert r.status_code == 400, "before, the data plane served version VERSION of db here (200)"
    assert "not a valid" in r.text or "invalid" in r.text.lower(), r.text[:500]
    assert web.get(f"{s.server}/portal/vaults/{v}/secrets/db", timeout=10).status_code == 200, "the real name works"


def test_a_refused_principal_update_changes_nothing(coffer):
    s = coffer
    app = s.cli_json("principal", "create", "--type", "app", "--name", uid("app"))
    url = f"{s.server}/directory/principals/{app['object_id']}?api-version=2023-07-01"
    headers = {"Authorization": f"Bearer {s.token(s.server)}"}
    r = requests.patch(url, json={"enabled": False, "password": "long-enough-password"}, headers=headers,
                       verify=s.creds["ca_file"], timeout=30)
    assert r.status_code == 400 and "Only users have passwords" in r.json()["error"]["message"], r.text
    shown = requests.get(url, headers=headers, verify=s.creds["ca_file"], timeout=30).json()
    assert "enabled" in shown, shown
    assert shown["enabled"] is True, "the refused update did not disable it halfway"


def test_one_broken_key_does_not_stop_the_rotation_of_the_others(tmp_path):
    import sqlite3

    s = CofferServer(tmp_path).start()
    try:
        v = s.new_vault()
        policy = json.dumps({"lifetimeActions": [{"trigger": {"timeAfterCreate": "P30D"}, "action": {"type": "Rotate"}}],
                             "attributes": {"expiryTime": "P90D"}})
        for name in ["a-broken", "b-good"]:
            s.cli_json("key", "create", "--vault-name", v, "--name", name, "--kty", "EC")
            s.cli_json("key", "rotation-policy", "update", "--vault-name", v, "--name", name, "--value", policy)
        # The first key's stored policy is damaged (as by a bad migration or a bad row).
        db = sqlite3.connect(os.path.join(tmp_path, "coffer.db"))
        db.execute("UPDATE objects SET policy = 'not json' WHERE kind = 'key' AND name_key = 'a-broken'")
        db.commit()
        db.close()
        moved = s.cli_json("dev", "advance-time", "--days", "31")
        assert moved["rotated_keys"] == 1, moved
        assert len(s.cli_json("key", "list-versions", "--vault-name", v, "--name", "b-good")) == 2
    finally:
        s.stop()


def test_a_purged_certificate_leaves_no_job_markers(tmp_path):
    import sqlite3

    s = CofferServer(tmp_path).start()
    try:
        v = s.new_vault()
        token = s.token()
        url = f"{s.vault_url(v)}/certificates/notice"
        policy = {"policy": {"key_props": {"kty": "EC", "crv": "P-256"}, "issuer": {"name": "Self"},
                             "x509_props": {"subject": "CN=notice", "validity_months": 12},
                             "lifetime_actions": [{"trigger": {"lifetime_percentage": 1},
                                                   "action": {"action_type": "EmailContacts"}}]}}
        h = {"Authorization": f"Bearer {token}"}
        ca = s.creds["ca_file"]
        assert requests.post(f"{url}/create?api-version=7.5", json=policy, headers=h, verify=ca, timeout=60).status_code == 202
        s.cli_json("dev", "advance-time", "--days", "5")

        def markers():
            db = sqlite3.connect(os.path.join(tmp_path, "coffer.db"))
            try:
                return [k for (k,) in db.execute("SELECT key FROM meta WHERE key LIKE 'certificate-%ed/%'")]
            finally:
                db.close()

        assert markers(), "the EmailContacts action was carried out (and remembered)"
        token = s.token()  # the clock moved: a fresh token
        h = {"Authorization": f"Bearer {token}"}
        assert requests.delete(f"{url}?api-version=7.5", headers=h, verify=ca, timeout=60).status_code == 200
        r = requests.delete(f"{s.vault_url(v)}/deletedcertificates/notice?api-version=7.5", headers=h, verify=ca,
                            timeout=60)
        assert r.status_code == 204, r.text
        assert markers() == [], "the markers went with the certificate"
    finally:
        s.stop()
