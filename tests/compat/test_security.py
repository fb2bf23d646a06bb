"""Attacks on a running server, each with only the rights its first lines grant: key extraction
through backup and certificate policies, permission-model switches, throttle races, compound
identity, verb overrides, slow clients, stale portal sessions, replayed assertions and refresh
tokens, and the smaller leaks. Each test is the attack; it passes when the attack fails."""
import base64
import concurrent.futures
import hashlib
import json
import os
import socket
import ssl
import stat
import tempfile
import time
import uuid

import pytest
import requests

from conftest import CofferServer, self_signed, swap_link

ARM = "2023-07-01"
DATA = "7.5"


def uid(prefix):
    return prefix + uuid.uuid4().hex[:10]


def token_for(s, form, resource):
    form = dict(form, scope=f"{resource}/.default")
    r = requests.post(f"{s.server}/{s.creds['tenant_id']}/oauth2/v2.0/token", data=form, verify=s.creds["ca_file"],
                      timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def data_resource(s):
    return f"https://vault.localhost:{s.port}"


def app(s, name=None):
    """A new application with a client secret: (object id, client id, secret)."""
    a = s.cli_json("principal", "create", "--type", "app", "--name", name or uid("app"))
    secret = s.cli_json("principal", "credential", "add", "--id", a["object_id"])["client_secret"]
    return a["object_id"], a["client_id"], secret


def app_token(s, client_id, secret, resource):
    return token_for(s, {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}, resource)



def dp(s, method, vault, path, token, body=None, headers=None, query=""):
    h = {"Authorization": f"Bearer {token}", **(headers or {})}
    return requests.request(method, f"{s.vault_url(vault)}{path}?api-version={DATA}{query}", json=body, headers=h,
                            verify=s.creds["ca_file"], timeout=60)


def arm(s, method, path, token, body=None):
    return requests.request(method, f"{s.server}{path}?api-version={ARM}", json=body,
                            headers={"Authorization": f"Bearer {token}"}, verify=s.creds["ca_file"], timeout=60)


def vault_path(s, vault):
    sub = s.creds["subscription_id"]
    return f"/subscriptions/{sub}/resourceGroups/default/providers/Microsoft.KeyVault/vaults/{vault}"


def audit(s, *args):
    r = s.cli("audit", "query", *args)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def pfx_private_key(secret_value):
    from cryptography.hazmat.primitives.serialization import pkcs12

    key, cert, more = pkcs12.load_key_and_certificates(base64.b64decode(secret_value), b"")
    assert cert is not None or more, "the PFX holds the certificate"
    return key


def cert_policy(exportable=None, reuse_key=None):
    key_props = {"kty": "RSA", "key_size": 2048}
    if exportable is not None:
        key_props["exportable"] = exportable
    if reuse_key is not None:
        key_props["reuse_key"] = reuse_key
    return {"policy": {"key_props": key_props, "secret_props": {"contentType": "application/x-pkcs12"},
                       "x509_props": {"subject": "CN=victim", "validity_months": 12}, "issuer": {"name": "Self"}}}


def admin_token(s):
    return s.token()


# ---- High 1: a non-exportable certificate key stays in the vault ------------------------------

def test_a_non_exportable_certificate_key_cannot_be_extracted(coffer):
    s = coffer
    a, b = s.new_vault(), s.new_vault()
    admin = admin_token(s)
    assert dp(s, "POST", a, "/certificates/victim/create", admin, cert_policy(exportable=False)).status_code == 202
    assert pfx_private_key(dp(s, "GET", a, "/secrets/victim", admin).json()["value"]) is None

    thief_oid, thief_cid, thief_secret = app(s)
    s.cli_json("vault", "set-policy", "--name", a, "--object-id", thief_oid, "--key-permissions", "backup")
    s.cli_json("vault", "set-policy", "--name", b, "--object-id", thief_oid, "--secret-permissions", "all",
               "--key-permissions", "all", "--certificate-permissions", "all")
    thief = app_token(s, thief_cid, thief_secret, data_resource(s))

    # A certificate's key (or secret) is backed up only with its certificate, as in Azure.
    r = dp(s, "POST", a, "/keys/victim/backup", thief)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "Forbidden" and "certificate" in r.json()["error"]["message"]
    r = dp(s, "POST", a, "/secrets/victim/backup", admin)
    assert r.status_code == 403 and "certificate" in r.json()["error"]["message"], r.text

    # The certificate restored elsewhere keeps its key non-exportable: no policy widens it.
    blob = dp(s, "POST", a, "/certificates/victim/backup", admin).json()["value"]
    assert dp(s, "POST", b, "/certificates/restore", admin, {"value": blob}).status_code == 200
    r = dp(s, "POST", b, "/certificates/victim/create", thief, cert_policy(exportable=True, reuse_key=True))
    assert r.status_code == 400, r.text
    assert "not exportable" in r.json()["error"]["message"]
    assert dp(s, "POST", b, "/certificates/victim/create", thief, cert_policy(reuse_key=True)).status_code == 202
    assert pfx_private_key(dp(s, "GET", b, "/secrets/victim", thief).json()["value"]) is None
    policy = dp(s, "GET", b, "/certificates/victim/policy", thief).json()
    assert policy["key_props"]["exportable"] is False

    # The same in one vault, and through a policy update followed by a re-issue.
    r = dp(s, "POST", a, "/certificates/victim/create", admin, cert_policy(exportable=True, reuse_key=True))
    assert r.status_code == 400, r.text
    r = dp(s, "PATCH", a, "/certificates/victim/policy", admin, {"key_props": {"exportable": True, "reuse_key": True}})
    assert r.status_code == 200, r.text
    assert dp(s, "POST", a, "/certificates/victim/create", admin, {}).status_code == 202
    assert pfx_private_key(dp(s, "GET", a, "/secrets/victim", admin).json()["value"]) is None

    # A new key may be exportable: that is the policy's to decide, for a key made for it.
    assert dp(s, "POST", a, "/certificates/victim/create", admin,
              cert_policy(exportable=True, reuse_key=False)).status_code == 202
    assert pfx_private_key(dp(s, "GET", a, "/secrets/victim", admin).json()["value"]) is not None


# ---- High 2: a management role cannot switch the permission model ------------------------------

@pytest.mark.parametrize("role", ["Contributor", "Key Vault Contributor"])
def test_a_contributor_cannot_switch_an_rbac_vault_to_access_policies(coffer, role):
    s = coffer
    v = s.new_vault()
    admin = admin_token(s)
    # The value exists (written while the creator's access policy applied), then the vault
    # goes to RBAC, where the contributor has no data role.
    assert dp(s, "PUT", v, "/secrets/patient-db", admin, {"value": "s3cr3t"}).status_code == 200
    s.cli_json("vault", "update", "--name", v, "--enable-rbac-authorization", "true")
    oid, cid, secret = app(s)
    s.cli_json("role", "assignment", "create", "--role", role, "--assignee", oid, "--scope", f"/vaults/{v}")
    mgmt = app_token(s, cid, secret, s.server)
    policy = {"tenantId": s.creds["tenant_id"], "objectId": oid, "permissions": {"secrets": ["all"]}}

    r = arm(s, "PATCH", vault_path(s, v), mgmt,
            {"properties": {"enableRbacAuthorization": False, "accessPolicies": [policy]}})
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "AuthorizationFailed"
    assert "roleAssignments/write" in r.json()["error"]["message"]
    r = arm(s, "PUT", vault_path(s, v), mgmt,
            {"location": "local", "properties": {"enableRbacAuthorization": False, "accessPolicies": [policy]}})
    assert r.status_code == 403, r.text
    # Dormant grants in an RBAC vault would take effect at a later switch: refused as well.
    r = arm(s, "PUT", vault_path(s, v) + "/accessPolicies/add", mgmt, {"properties": {"accessPolicies": [policy]}})
    assert r.status_code == 403, r.text
    shown = arm(s, "GET", vault_path(s, v), mgmt).json()["properties"]
    assert shown["enableRbacAuthorization"] is True and not any(p["objectId"] == oid for p in shown["accessPolicies"])
    data = app_token(s, cid, secret, data_resource(s))
    assert dp(s, "GET", v, "/secrets/patient-db", data).status_code == 403

    # What the role is for still works; the Owner may switch the model.
    r = arm(s, "PATCH", vault_path(s, v), mgmt, {"tags": {"ward": "cardiology"}})
    assert r.status_code == 200 and r.json()["tags"] == {"ward": "cardiology"}, r.text
    owner = s.token(s.server)
    r = arm(s, "PATCH", vault_path(s, v), owner, {"properties": {"enableRbacAuthorization": False}})
    assert r.status_code == 200 and r.json()["properties"]["enableRbacAuthorization"] is False, r.text


# ---- Medium 3: the sign-in throttle holds under concurrency, and hashing is bounded ---------------

def test_concurrent_wrong_passwords_are_throttled(coffer):
    s = coffer
    name = uid("nurse")
    s.new_user(name, "right-password-1")
    form = {"grant_type": "password", "client_id": "coffer-cli", "username": name, "password": "wrong-password",
            "scope": f"{data_resource(s)}/.default"}
    url = f"{s.server}/{s.creds['tenant_id']}/oauth2/v2.0/token"
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(lambda _: requests.post(url, data=form, verify=s.creds["ca_file"], timeout=120).status_code,
                              range(12)))
    assert codes.count(400) <= 5, codes
    assert codes.count(429) >= 7, codes


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def test_a_burst_of_sign_ins_does_not_grow_memory(tmp_path):
    s = CofferServer(tmp_path).start()
    try:
        url = f"{s.server}/{s.creds['tenant_id']}/oauth2/v2.0/token"
        scope = f"{data_resource(s)}/.default"
        # Warm up one password check, then measure a burst of 24 at once for unknown names.
        requests.post(url, data={"grant_type": "password", "username": "warm-up", "password": "x" * 12,
                                 "scope": scope}, verify=s.creds["ca_file"], timeout=120)
        base = rss_mib(s.proc.pid)
        peak = [base]
        with concurrent.futures.ThreadPoolExecutor(24) as pool:
            futures = [pool.submit(requests.post, url,
                                   data={"grant_type": "password", "username": uid("nobody"), "password": "x" * 12,
                                         "scope": scope}, verify=s.creds["ca_file"], timeout=120)
                       for _ in range(24)]
            while not all(f.done() for f in futures):
                peak.append(rss_mib(s.proc.pid))
                time.sleep(0.02)
            codes = [f.result().status_code for f in futures]
        assert set(codes) <= {400, 429}, codes
        # Before the bound, 24 concurrent argon2id checks (19 MiB each) took some 440 MiB.
        assert max(peak) - base < 150, (base, max(peak))
        assert rss_mib(s.proc.pid) - base < 150
    finally:
        s.stop()


