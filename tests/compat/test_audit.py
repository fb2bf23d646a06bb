"""The audit log through its real interfaces: records written by the server for SDK, CLI and
raw requests; `coffer audit tail|query|verify`; tampering with the store (SQLite) and the file
sink; fail-closed behaviour when the file sink is full or hangs; retention; events to a
webhook; syslog; file rotation."""
import hashlib
import hmac
import http.server
import json
import os
import pathlib
import socket
import sqlite3
import tempfile
import threading
import time
import uuid

import pytest
import requests
from azure.keyvault.secrets import SecretClient

from conftest import CofferServer, swap_link


def query(s, *args):
    r = s.cli("audit", "query", *args)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def verify(s, *args):
    """(exit code, report, stderr) of `coffer audit verify`."""
    r = s.cli("audit", "verify", *args)
    return r.returncode, json.loads(r.stdout), r.stderr


def findings(report, part):
    return [(f["seq"], f["problem"]) for f in report[part]["findings"]]


@pytest.fixture
def own_server():
    """A server of its own, started with extra flags (these tests break or move things)."""
    servers = []

    def start(*extra):
        s = CofferServer(tempfile.mkdtemp(prefix="coffer-audit-"), extra).start()
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


def uid(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def raw(s, method, vault, path, token, body=None):
    return requests.request(
        method, f"{s.vault_url(vault)}{path}?api-version=7.5", json=body,
        headers={"Authorization": f"Bearer {token}"} if token else {}, verify=s.creds["ca_file"], timeout=30)


def test_requests_sign_ins_and_refusals_are_recorded_without_secrets(coffer, credential):
    s = coffer
    v = s.new_vault()
    value = "value-" + uuid.uuid4().hex
    password = "Pw-" + uuid.uuid4().hex
    client = SecretClient(s.vault_url(v), credential)
    client.set_secret("db", value)
    assert client.get_secret("db").value == value

    nurse_name = "nurse" + uuid.uuid4().hex[:8]
    nurse = s.cli("principal", "create", "--type", "user", "--name", nurse_name, "--password-stdin",
                  input=password + "\n")
    assert nurse.returncode == 0, nurse.stderr
    nurse_id = json.loads(nurse.stdout)["object_id"]
    token_url = f"{s.server}/{s.creds['tenant_id']}/oauth2/v2.0/token"
    scope = f"https://vault.localhost:{s.port}/.default"
    ok = requests.post(token_url, data={"grant_type": "password", "username": nurse_name, "password": password,
                                        "scope": scope, "client_id": s.creds["client_id"]},
                       verify=s.creds["ca_file"], timeout=30)
    assert ok.status_code == 200, ok.text
    nurse_token = ok.json()["access_token"]
    bad = requests.post(token_url, data={"grant_type": "password", "username": nurse_name, "password": "wrong",
                                         "scope": scope, "client_id": s.creds["client_id"]},
                        verify=s.creds["ca_file"], timeout=30)
    assert bad.status_code == 400
    denied = raw(s, "GET", v, "/secrets/db", nurse_token)
    assert denied.status_code == 403
    anonymous = raw(s, "GET", v, "/secrets/db", None)
    assert anonymous.status_code == 401

    gets = query(s, "--vault", v, "--object", "db", "--operation", "SecretGet")
    by_result = {r["result"]: r for r in gets}
    assert set(by_result) == {"success", "denied"}, gets
    allowed = by_result["success"]
    assert allowed["identity"]["claim"]["oid"] == s.cli_json("principal", "show", "--id", s.creds["client_id"])["object_id"]
    assert allowed["properties"]["authorization"]["decision"] == "allow"
    assert allowed["properties"]["authorization"]["reasons"], "the grant that decided is named"
    assert allowed["properties"]["httpStatusCode"] == 200 and allowed["callerIpAddress"] == "127.0.0.1"
    assert allowed["properties"]["id"] == f"{s.vault_url(v)}/secrets/db"
    refused = by_result["denied"]
    assert refused["identity"]["claim"]["oid"] == nurse_id
    assert refused["properties"]["authorization"]["decision"] == "deny"
    assert refused["properties"]["httpStatusCode"] == 403
    assert [r["seq"] for r in query(s, "--caller", nurse_id, "--result", "denied")] == [refused["seq"]]

    # (The SDK's first try carries no token: it is refused with the challenge, and recorded.)
    sets = [r for r in query(s, "--vault", v, "--operation", "SecretSet") if r["properties"].get("httpStatusCode") != 401]
    # A new version is committed with its record (one commit: no "started" record before it).
    assert [r["result"] for r in sets] == ["success"], sets
    assert sets[0]["properties"]["version"] == sets[0]["properties"]["id"].rsplit("/", 1)[1]
    assert sets[0]["properties"]["httpStatusCode"] == 200

    unauth = [r for r in query(s, "--vault", v, "--result", "denied") if r["properties"]["httpStatusCode"] == 401]
    assert unauth and unauth[0]["identity"] is None
    sign_ins = query(s, "--operation", "Authentication", "--limit", "50")
    mine = [r for r in sign_ins if (r["identity"] or {}).get("claim", {}).get("oid") == nurse_id]
    assert mine and mine[0]["result"] == "success" and "password" in mine[0]["identity"]["claim"]["via"]
    failed = [r for r in sign_ins if r["result"] == "denied" and r["properties"].get("claimedIdentity") == nurse_name]
    assert failed, "a failed sign-in is recorded with the identity it claimed"

    # The response's request id is the record's.
    r = raw(s, "GET", v, "/secrets/db", s.token())
    rid = r.headers["x-ms-request-id"]
    assert any(rec["requestId"] == rid for rec in query(s, "--vault", v, "--operation", "SecretGet"))

    # A malformed body is refused; the parser's message quotes the body to the client only.
    quoted = "quoted-" + uuid.uuid4().hex
    bad_body = raw(s, "PUT", v, "/secrets/db", s.token(), {"value": "x", "attributes": {"enabled": quoted}})
    assert bad_body.status_code == 400 and quoted in bad_body.text
    rejected = [r for r in query(s, "--vault", v, "--operation", "SecretSet", "--result", "failed")]
    assert rejected and "line 1" in rejected[0]["resultDescription"]

    # Nothing sensitive: values, passwords, client secrets, tokens, quoted bodies.
    everything = s.cli("audit", "query", "--limit", "10000").stdout
    log = pathlib.Path(s.data_dir, "audit", "audit.log").read_text()
    for text in (everything, log):
        for sensitive in (value, password, s.creds["client_secret"], nurse_token, nurse_token.split(".")[2], quoted):
            assert sensitive not in text

    # Only tenant administrators read the log.
    app = s.cli_json("principal", "create", "--type", "app", "--name", "reader" + uuid.uuid4().hex[:6])
    app_secret = s.cli_json("principal", "credential", "add", "--id", app["object_id"])["client_secret"]
    env = {**s.env(), "COFFER_CLIENT_ID": app["client_id"], "COFFER_CLIENT_SECRET": app_secret}
    import subprocess
    from conftest import BIN
    r = subprocess.run([BIN, "audit", "query"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "AuthorizationFailed" in r.stderr and not r.stdout.strip()

    table = s.cli("audit", "tail", "-n", "5", "-o", "table")
    assert table.returncode == 0 and "operation" in table.stdout.splitlines()[0]
    code, report, _ = verify(s)
    assert code == 0 and report["ok"] and report["store"]["records"] > 10


def test_a_new_version_and_its_record_are_one_commit(own_server):
    s = own_server()
    v = s.new_vault()
    token = s.token()

    def put(name, marker):
        return requests.put(
            f"{s.vault_url(v)}/secrets/{name}?api-version=7.5", json={"value": "v-" + marker},
            headers={"Authorization": f"Bearer {token}", "x-ms-client-request-id": marker},
            verify=s.creds["ca_file"], timeout=30)

    def records(marker):
        return [r for r in query(s, "--vault", v, "--operation", "SecretSet") if r["correlationId"] == marker]

    first = uid("set")
    r = put("witnessed", first)
    assert r.status_code == 200, r.text
    version = r.json()["id"].rsplit("/", 1)[1]
    [record] = records(first)
    assert record["result"] == "success" and record["properties"]["httpStatusCode"] == 200, record
    assert record["properties"]["version"] == version, "the record names the version it was committed with"

    assert raw(s, "DELETE", v, "/secrets/witnessed", token).status_code == 200
    refused = uid("set")
    r = put("witnessed", refused)
    assert r.status_code == 409 and r.json()["error"]["innererror"]["code"] == "ObjectIsDeletedButRecoverable", r.text
    [record] = records(refused)
    assert record["result"] == "failed" and record["properties"]["httpStatusCode"] == 409, record
    assert "version" not in record["properties"], "a refused version is not named as written"
    code, report, err = verify(s)
    assert code == 0 and report["ok"], (report, err)


def test_verify_names_each_altered_removed_swapped_or_inserted_record(own_server):
    s = own_server()
    v = s.new_vault()
    c = SecretClient(s.vault_url(v), s.credential(), connection_verify=s.creds["ca_file"])
    for i in range(6):
        c.set_secret(f"s{i}", "x")
        c.get_secret(f"s{i}")
    assert verify(s)[0] == 0
    s.cli_json("audit", "checkpoint")
    db = sqlite3.connect(os.path.join(s.data_dir, "coffer.db"), timeout=30)
    gets = [r for r in query(s, "--vault", v, "--operation", "SecretGet", "--limit", "10")]
    n = sorted(r["seq"] for r in gets)[2]

    def row(seq):
        return db.execute("SELECT * FROM audit_records WHERE seq = ?", (seq,)).fetchone()

    def expect(part, seq, problem):
        code, report, err = verify(s)
        assert code == 2 and (seq, problem) in findings(report, part), (report, err)
        assert f"{seq}" in err, err

    original, following = row(n), row(n + 1)
    # Store: an edit.
    db.execute("UPDATE audit_records SET body = replace(body, '\"result\":\"success\"', '\"result\":\"denied\"') WHERE seq = ?", (n,))
    db.commit()
    expect("store", n, "altered")
    db.execute("UPDATE audit_records SET body = ? WHERE seq = ?", (original[7], n))
    db.commit()
    # Store: an index column edited (so a query would hide the record).
    db.execute("UPDATE audit_records SET caller = 'someone-else' WHERE seq = ?", (n,))
    db.commit()
    expect("store", n, "altered")
    db.execute("UPDATE audit_records SET caller = ? WHERE seq = ?", (original[3], n))
    db.commit()
    # Store: a removal.
    db.execute("DELETE FROM audit_records WHERE seq = ?", (n,))
    db.commit()
    expect("store", n, "removed")
    db.execute("INSERT INTO audit_records VALUES (?, ?, ?, ?, ?, ?, ?, ?)", original)
    db.commit()
    # Store: two records swapped.
    db.execute("UPDATE audit_records SET body = ? WHERE seq = ?", (following[7], n))
    db.execute("UPDATE audit_records SET body = ? WHERE seq = ?", (original[7], n + 1))
    db.commit()
    expect("store", n, "reordered")
    db.execute("UPDATE audit_records SET body = ? WHERE seq = ?", (original[7], n))
    db.execute("UPDATE audit_records SET body = ? WHERE seq = ?", (following[7], n + 1))
    db.commit()
    # Store: a forged record after the head, correctly chained.
    head = db.execute("SELECT seq, body FROM audit_records ORDER BY seq DESC LIMIT 1").fetchone()
    forged = json.loads(head[1])
    forged.update({"seq": head[0] + 1000, "prevHash": forged["hash"], "operationName": "SecretGet"})
    forged.pop("hash")
    forged["hash"] = hashlib.sha256(json.dumps(forged, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    db.execute("INSERT INTO audit_records VALUES (?, 0, NULL, NULL, 'SecretGet', 'success', NULL, ?)",
               (head[0] + 1000, json.dumps(forged)))
    db.commit()
    expect("store", head[0] + 1000, "inserted")
    db.execute("DELETE FROM audit_records WHERE seq = ?", (head[0] + 1000,))
    db.commit()
    code, report, err = verify(s)
    assert code == 0 and report["ok"], report

    # The file sink: edit, delete, swap lines.
    path = pathlib.Path(s.data_dir, "audit", "audit.log")
    lines = path.read_text().splitlines(keepends=True)
    at = next(i for i, l in enumerate(lines) if f'"seq":{n},' in l)

    def rewrite(new_lines):
        # Same inode (the server appends to it): truncate and write.
        with open(path, "r+") as f:
            f.truncate(0)
            f.write("".join(new_lines))

    current = path.read_text().splitlines(keepends=True)
    tail = current[len(lines):]
    edited = list(lines)
    edited[at] = edited[at].replace('"SecretGet"', '"SecretPurge"')
    rewrite(edited + tail)
    expect("file", n, "altered")
    rewrite(lines[:at] + lines[at + 1:] + path.read_text().splitlines(keepends=True)[len(lines):])
    expect("file", n, "removed")
    rewrite(lines[:at] + [lines[at + 1], lines[at]] + lines[at + 2:]
            + path.read_text().splitlines(keepends=True)[len(lines) - 1:])
    expect("file", n, "reordered")
    rewrite(lines + path.read_text().splitlines(keepends=True)[len(lines):])
    code, report, err = verify(s)
    assert code == 0 and report["ok"], (report, err)



def test_a_full_audit_disk_refuses_requests_before_they_happen(own_server):
    base = tempfile.mkdtemp(prefix="coffer-sink-")
    real = os.path.join(base, "audit.log")
    link = os.path.join(base, "current.log")
    os.symlink(real, link)
    s = own_server("--audit-file", link)
    v = s.new_vault()
    token = s.token()
    assert raw(s, "PUT", v, "/secrets/kept", token, {"value": "kept-value"}).status_code == 200

    swap_link(link, "/dev/full")  # every write now fails with ENOSPC
    refused = raw(s, "PUT", v, "/secrets/never", token, {"value": "never-value"})
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "AuditLogUnavailable"
    assert "audit" in refused.json()["error"]["message"]
    read = raw(s, "GET", v, "/secrets/kept", token)
    assert read.status_code == 503 and "kept-value" not in read.text, "no secret leaves unrecorded"
    health = requests.get(f"{s.server}/healthz", verify=s.creds["ca_file"], timeout=10)
    assert health.status_code == 503 and health.json()["audit"]["status"] == "failing", health.text
    assert "cannot be written" in health.json()["audit"]["error"]

    swap_link(link, real)
    assert raw(s, "GET", v, "/secrets/never", token).status_code == 404, "the refused change did not happen"
    assert raw(s, "GET", v, "/secrets/kept", token).json()["value"] == "kept-value"
    assert requests.get(f"{s.server}/healthz", verify=s.creds["ca_file"], timeout=10).json()["audit"]["status"] == "ok"
    notes = query(s, "--operation", "AuditSinkFailure")
    assert notes and "503" in notes[0]["resultDescription"]
    code, report, err = verify(s)
    assert code == 0 and report["ok"], (report, err)
    assert report["file"]["lastSeq"] >= report["store"]["lastSeq"] - 2, "the file caught up from the store"


def test_a_hung_audit_sink_times_out_instead_of_blocking(own_server):
    base = tempfile.mkdtemp(prefix="coffer-sink-")
    real = os.path.join(base, "audit.log")
    link = os.path.join(base, "current.log")
    fifo = os.path.join(base, "hang.fifo")
    os.mkfifo(fifo)
    os.symlink(real, link)
    s = own_server("--audit-file", link, "--audit-write-timeout-ms", "1500")
    v = s.new_vault()
    token = s.token()
    swap_link(link, fifo)  # opening a FIFO with no reader blocks: a hung sink
    started = time.time()
    r = raw(s, "PUT", v, "/secrets/x", token, {"value": "1"})
    assert r.status_code == 503 and time.time() - started < 15
    r2 = raw(s, "GET", v, "/secrets/x", token)
    assert r2.status_code == 503
    health = requests.get(f"{s.server}/healthz", verify=s.creds["ca_file"], timeout=10)
    assert health.status_code == 503 and health.json()["audit"]["status"] == "stalled", health.text

    # A reader appears: the sink unblocks; then the real file comes back.
    drained = []
    reader = threading.Thread(target=lambda: drained.append(open(fifo, "rb").read()), daemon=True)
    reader.start()
    swap_link(link, real)
    deadline = time.time() + 20
    while time.time() < deadline:
        if raw(s, "GET", v, "/secrets/x", token).status_code == 404:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the audit log did not recover")
    assert requests.get(f"{s.server}/healthz", verify=s.creds["ca_file"], timeout=10).json()["audit"]["status"] == "ok"
    # The set that timed out did not happen (above: 404), and the chain is whole in both copies.
    assert raw(s, "PUT", v, "/secrets/x", token, {"value": "2"}).status_code == 200
    code, report, err = verify(s)
    assert code == 0 and report["ok"], (report, err)


def test_jobs_are_recorded_as_the_system_and_retention_keeps_the_chain_verifiable(own_server):
    s = own_server("--audit-retention-days", "30")
    v = s.new_vault("--retention-days", "7")
    s.cli_json("secret", "set", "--vault-name", v, "--name", "old", "--value", "1")
    s.cli("secret", "delete", "--vault-name", v, "--name", "old")
    before = query(s, "--limit", "10000", "--result", "success")
    moved = s.cli_json("dev", "advance-time", "--days", "8")
    assert moved["purged"]["objects"] == 1
    purge = query(s, "--vault", v, "--operation", "SecretPurge")
    assert purge and purge[0]["identity"]["claim"]["kind"] == "system"
    assert purge[0]["identity"]["claim"]["name"] == "Coffer"

    moved = s.cli_json("dev", "advance-time", "--days", "31")
    assert moved["audit_records_purged"] >= len(before)
    remaining = query(s, "--limit", "10000")
    assert min(r["seq"] for r in remaining) > max(r["seq"] for r in before)
    assert query(s, "--operation", "AuditRetentionPurge")
    code, report, err = verify(s)
    assert code == 0 and report["ok"], (report, err)
    # A record older than the anchor, slipped back in, is caught.
    db = sqlite3.connect(os.path.join(s.data_dir, "coffer.db"), timeout=30)
    db.execute("INSERT INTO audit_records VALUES (1, 0, NULL, NULL, 'SecretGet', 'success', NULL, ?)",
               (json.dumps(before[-1]),))
    db.commit()
    code, report, _ = verify(s)
    assert code == 2 and (1, "inserted") in findings(report, "store")


class _Hook(http.server.BaseHTTPRequestHandler):
    received = []
    fail_first = set()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        event_id = json.loads(body)[0]["id"]
        _Hook.received.append((dict(self.headers), body))
        if event_id not in _Hook.fail_first:
            _Hook.fail_first.add(event_id)
            self.send_response(500)
        else:
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_events_are_recorded_and_delivered_signed_to_the_webhook(own_server):
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    secret_file = os.path.join(tempfile.mkdtemp(), "hook.key")
    pathlib.Path(secret_file).write_text("hook-secret\n")
    s = own_server("--events-webhook", f"http://127.0.0.1:{hook.server_port}/hook",
                   "--events-webhook-secret-file", secret_file)
    try:
        v = s.new_vault()
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 10 * 86400))
        s.cli_json("secret", "set", "--vault-name", v, "--name", "db", "--value", "x", "--expires", expires)
        s.cli_json("dev", "advance-time", "--seconds", "1")
        k = ["--vault-name", v, "--name", "auto"]
        s.cli_json("key", "create", *k, "--kty", "EC")
        s.cli_json("key", "rotation-policy", "update", *k, "--value", json.dumps({
            "lifetimeActions": [{"trigger": {"timeAfterCreate": "P5D"}, "action": {"type": "Rotate"}}],
            "attributes": {"expiryTime": "P90D"}}))
        s.cli_json("dev", "advance-time", "--days", "11")

        events = query(s, "--vault", v, "--result", "event", "--limit", "50")
        names = {e["operationName"] for e in events}
        assert {"SecretNearExpiry", "SecretExpired", "KeyNewVersionCreated"} <= names, names
        assert query(s, "--vault", v, "--operation", "KeyRotate")[0]["identity"]["claim"]["kind"] == "system"

        deadline = time.time() + 30
        wanted = {"Microsoft.KeyVault.SecretNearExpiry", "Microsoft.KeyVault.SecretExpired",
                  "Microsoft.KeyVault.KeyNewVersionCreated"}
        while time.time() < deadline:
            delivered = {json.loads(b)[0]["eventType"] for h, b in _Hook.received
                         if json.loads(b)[0]["id"] in _Hook.fail_first}
            if wanted <= delivered and len(_Hook.received) >= 2 * len(wanted):
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"webhook got {[json.loads(b)[0]['eventType'] for _, b in _Hook.received]}")
        for headers, body in _Hook.received:
            sig = {k.lower(): v for k, v in headers.items()}["x-coffer-signature"]
            assert sig == "sha256=" + hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
        near = next(json.loads(b)[0] for _, b in _Hook.received
                    if json.loads(b)[0]["eventType"] == "Microsoft.KeyVault.SecretNearExpiry")
        assert near["data"]["VaultName"] == v and near["data"]["ObjectName"] == "db"
        ids = [json.loads(b)[0]["id"] for _, b in _Hook.received]
        assert all(ids.count(i) == 2 for i in set(ids)), "a refused delivery is retried"
    finally:
        hook.shutdown()


def test_file_rotation_syslog_and_offline_verification(own_server):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    s = own_server("--audit-file-max-bytes", "6000", "--audit-file-max-files", "2",
                   "--audit-syslog", f"udp:127.0.0.1:{sock.getsockname()[1]}")
    v = s.new_vault()
    c = SecretClient(s.vault_url(v), s.credential(), connection_verify=s.creds["ca_file"])
    for i in range(25):
        c.set_secret(f"r{i}", "x")
    d = pathlib.Path(s.data_dir, "audit")
    assert (d / "audit.log.1").exists() and (d / "audit.log.2").exists()
    assert not (d / "audit.log.3").exists(), "only --audit-file-max-files rotated files are kept"
    assert (d / "audit.log").read_text().splitlines()[0].startswith('{"category":"AuditCheckpoint"')
    code, report, err = verify(s)
    assert code == 0 and report["ok"], (report, err)
    # Exported copies (the live files rotate while we look: every CLI call is recorded too).
    export = pathlib.Path(tempfile.mkdtemp())
    texts = [(d / n).read_text() for n in ("audit.log.2", "audit.log.1", "audit.log")]
    files = []
    for i, text in enumerate(texts):
        files.append(str(export / f"part{i}.log"))
        pathlib.Path(files[-1]).write_text(text)
    code, report, err = verify(s, "--file", *files)
    assert code == 0 and report["ok"] and report["checkpoints"] >= 1, (report, err)
    # Offline, a line removed from an exported copy is named.
    lines = texts[1].splitlines(keepends=True)
    victim = json.loads(lines[3])["seq"]
    pathlib.Path(files[1]).write_text("".join(lines[:3] + lines[4:]))
    code, report, err = verify(s, "--file", *files)
    assert code == 2 and [(f["seq"], f["problem"]) for f in report["findings"]] == [(victim, "removed")], report
    assert f"record {victim} was removed" in err

    datagram = sock.recv(65536).decode()
    assert datagram.startswith("<110>1 ") and "AuditEvent" in datagram
    assert json.loads(datagram.split(" - AuditEvent - ", 1)[1])["hash"]


def test_records_cut_from_the_end_while_stopped_are_detected(own_server):
    s = own_server()
    v = s.new_vault()
    s.cli_json("secret", "set", "--vault-name", v, "--name", "a", "--value", "1")
    s.stop()
    db = sqlite3.connect(os.path.join(s.data_dir, "coffer.db"), timeout=30)
    head = db.execute("SELECT max(seq) FROM audit_records").fetchone()[0]
    assert db.execute("SELECT max(seq) FROM audit_checkpoints").fetchone()[0] == head, "a clean stop signs the head"
    db.execute("DELETE FROM audit_records WHERE seq >= ?", (head - 1,))
    db.commit()
    db.close()
    s.start()
    code, report, err = verify(s)
    assert code == 2 and any(p in ("removed", "rewritten") and seq is not None and seq >= head - 1
                             for seq, p in findings(report, "store")), report
    tampered = query(s, "--operation", "AuditChainTampered")
    assert tampered and "while Coffer was stopped" in tampered[0]["resultDescription"], "the restart says so itself"


def test_metrics_count_requests_and_audit_writes(coffer, own_server):
    s = coffer
    url = f"{s.server}/metrics"
    assert requests.get(url, verify=s.creds["ca_file"], timeout=10).status_code == 401, "a token is needed"
    mgmt = s.token(f"https://localhost:{s.port}")

    def scrape(server, token=None):
        r = requests.get(f"{server.server}/metrics", verify=server.creds["ca_file"], timeout=10,
                         headers={"Authorization": f"Bearer {token}"} if token else {})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain"), r.text
        values = {}
        for line in r.text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    key = 'coffer_requests_total{operation="SecretGet",status="200"}'
    before = scrape(s, mgmt)
    v = s.new_vault()
    token = s.token()
    assert raw(s, "PUT", v, "/secrets/m", token, {"value": "1"}).status_code == 200
    for _ in range(3):
        assert raw(s, "GET", v, "/secrets/m", token).status_code == 200
    after = scrape(s, mgmt)
    assert after[key] - before.get(key, 0) == 3
    bucket = 'coffer_request_duration_seconds_bucket{operation="SecretGet",status="200",le="+Inf"}'
    assert after[bucket] == after[key]
    assert after["coffer_audit_records_total"] > before.get("coffer_audit_records_total", 0) + 4
    assert "coffer_audit_queue_depth" in after
    # A non-administrator's token is refused.
    app = s.cli_json("principal", "create", "--type", "app", "--name", "metrics" + uuid.uuid4().hex[:6])
    secret = s.cli_json("principal", "credential", "add", "--id", app["object_id"])["client_secret"]
    other = requests.post(f"{s.server}/{s.creds['tenant_id']}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": app["client_id"], "client_secret": secret,
        "scope": f"https://localhost:{s.port}/.default"}, verify=s.creds["ca_file"], timeout=10).json()["access_token"]
    r = requests.get(url, headers={"Authorization": f"Bearer {other}"}, verify=s.creds["ca_file"], timeout=10)
    assert r.status_code == 403
    # With --metrics-unauthenticated a scraper needs no token.
    open_server = own_server("--metrics-unauthenticated")
    assert "coffer_audit_records_total" in scrape(open_server)