# ---- Medium 4: compound identity --------------------------------------------------------------

def test_a_compound_identity_policy_needs_the_application(coffer):
    s = coffer
    v = s.new_vault()
    admin = admin_token(s)
    assert dp(s, "PUT", v, "/secrets/billing-db", admin, {"value": "ledger"}).status_code == 200
    name = uid("clerk")
    oid = s.new_user(name, "clerk-password-1")
    _, billing_cid, _ = app(s, "billing")
    policy = {"tenantId": s.creds["tenant_id"], "objectId": oid, "applicationId": billing_cid,
              "permissions": {"secrets": ["get"]}}
    r = arm(s, "PUT", vault_path(s, v) + "/accessPolicies/add", s.token(s.server),
            {"properties": {"accessPolicies": [policy]}})
    assert r.status_code == 200, r.text

    def as_user(client_id):
        return token_for(s, {"grant_type": "password", "client_id": client_id, "username": name,
                             "password": "clerk-password-1"}, data_resource(s))

    alone = as_user("coffer-cli")
    r = dp(s, "GET", v, "/secrets/billing-db", alone)
    assert r.status_code == 403, r.text
    through = as_user(billing_cid)
    r = dp(s, "GET", v, "/secrets/billing-db", through)
    assert r.status_code == 200 and r.json()["value"] == "ledger", r.text


# ---- Medium 5: X-HTTP-METHOD is classified once -----------------------------------------------


def test_a_verb_override_is_named_recorded_and_fails_closed(tmp_path):
    base = tempfile.mkdtemp(prefix="coffer-override-")
    real, link = os.path.join(base, "audit.log"), os.path.join(base, "current.log")
    os.symlink(real, link)
    s = CofferServer(tmp_path, ["--audit-file", link]).start()
    try:
        v = s.new_vault()
        token = s.token()
        assert dp(s, "PUT", v, "/secrets/gone", token, {"value": "bye"}).status_code == 200
        marker = uid("override")
        r = dp(s, "POST", v, "/secrets/gone", token, headers={"X-HTTP-METHOD": "DELETE", "x-ms-client-request-id": marker})
        assert r.status_code == 200 and r.json()["recoveryId"], r.text
        deletes = [d for d in audit(s, "--operation", "SecretDelete") if d["correlationId"] == marker]
        # A change: recorded as started (durably, before it ran) and then as done.
        assert sorted(d["resultType"] for d in deletes) == ["Started", "Success"], deletes
        assert not audit(s, "--operation", "Unknown")

        key = dp(s, "POST", v, "/keys/k/create", token, {"kty": "EC"}).json()
        version = key["key"]["kid"].rsplit("/", 1)[1]
        swap_link(link, "/dev/full")  # the audit file cannot be written: changes must not happen
        r = dp(s, "POST", v, f"/keys/k/{version}", token, {"attributes": {"enabled": False}},
               headers={"X-HTTP-METHOD": "PATCH"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "AuditLogUnavailable", r.text
        swap_link(link, real)
        time.sleep(0.5)
        shown = dp(s, "GET", v, f"/keys/k/{version}", token).json()
        assert shown["attributes"]["enabled"] is True, "the refused change did not happen, then or later"
        assert audit(s, "--operation", "KeyUpdate"), "the refused change is recorded under its own name"
    finally:
        s.stop()


# ---- Medium 6: slow clients ---------------------------------------------------------------------

def tls_socket(s, host="localhost"):
    ctx = ssl.create_default_context(cafile=s.creds["ca_file"])
    ctx.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection(("127.0.0.1", s.port), timeout=20)
    return ctx.wrap_socket(raw, server_hostname=host)


def read_until_closed(sock, limit):
    """Everything the server sends until it closes the connection (or `limit` seconds pass)."""
    sock.settimeout(limit)
    chunks = []
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    except (socket.timeout, ssl.SSLError, ConnectionResetError):
        pass
    return b"".join(chunks)


def test_slow_clients_are_cut_off(tmp_path):
    s = CofferServer(tmp_path, ["--request-header-timeout-secs", "2", "--request-body-timeout-secs", "3",
                                "--max-connections", "6"]).start()
    try:
        v = s.new_vault()
        token = s.token()

        # A request head sent in part, then nothing: the connection is closed, not held.
        sock = tls_socket(s)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        started = time.time()
        read_until_closed(sock, 20)
        assert time.time() - started < 8, "a partial request head held the connection"
        sock.close()

        # An authenticated PUT whose body trickles: 408 in Azure's shape, in bounded time.
        sock = tls_socket(s, f"{v}.vault.localhost")
        head = (f"PUT /secrets/slow?api-version={DATA} HTTP/1.1\r\nHost: {v}.vault.localhost:{s.port}\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n")
        sock.sendall(head.encode())
        started = time.time()
        sock.settimeout(1)
        answer = b""
        while time.time() - started < 15 and b"\r\n\r\n" not in answer:
            try:
                sock.sendall(b" ")
                answer += sock.recv(65536)
            except socket.timeout:
                continue
            except (ssl.SSLError, OSError):
                break
        answer += read_until_closed(sock, 3)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert time.time() - started < 10
        body = json.loads(answer.split(b"\r\n\r\n", 1)[1].decode() or "{}")
        assert body["error"]["code"] == "RequestTimeout", body
        assert dp(s, "GET", v, "/secrets/slow", token).status_code == 404, "nothing was written"

        # Open connections are bounded: past the limit a new one is closed at once.
        held = [tls_socket(s) for _ in range(6)]
        with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
            extra = tls_socket(s)
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            if not extra.recv(1):
                raise ConnectionResetError("closed")
        for h in held:
            h.close()
        time.sleep(0.5)
        assert requests.get(f"{s.server}/healthz", verify=s.creds["ca_file"], timeout=10).status_code == 200
    finally:
        s.stop()


def test_requests_in_flight_are_bounded(tmp_path):
    s = CofferServer(tmp_path, ["--max-in-flight", "2", "--request-body-timeout-secs", "4"]).start()
    try:
        v = s.new_vault()
        token = s.token()
        slow = []
        for i in range(2):
            sock = tls_socket(s, f"{v}.vault.localhost")
            sock.sendall((f"PUT /secrets/hold{i}?api-version={DATA} HTTP/1.1\r\nHost: {v}.vault.localhost:{s.port}\r\n"
                          f"Authorization: Bearer {token}\r\nContent-Length: 100\r\n\r\n").encode())
            slow.append(sock)
        time.sleep(0.5)
        r = requests.get(f"{s.server}/healthz", verify=s.creds["ca_file"], timeout=10)
        assert r.status_code == 503 and r.json()["error"]["code"] == "ServerBusy", r.text
        assert int(r.headers["Retry-After"]) >= 1
        for sock in slow:
            read_until_closed(sock, 10)
            sock.close()
        assert requests.get(f"{s.server}/healthz", verify=s.creds["ca_file"], timeout=10).status_code == 200
    finally:
        s.stop()


# ---- Medium 7: portal sessions end with their password -------------------------------------------

def portal_sign_in(s, name, password):
    web = s.portal_session(name, password)
    assert web.get(f"{s.server}/portal/vaults", allow_redirects=False, timeout=10).status_code == 200
    return web


def signed_out(web, s):
    r = web.get(f"{s.server}/portal/vaults", allow_redirects=False, timeout=10)
    return r.status_code in (302, 303) and r.headers["location"].endswith("/portal/login")


def test_a_portal_session_ends_when_its_password_is_reset_or_removed(coffer):
    s = coffer
    name = uid("doctor")
    oid = s.new_user(name, "first-password-1")
    web = portal_sign_in(s, name, "first-password-1")
    r = s.cli("principal", "credential", "add", "--id", oid, "--password-stdin", input="second-password-2\n")
    assert r.returncode == 0, r.stderr
    assert signed_out(web, s), "the old session outlived the password reset"

    web = portal_sign_in(s, name, "second-password-2")
    creds = s.cli_json("principal", "credential", "list", "--id", oid)
    for c in creds:
        assert s.cli("principal", "credential", "remove", "--id", oid, "--credential-id", c["id"]).returncode == 0
    assert signed_out(web, s), "the session outlived the removal of its credential"


# ---- Lower 8: a certificate's key refuses rotation policies --------------------------------------

def test_a_certificate_key_refuses_a_rotation_policy(coffer):
    s = coffer
    v = s.new_vault()
    token = admin_token(s)
    assert dp(s, "POST", v, "/certificates/web/create", token, cert_policy()).status_code == 202
    policy = {"lifetimeActions": [{"trigger": {"timeAfterCreate": "P1D"}, "action": {"type": "Rotate"}}],
              "attributes": {"expiryTime": "P90D"}}
    r = dp(s, "PUT", v, "/keys/web/rotationpolicy", token, policy)
    assert r.status_code == 403, r.text
    assert "certificate" in r.json()["error"]["message"]


# ---- Lower 9: client assertions: our audience, one use --------------------------------------------

def assertion(key, cert_der, client_id, audience, jti=None):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    header = {"alg": "RS256", "typ": "JWT", "x5t": b64(hashlib.sha1(cert_der).digest())}
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "exp": now + 600, "nbf": now - 10,
              "iat": now, "jti": jti or str(uuid.uuid4())}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(sig)}"


def test_client_assertions_are_for_this_server_and_used_once(coffer, tmp_path):
    from cryptography.hazmat.primitives import serialization

    s = coffer
    key, cert = self_signed("robot")
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    a = s.cli_json("principal", "create", "--type", "app", "--name", uid("robot"))
    s.cli_json("principal", "credential", "add", "--id", a["object_id"], "--certificate", str(tmp_path / "cert.pem"))
    der = cert.public_bytes(serialization.Encoding.DER)
    tenant = s.creds["tenant_id"]
    url = f"{s.server}/{tenant}/oauth2/v2.0/token"

    def redeem(jwt, host=None):
        form = {"grant_type": "client_credentials", "client_id": a["client_id"], "client_assertion": jwt,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "scope": f"{data_resource(s)}/.default"}
        headers = {"Host": host} if host else {}
        target = url if not host else f"https://127.0.0.1:{s.port}/{tenant}/oauth2/v2.0/token"
        return requests.post(target, data=form, headers=headers, verify=False if host else s.creds["ca_file"],
                             timeout=60)

    good = assertion(key, der, a["client_id"], f"{s.server}/{tenant}/oauth2/v2.0/token")
    assert redeem(good).status_code == 200
    replay = redeem(good)
    assert replay.status_code in (400, 401) and replay.json()["error"] == "invalid_client", replay.text
    # The other bare name of this server is its own too.
    alias = assertion(key, der, a["client_id"], f"https://vault.localhost:{s.port}/{tenant}/oauth2/v2.0/token")
    assert redeem(alias).status_code == 200
    # An assertion made for another token endpoint is refused, whatever Host the request claims.
    elsewhere = assertion(key, der, a["client_id"], f"https://login.other.example/{tenant}/oauth2/v2.0/token")
    r = redeem(elsewhere, host="login.other.example")
    assert r.status_code in (400, 401) and r.json()["error"] == "invalid_client", r.text


# ---- Lower 10: refresh tokens rotate, and a replay revokes the chain ------------------------------

def test_refresh_tokens_are_single_use(coffer):
    s = coffer
    name = uid("tech")
    s.new_user(name, "tech-password-1")
    url = f"{s.server}/{s.creds['tenant_id']}/oauth2/v2.0/token"
    scope = f"{data_resource(s)}/.default"

    def post(**form):
        return requests.post(url, data=dict(form, scope=scope), verify=s.creds["ca_file"], timeout=60)

    def sign_in():
        r = post(grant_type="password", client_id="coffer-cli", username=name, password="tech-password-1")
        assert r.status_code == 200, r.text
        return r.json()["refresh_token"]

    rt1 = sign_in()
    r = post(grant_type="refresh_token", client_id="coffer-cli", refresh_token=rt1)
    assert r.status_code == 200, r.text
    rt2 = r.json()["refresh_token"]
    assert rt2 != rt1
    stolen = post(grant_type="refresh_token", client_id="coffer-cli", refresh_token=rt1)
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant", stolen.text
    after = post(grant_type="refresh_token", client_id="coffer-cli", refresh_token=rt2)
    assert after.status_code == 400, "a replay revokes the whole chain"

    # Signing out with the newest token ends the older ones too.
    rt1 = sign_in()
    rt2 = post(grant_type="refresh_token", client_id="coffer-cli", refresh_token=rt1).json()["refresh_token"]
    revoke = requests.post(f"{s.server}/{s.creds['tenant_id']}/oauth2/v2.0/revoke", data={"token": rt2},
                           verify=s.creds["ca_file"], timeout=30)
    assert revoke.status_code == 200
    assert post(grant_type="refresh_token", client_id="coffer-cli", refresh_token=rt1).status_code == 400
    assert post(grant_type="refresh_token", client_id="coffer-cli", refresh_token=rt2).status_code == 400


# ---- Lower 11: the portal's Access page follows the management API -------------------------------

def test_the_portal_access_page_needs_the_right_to_read_the_vault(coffer):
    s = coffer
    v = s.new_vault()
    name = uid("clerk")
    oid = s.new_user(name, "clerk-password-1")
    s.cli_json("vault", "set-policy", "--name", v, "--object-id", oid, "--secret-permissions", "list")
    other = uid("surgeon")
    other_oid = s.new_user(other, "surgeon-password-1")
    s.cli_json("vault", "set-policy", "--name", v, "--object-id", other_oid, "--secret-permissions", "get")
    web = portal_sign_in(s, name, "clerk-password-1")
    page = web.get(f"{s.server}/portal/vaults/{v}/access", timeout=10)
    assert page.status_code == 403, page.status_code
    assert other not in page.text and other_oid not in page.text, "no one's access policy is shown"
    mgmt = token_for(s, {"grant_type": "password", "client_id": "coffer-cli", "username": name,
                         "password": "clerk-password-1"}, s.server)
    assert arm(s, "GET", vault_path(s, v), mgmt).status_code == 403, "the API's rule, which the page now follows"


# ---- Lower 12: /metrics records refused tokens ----------------------------------------------------

def test_refused_metrics_tokens_are_recorded(coffer):
    s = coffer
    marker = uid("probe")
    r = requests.get(f"{s.server}/metrics", headers={"Authorization": "Bearer not-a-token",
                                                       "x-ms-client-request-id": marker},
                     verify=s.creds["ca_file"], timeout=10)
    assert r.status_code == 401
    records = [rec for rec in audit(s, "--operation", "MetricsRead") if marker in json.dumps(rec)]
    assert len(records) == 1, records
    assert records[0]["properties"]["httpStatusCode"] == 401, records[0]


# ---- Lower 13: user input cannot forge log lines ---------------------------------------------------

def test_a_user_name_cannot_forge_log_lines(tmp_path):
    s = CofferServer(tmp_path).start()
    try:
        forged = "eve\n2026-01-01T00:00:00Z  INFO coffer: forged line\x1b[31m"
        for _ in range(2):
            requests.post(f"{s.server}/{s.creds['tenant_id']}/oauth2/v2.0/token",
                          data={"grant_type": "password", "client_id": "coffer-cli", "username": forged,
                                "password": "wrong-password", "scope": f"{data_resource(s)}/.default"},
                          verify=s.creds["ca_file"], timeout=60)
    finally:
        s.stop()
    log = open(os.path.join(tmp_path, "server.log"), "rb").read()
    assert b"failed sign-in" in log
    assert not any(line.startswith(b"2026-01-01T00:00:00Z") for line in log.splitlines()), "a forged line"
    assert b"\x1b[31m" not in log, "an escape sequence reached the log"


# ---- Lower 14: one resource group needs the right to list them ------------------------------------

def test_a_resource_group_is_not_shown_to_a_principal_without_a_role(coffer):
    s = coffer
    _, cid, secret = app(s)
    mgmt = app_token(s, cid, secret, s.server)
    sub = s.creds["subscription_id"]
    assert arm(s, "GET", f"/subscriptions/{sub}/resourcegroups", mgmt).status_code == 403
    r = arm(s, "GET", f"/subscriptions/{sub}/resourceGroups/default", mgmt)
    assert r.status_code == 403, r.text


# ---- Lower 15: the data directory is private ---------------------------------------------------------

def test_the_data_directory_is_private(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    s = CofferServer(data).start()
    try:
        v = s.new_vault()
        assert dp(s, "PUT", v, "/secrets/x", s.token(), {"value": "y"}).status_code == 200
        for name in ["coffer.db", "coffer.db-wal", "coffer.db-shm", "root.key", "dev-credentials.json",
                     "audit/audit.log", "tls/server-key.pem", "tls/ca-key.pem"]:
            mode = stat.S_IMODE(os.stat(data / name).st_mode)
            assert mode == 0o600, f"{name}: {oct(mode)}"
        for name in ["", "audit", "keys", "tls"]:
            mode = stat.S_IMODE(os.stat(data / name).st_mode)
            assert mode == 0o700, f"{name or 'data dir'}: {oct(mode)}"
        for kek in os.listdir(data / "keys"):
            assert stat.S_IMODE(os.stat(data / "keys" / kek).st_mode) == 0o600
    finally:
        s.stop()
