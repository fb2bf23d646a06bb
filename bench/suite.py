#!/usr/bin/env python3
"""Coffer against OpenBao and against the raw limit, on this machine, in one run.

Started by bench/run.sh (which installs wrk and OpenBao and builds the release binaries).
Everything listens on 127.0.0.1 and is stopped at the end. Standard library only.

For each workload the same wrk script (bench/wrk/request.lua), with the same connections and
duration, drives Coffer (embedded store, TLS, audit log on) and OpenBao (TLS, Raft storage, a file
audit device, KV v2 and transit). The raw limits come from the same run: `raw-limits` does each
operation's cryptography in-process with aws-lc-rs on all cores, and `tls-floor` answers a bare
HTTPS request on Coffer's server stack. A request's limit is the two together (the crypto plus a
bare request); both ratios are reported. Results: a Markdown table printed and written to
bench/results/latest.md (and bench/results/latest.json).
"""
import argparse
import base64
import json
import os
import pathlib
import queue
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import http.client

ROOT = pathlib.Path(__file__).resolve().parents[1]
RELEASE = ROOT / "target" / "release"
LUA = ROOT / "bench" / "wrk" / "request.lua"
API = "api-version=2026-04-01"
VALUE = "benchmark-value-" + "0123456789abcdefghijklmnopqrstuvwxyz-" * 2 + "0123456789"  # 100 bytes
assert len(VALUE) == 100
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


# --- processes -------------------------------------------------------------------------------

def cpu_seconds(pid):
    """User + system CPU time of a process (and its reaped children)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


def status_kb(pid, field):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak_rss(pid):
    """Writing 5 to clear_refs resets VmHWM, so each workload gets its own peak."""
    try:
        pathlib.Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


def stop(proc):
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Https:
    """A keep-alive HTTPS client for set-up requests, to 127.0.0.1 with any Host header."""

    def __init__(self, port, ca_file):
        self.port = port
        self.ctx = ssl.create_default_context(cafile=str(ca_file))
        self.conn = None

    def request(self, method, path, body=None, headers=None, host=None, form=False):
        headers = dict(headers or {})
        if host:
            headers["Host"] = host
        if body is not None:
            if form:
                body = urllib.parse.urlencode(body)
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                body = json.dumps(body)
                headers["Content-Type"] = "application/json"
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=60)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        text = data.decode() if data else ""
        try:
            payload = json.loads(text) if text else None
        except ValueError:
            payload = text
        return r.status, payload

    def ok(self, method, path, body=None, **kw):
        status, payload = self.request(method, path, body, **kw)
        if status >= 300:
            raise RuntimeError(f"{method} {path} -> {status}: {payload}")
        return payload


class Server:
    """A server process the suite started (`self.proc`)."""

    proc = None

    def stop(self):
        stop(self.proc)

    @property
    def pid(self):
        return self.proc.pid


class Coffer(Server):
    """`coffer serve --dev` on a fresh data directory, with the audit log on."""

    def __init__(self, data_dir, extra_args=()):
        self.dir = pathlib.Path(data_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = None
        self.port = None
        self.extra_args = list(extra_args)

    def start(self, port=0):
        log_file = open(self.dir / "server.log", "ab")
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [str(RELEASE / "coffer"), "serve", "--dev", "--data-dir", str(self.dir),
             "--listen", f"127.0.0.1:{port}", "--metrics-unauthenticated", *self.extra_args],
            stdout=subprocess.PIPE, stderr=log_file,
        )
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in self.proc.stdout], daemon=True).start()
        deadline = time.monotonic() + 120
        while not (self.dir / "dev-credentials.json").exists() or self.port is None:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"coffer did not start; see {self.dir}/server.log")
            try:
                line = lines.get(timeout=0.01).decode().strip()
            except queue.Empty:
                continue
            m = re.match(r"export COFFER_SERVER=https://[^:]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
        self.creds = json.loads((self.dir / "dev-credentials.json").read_text())
        self.http = Https(self.port, self.creds["ca_file"])
        while True:  # ready = answers /healthz over TLS
            try:
                if self.http.request("GET", "/healthz", host=f"localhost:{self.port}")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("coffer never became healthy")
            time.sleep(0.01)
        self.startup_seconds = time.monotonic() - started
        return self

    def token(self, resource):
        c = self.creds
        r = self.http.ok("POST", f"/{c['tenant_id']}/oauth2/v2.0/token", {
            "grant_type": "client_credentials", "client_id": c["client_id"],
            "client_secret": c["client_secret"], "scope": f"{resource}/.default",
        }, host=f"localhost:{self.port}", form=True)
        return r["access_token"]

    def data_token(self):
        return self.token(f"https://vault.localhost:{self.port}")

    def create_vault(self, name):
        mgmt = self.token(f"https://localhost:{self.port}")
        claims = json.loads(base64.urlsafe_b64decode(mgmt.split(".")[1] + "=="))
        c = self.creds
        self.http.ok("PUT", f"/subscriptions/{c['subscription_id']}/resourceGroups/default/providers/"
                     f"Microsoft.KeyVault/vaults/{name}?api-version=2023-07-01", {
                         "location": "local",
                         "properties": {"tenantId": c["tenant_id"], "sku": {"family": "A", "name": "standard"},
                                        "accessPolicies": [{"tenantId": c["tenant_id"], "objectId": claims["oid"],
                                                            "permissions": {"secrets": ["all"], "keys": ["all"]}}]},
                     }, headers={"Authorization": f"Bearer {mgmt}"}, host=f"localhost:{self.port}")

    def host(self, vault):
        return f"{vault}.vault.localhost:{self.port}"

    def metrics(self):
        status, text = self.http.request("GET", "/metrics", host=f"localhost:{self.port}")
        return parse_prometheus(text) if status == 200 else {}


class ShamirCoffer(Coffer):
    """`coffer serve --config` in production mode (Shamir seal), initialised with one share
    and unsealed, on the dev server's TLS files: the same server but for where the root key is.
    With `softhsm`, the seal is PKCS#11 on a throwaway SoftHSM2 token instead."""

    def __init__(self, data_dir, tls_dir, softhsm=False):
        super().__init__(data_dir)
        self.tls_dir = pathlib.Path(tls_dir)
        self.softhsm = softhsm

    def seal_config(self):
        if not self.softhsm:
            return '[seal]\ntype = "shamir"\n', {}
        tokens = self.dir / "tokens"
        tokens.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "softhsm2.conf"
        conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
        env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "coffer", "--pin", "4711",
                        "--so-pin", "1234"], env=env, check=True, capture_output=True)
        (self.dir / "hsm.pin").write_text("4711")
        return (f'[seal]\ntype = "pkcs11"\nmodule = "/usr/lib/softhsm/libsofthsm2.so"\n'
                f'pin_file = "{self.dir / "hsm.pin"}"\n'), env

    def start(self, port=0):
        self.port = free_port()
        cfg = self.dir / "coffer.toml"
        seal, env = self.seal_config()
        cfg.write_text(f'listen = "127.0.0.1:{self.port}"\ndata_dir = "{self.dir / "data"}"\n'
                       f'metrics_unauthenticated = true\n[tls]\ncert_file = "{self.tls_dir / "server.pem"}"\n'
                       f'key_file = "{self.tls_dir / "server-key.pem"}"\n' + seal)
        log_file = open(self.dir / "server.log", "ab")
        started = time.monotonic()
        self.proc = subprocess.Popen([str(RELEASE / "coffer"), "serve", "--config", str(cfg)],
                                     stdout=log_file, stderr=log_file, env=env or None)
        ca = str(self.tls_dir / "ca.pem")
        self.http = Https(self.port, ca)
        deadline = time.monotonic() + 120
        while True:
            try:
                self.http.request("GET", "/operator/status", host=f"localhost:{self.port}")
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"coffer (shamir) did not start; see {self.dir}/server.log")
                time.sleep(0.05)
        init = self.http.ok("POST", "/operator/init", {"key_shares": 1, "key_threshold": 1},
                            host=f"localhost:{self.port}")
        if not self.softhsm:
            self.http.ok("POST", "/operator/unseal", {"key": init["shares"][0]}, host=f"localhost:{self.port}")
        self.creds = {"tenant_id": init["tenant_id"], "client_id": init["client_id"],
                      "client_secret": init["client_secret"], "ca_file": ca}
        mgmt = self.token(f"https://localhost:{self.port}")
        subs = self.http.ok("GET", "/subscriptions?api-version=2023-07-01",
                            headers={"Authorization": f"Bearer {mgmt}"}, host=f"localhost:{self.port}")
        self.creds["subscription_id"] = subs["value"][0]["subscriptionId"]
        self.startup_seconds = time.monotonic() - started
        return self


def parse_prometheus(text):
    """{(name, frozenset(labels)): value} from the Prometheus text format."""
    out = {}
    for line in (text or "").splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$', line)
        if not m:
            continue
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        try:
            out[(m.group(1), labels)] = float(m.group(3))
        except ValueError:
            pass
    return out


def server_side(before, after, operation):
    """Requests, CPU seconds and the p99 bucket bound of one operation between two scrapes."""
    def delta(name, **want):
        total = 0.0
        for (n, labels), v in after.items():
            if n == name and all((k, w) in labels for k, w in want.items()):
                total += v - before.get((n, labels), 0.0)
        return total

    buckets = {}
    for (n, labels), v in after.items():
        d = dict(labels)
        if n == "coffer_request_duration_seconds_bucket" and d.get("operation") == operation:
            le = float("inf") if d["le"] == "+Inf" else float(d["le"])
            buckets[le] = buckets.get(le, 0.0) + v - before.get((n, labels), 0.0)
    count = buckets.get(float("inf"), 0.0)
    p99 = None
    for le in sorted(buckets):
        if count and buckets[le] >= 0.99 * count:
            p99 = le
            break
    return {
        "requests": delta("coffer_requests_total", operation=operation),
        "cpu_seconds": delta("process_cpu_seconds_total"),
        "p99_le_ms": None if p99 is None else p99 * 1000,
    }


class OpenBao(Server):
    """`bao server` with TLS, a file audit device (declared in the config, as OpenBao 2.7
    requires), KV v2 at secret/ and transit at transit/. Storage is integrated storage (Raft,
    one node): OpenBao 2.7 no longer has the `file` backend ("unknown storage type file"), and
    Raft, its recommended backend, is durable like Coffer's store."""

    def __init__(self, bao, data_dir, cert, key, ca):
        self.bao, self.dir, self.ca = bao, pathlib.Path(data_dir), ca
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        (self.dir / "bao.hcl").write_text(f'''
storage "raft" {{
  path = "{self.dir / 'data'}"
  node_id = "bench"
}}
cluster_addr = "https://127.0.0.1:{free_port()}"
listener "tcp" {{
  address = "127.0.0.1:{self.port}"
  tls_cert_file = "{cert}"
  tls_key_file = "{key}"
}}
audit "file" "bench" {{
  options {{ file_path = "{self.dir / 'audit.log'}" }}
}}
api_addr = "https://127.0.0.1:{self.port}"
ui = false
log_level = "warn"
''')

    def start(self):
        log_file = open(self.dir / "server.log", "ab")
        self.proc = subprocess.Popen([str(self.bao), "server", f"-config={self.dir / 'bao.hcl'}"],
                                     stdout=log_file, stderr=log_file)
        self.http = Https(self.port, self.ca)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.http.request("GET", "/v1/sys/health")
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"OpenBao did not start; see {self.dir}/server.log")
                time.sleep(0.1)
        init = self.http.ok("PUT", "/v1/sys/init", {"secret_shares": 1, "secret_threshold": 1})
        self.http.ok("PUT", "/v1/sys/unseal", {"key": init["keys"][0]})
        while self.http.request("GET", "/v1/sys/health")[0] != 200:  # Raft elects itself leader
            if time.monotonic() > deadline:
                raise RuntimeError("OpenBao never became active")
            time.sleep(0.1)
        self.token = init["root_token"]
        self.auth = {"X-Vault-Token": self.token}
        self.http.ok("POST", "/v1/sys/mounts/secret", {"type": "kv", "options": {"version": "2"}}, headers=self.auth)
        self.http.ok("POST", "/v1/sys/mounts/transit", {"type": "transit"}, headers=self.auth)
        return self

    def kv_put(self, name, value):
        deadline = time.monotonic() + 30
        while True:  # a new KV v2 mount answers 400 "upgrading" for a moment
            status, payload = self.http.request("POST", f"/v1/secret/data/{name}", {"data": {"value": value}},
                                                headers=self.auth)
            if status < 300:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"KV v2 write failed: {status} {payload}")
            time.sleep(0.2)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- load ------------------------------------------------------------------------------------

def wrk(port, spec, seconds, connections, threads):
    """Runs wrk with bench/wrk/request.lua; returns its BENCH_RESULT plus the rate."""
    env = dict(os.environ)
    env.update({
        "BENCH_METHOD": spec.get("method", "GET"), "BENCH_PATH": spec["path"],
        "BENCH_N": str(spec.get("n", 1)), "BENCH_FOLLOW": "1" if spec.get("follow") else "0",
    })
    for key, var in (("body", "BENCH_BODY"), ("host", "BENCH_HOST"), ("auth", "BENCH_AUTH")):
        if spec.get(key) is not None:
            env[var] = spec[key]
        else:
            env.pop(var, None)
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s",
         "-s", str(LUA), f"https://127.0.0.1:{port}"],
        env=env, capture_output=True, text=True, timeout=seconds + 60,
    )
    line = next((l for l in out.stdout.splitlines() if l.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")
    r = json.loads(line[len("BENCH_RESULT "):])
    secs = r["duration_us"] / 1e6
    r["errors"] = r["failed"] + r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
    r["rate"] = (r["listings"] if spec.get("follow") else r["requests"]) / secs
    return r


def measure(server, spec, args, operation=None):
    """One workload against one server: a short warm-up, then the measured run with the
    server's CPU time and peak memory around it."""
    wrk(server.port, spec, 1, args.connections, args.threads)
    reset_peak_rss(server.pid)
    before = server.metrics() if operation and isinstance(server, Coffer) else None
    cpu0 = cpu_seconds(server.pid)
    r = wrk(server.port, spec, args.seconds, args.connections, args.threads)
    r["cpu_cores"] = (cpu_seconds(server.pid) - cpu0) / (r["duration_us"] / 1e6)
    r["peak_rss_mb"] = status_kb(server.pid, "VmHWM") / 1024
    if before is not None:
        r["metrics"] = server_side(before, server.metrics(), operation)
    if r["errors"]:
        log(f"  !! {r['errors']} failed requests")
    return r


# --- the run ---------------------------------------------------------------------------------

def setup_coffer(c, n_secrets):
    log("coffer: vaults, 1,000 secrets, keys")
    c.create_vault("bench")
    c.create_vault("writes")
    token = c.data_token()
    auth = {"Authorization": f"Bearer {token}"}
    host = c.host("bench")
    for i in range(n_secrets):
        c.http.ok("PUT", f"/secrets/s{i}?{API}", {"value": VALUE}, headers=auth, host=host)
    for name, body in (("ec256", {"kty": "EC", "crv": "P-256"}), ("rsa2048", {"kty": "RSA", "key_size": 2048}),
                       ("aes256", {"kty": "oct", "key_size": 256})):
        c.http.ok("POST", f"/keys/{name}/create?{API}", body, headers=auth, host=host)
    ct = c.http.ok("POST", f"/keys/rsa2048//encrypt?{API}", {"alg": "RSA-OAEP-256", "value": b64url(b"k" * 32)},
                   headers=auth, host=host)["value"]
    return token, ct


def setup_bao(b, n_secrets):
    log("openbao: KV v2 1,000 secrets, transit keys")
    for i in range(n_secrets):
        b.kv_put(f"s{i}", VALUE)
    for name, kind in (("ec256", "ecdsa-p256"), ("rsa2048", "rsa-2048"), ("aes256", "aes256-gcm96")):
        b.http.ok("POST", f"/v1/transit/keys/{name}", {"type": kind}, headers=b.auth)
    ct = b.http.ok("POST", "/v1/transit/encrypt/rsa2048", {"plaintext": base64.b64encode(b"k" * 32).decode()},
                   headers=b.auth)["data"]["ciphertext"]
    return ct


def workloads(c, token, c_ct, b, b_ct, n_secrets):
    digest = b64url(b"d" * 32)
    digest_std = base64.b64encode(b"d" * 32).decode()
    plain = b64url(b"p" * 128)
    plain_std = base64.b64encode(b"p" * 128).decode()
    ca = {"host": c.host("bench"), "auth": f"Authorization: Bearer {token}"}
    ba = {"auth": f"X-Vault-Token: {b.token}"} if b else {}
    kv_value = json.dumps({"data": {"value": VALUE}})
    return [
        ("get", "Secret GET / KV v2 read", "SecretGet", None,
         dict(ca, path=f"/secrets/s{{n}}?{API}", n=n_secrets),
         dict(ba, path="/v1/secret/data/s{n}", n=n_secrets)),
        ("set", "Secret SET / KV v2 write (durable)", "SecretSet", None,
         dict(ca, host=c.host("writes"), method="PUT", path=f"/secrets/w{{n}}?{API}",
              body=json.dumps({"value": VALUE}), n=1000),
         dict(ba, method="POST", path="/v1/secret/data/w{n}", body=kv_value, n=1000)),
        ("p256_sign", "P-256 sign (ES256 / transit sign)", "KeySign", "p256_sign",
         dict(ca, method="POST", path=f"/keys/ec256//sign?{API}", body=json.dumps({"alg": "ES256", "value": digest})),
         dict(ba, method="POST", path="/v1/transit/sign/ec256/sha2-256",
              body=json.dumps({"input": digest_std, "prehashed": True}))),
        ("rsa_sign", "RSA-2048 sign (RS256 / transit sign)", "KeySign", "rsa2048_sign",
         dict(ca, method="POST", path=f"/keys/rsa2048//sign?{API}", body=json.dumps({"alg": "RS256", "value": digest})),
         dict(ba, method="POST", path="/v1/transit/sign/rsa2048/sha2-256",
              body=json.dumps({"input": digest_std, "prehashed": True, "signature_algorithm": "pkcs1v15"}))),
        ("rsa_decrypt", "RSA-2048 decrypt (RSA-OAEP-256 / transit decrypt)", "KeyDecrypt", "rsa2048_decrypt_oaep256",
         dict(ca, method="POST", path=f"/keys/rsa2048//decrypt?{API}",
              body=json.dumps({"alg": "RSA-OAEP-256", "value": c_ct})),
         dict(ba, method="POST", path="/v1/transit/decrypt/rsa2048", body=json.dumps({"ciphertext": b_ct}))),
        ("aes_encrypt", "AES-256-GCM encrypt, 128 bytes (oct key / transit encrypt)", "KeyEncrypt",
         "aes256gcm_encrypt",
         dict(ca, method="POST", path=f"/keys/aes256//encrypt?{API}", body=json.dumps({"alg": "A256GCM", "value": plain})),
         dict(ba, method="POST", path="/v1/transit/encrypt/aes256", body=json.dumps({"plaintext": plain_std}))),
        ("list", "List 1,000 secrets (whole listing; Coffer pages of 25)", "SecretList", None,
         dict(ca, path=f"/secrets?{API}&maxresults=25", follow=True),
         dict(ba, path="/v1/secret/metadata/?list=true")),
    ]


def fmt(x, digits=0):
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


def latency_cells(r):
    """A run's `req/s | p50 ms | p99 ms` table cells."""
    return f"{fmt(r['rate'])} | {fmt(r['p50_us'] / 1000, 2)} | {fmt(r['p99_us'] / 1000, 2)}"


def ratio(a, b):
    return a / b if a and b else None


def targets(results, raw, floor, scale, unaudited):
    """The issue's table: each target with what this run measured and whether it is met."""
    by_id = {w["id"]: w for w in results}

    def vs_bao(wid):
        w = by_id.get(wid)
        return ratio(w["coffer"]["rate"], w.get("openbao") and w["openbao"]["rate"]) if w else None

    def vs_limit(wid):
        w = by_id.get(wid)
        raw_rate = w and w["raw"] and raw.get(w["raw"])
        return ratio(w["coffer"]["rate"], 1 / (1 / floor["rate"] + 1 / raw_rate)) if raw_rate else None

    def p99(wid):
        w = by_id.get(wid)
        return w and w["coffer"]["p99_us"] / 1000

    out = []

    def row(what, measured, target, met):
        out.append(f"| {what} | {measured} | {target} | {'–' if met is None else ('met' if met else 'missed')} |")

    get_bao, get_p99 = vs_bao("get"), p99("get")
    row("secret GET vs OpenBao KV v2 read", f"{fmt(get_bao, 2)}×, p99 {fmt(get_p99, 2)} ms", "≥ 5×, p99 ≤ 5 ms",
        None if get_bao is None else get_bao >= 5 and get_p99 <= 5)
    set_bao = vs_bao("set")
    row("secret SET (durable) vs KV v2 write", f"{fmt(set_bao, 2)}×", "≥ 2×", None if set_bao is None else set_bao >= 2)
    p256 = vs_limit("p256_sign")
    row("P-256 sign vs limit", fmt(p256, 2), "≥ 0.5", None if p256 is None else p256 >= 0.5)
    rsa = [x for x in (vs_limit("rsa_sign"), vs_limit("rsa_decrypt")) if x is not None]
    row("RSA-2048 sign / decrypt vs limit", " / ".join(fmt(x, 2) for x in rsa) or "–", "≥ 0.8",
        min(rsa) >= 0.8 if rsa else None)
    if len(scale) == 2:
        change = scale[1]["p50_us"] / scale[0]["p50_us"] - 1
        row(f"GET p50, {scale[0]['secrets']:,} → {scale[1]['secrets']:,} secrets", f"{change * 100:+.0f} %",
            "flat (±10 %)", abs(change) <= 0.10)
    else:
        row("GET p50, 10 → 1,000,000 secrets", "not run", "flat (±10 %)", None)
    get = by_id.get("get")
    audited = ratio(get and get["coffer"]["rate"], unaudited and unaudited["rate"])
    row("audited / unaudited GET throughput", fmt(audited, 2), "≥ 0.9", None if audited is None else audited >= 0.9)
    worst = max(((w["coffer"]["p99_us"] / 1000, w["id"]) for w in results), default=None)
    row("p99 of any workload at 16 connections", f"{fmt(worst[0], 2)} ms ({worst[1]})" if worst else "–", "≤ 20 ms",
        None if worst is None else worst[0] <= 20)
    listing = vs_bao("list")
    row("listing 1,000 secrets vs OpenBao LIST", f"{fmt(listing, 2)}×", "≥ 1×", None if listing is None else listing >= 1)
    return out


def report(results, raw, floor, scale, args, versions, shamir_get=None, hsm_rows=(), unaudited=None):
    rows = []
    rows.append(f"# Coffer benchmark — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    rows.append(f"{os.cpu_count()} cores, shared by the servers and the load generator (wrk, {args.threads} "
                f"thread(s), {args.connections} connections, keep-alive, {args.seconds} s per run). "
                f"{versions}. Coffer: embedded SQLite store, TLS, audit log (store + file, fsync'd). "
                f"OpenBao: TLS, integrated storage (Raft, one node; 2.7 has no file backend), file audit device, KV v2, transit.\n")
    rows.append(f"Raw limits (same run): bare TLS request on Coffer's stack {fmt(floor['rate'])} req/s "
                f"(p50 {fmt(floor['p50_us'] / 1000, 2)} ms, p99 {fmt(floor['p99_us'] / 1000, 2)} ms); "
                f"in-process aws-lc-rs on {raw['threads']} threads: "
                + ", ".join(f"{k} {fmt(v)}/s" for k, v in raw.items() if k not in ("threads", "seconds")) + ".\n")
    rows.append("`raw` is the crypto alone; `limit` is a bare TLS request plus the crypto "
                "(1 / (1/floor + 1/raw)), what an HTTPS server could at best do on these cores.\n")
    rows.append("| workload | server | req/s | p50 ms | p99 ms | CPU (cores) | peak RSS MB | Coffer/OpenBao | Coffer/raw | Coffer/limit |")
    rows.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for w in results:
        c, b = w["coffer"], w.get("openbao")
        raw_rate = raw.get(w["raw"]) if w["raw"] else None
        limit = 1 / (1 / floor["rate"] + 1 / raw_rate) if raw_rate else None
        c_p99 = c["p99_us"] / 1000
        rows.append(f"| {w['title']} | Coffer | {fmt(c['rate'])} | {fmt(c['p50_us'] / 1000, 2)} | {fmt(c_p99, 2)} | "
                    f"{fmt(c['cpu_cores'], 2)} | {fmt(c['peak_rss_mb'])} | "
                    f"**{fmt(ratio(c['rate'], b and b['rate']), 2)}** | {fmt(ratio(c['rate'], raw_rate), 2)} | "
                    f"{fmt(ratio(c['rate'], limit), 2)} |")
        if b:
            rows.append(f"| | OpenBao | {fmt(b['rate'])} | {fmt(b['p50_us'] / 1000, 2)} | {fmt(b['p99_us'] / 1000, 2)} | "
                        f"{fmt(b['cpu_cores'], 2)} | {fmt(b['peak_rss_mb'])} | | | |")
    errors = [f"{w['id']} ({s}): {w[s]['errors']}" for w in results for s in ("coffer", "openbao")
              if w.get(s) and w[s]["errors"]]
    rows.append("")
    rows.append("Failed requests: " + (", ".join(errors) if errors else "none") + ".")
    srv = [f"{w['id']} {fmt(w['coffer']['metrics']['p99_le_ms'], 1)} ms"
           for w in results if w["coffer"].get("metrics", {}).get("p99_le_ms") is not None]
    if srv:
        rows.append("Coffer's own p99 (from /metrics, the histogram bucket holding the 99th percentile): "
                    + ", ".join(srv) + ".")
    dev_get = next((w["coffer"] for w in results if w["id"] == "get"), None)
    rows.append("\n## Targets (issue 19), this run\n")
    rows.append("| workload | measured | target | |")
    rows.append("|---|---|---|---|")
    rows.extend(targets(results, raw, floor, scale, unaudited))
    if unaudited:
        rows.append("\n## The audit log's cost: secret GET with it and without it (`--audit-disabled`)\n")
        rows.append("| secret GET | req/s | p50 ms | p99 ms | CPU (cores) |")
        rows.append("|---|---:|---:|---:|---:|")
        if dev_get:
            rows.append(f"| audited (store + file) | {latency_cells(dev_get)} | {fmt(dev_get['cpu_cores'], 2)} |")
        rows.append(f"| unaudited | {latency_cells(unaudited)} | {fmt(unaudited['cpu_cores'], 2)} |")
    if shamir_get:
        rows.append("\n## Production mode (Shamir seal, unsealed) against dev mode\n")
        rows.append("| secret GET | req/s | p50 ms | p99 ms | Shamir/dev |")
        rows.append("|---|---:|---:|---:|---:|")
        if dev_get:
            rows.append(f"| dev mode | {latency_cells(dev_get)} | |")
        rows.append(f"| Shamir-unsealed | {latency_cells(shamir_get)} | "
                    f"**{fmt(ratio(shamir_get['rate'], dev_get and dev_get['rate']), 2)}** |")
    if hsm_rows:
        rows.append("\n## Keys inside the HSM (SoftHSM2) against software keys, one PKCS#11-rooted server\n")
        rows.append("| sign | software req/s | HSM req/s | HSM p99 ms | HSM/software |")
        rows.append("|---|---:|---:|---:|---:|")
        for h in hsm_rows:
            rows.append(f"| {h['title']} | {fmt(h['software']['rate'])} | {fmt(h['HSM']['rate'])} | "
                        f"{fmt(h['HSM']['p99_us'] / 1000, 2)} | **{fmt(ratio(h['HSM']['rate'], h['software']['rate']), 2)}** |")
    if scale:
        rows.append("\n## Scale: one vault with 10 and with 1,000,000 secrets (Coffer)\n")
        rows.append("| secrets | GET req/s | p50 ms | p99 ms | peak RSS MB | start-up s | RSS after start-up MB |")
        rows.append("|---:|---:|---:|---:|---:|---:|---:|")
        for s in scale:
            rows.append(f"| {s['secrets']:,} | {fmt(s['rate'])} | {fmt(s['p50_us'] / 1000, 2)} | "
                        f"{fmt(s['p99_us'] / 1000, 2)} | {fmt(s['peak_rss_mb'])} | {fmt(s['startup_s'], 2)} | "
                        f"{fmt(s['startup_rss_mb'])} |")
        if len(scale) == 2:
            rows.append(f"\nSeeding {scale[1]['secrets']:,} secrets took {fmt(scale[1]['seed_s'])} s "
                        f"(straight into the store, bench/src/bin/seed.rs).")
    return "\n".join(rows) + "\n"


def get_on(server, procs, args):
    """The `get` workload against another Coffer server, started here with its own vaults and
    secrets, and stopped."""
    server.start()
    procs.append(server)
    token, _ = setup_coffer(server, args.secrets)
    spec = {"host": server.host("bench"), "auth": f"Authorization: Bearer {token}",
            "path": f"/secrets/s{{n}}?{API}", "n": args.secrets}
    result = measure(server, spec, args, "SecretGet")
    server.stop()
    procs.clear()
    return result


def scale_run(args, tmp, spec_for):
    """GET latency and memory with 10 secrets, then with --scale secrets, and start-up time."""
    out = []
    c = Coffer(tmp / "scale").start()
    try:
        c.create_vault("scale")
    finally:
        c.stop()
    seed = RELEASE / "seed-secrets"
    subprocess.run([str(seed), str(c.dir), "scale", "10"], check=True, capture_output=True)
    for total in (10, args.scale):
        if total > 10:
            log(f"scale: seeding {total - 10:,} more secrets")
            t0 = time.monotonic()
            subprocess.run([str(seed), str(c.dir), "scale", str(total - 10), "f", "10"], check=True)
            seed_s = time.monotonic() - t0
        else:
            seed_s = 0
        c.port = None
        c.start()
        try:
            startup_rss = status_kb(c.pid, "VmRSS") / 1024
            spec = spec_for(c, total)
            log(f"scale: GET with {total:,} secrets")
            r = measure(c, spec, args)
            out.append({"secrets": total, "startup_s": c.startup_seconds, "startup_rss_mb": startup_rss,
                        "seed_s": seed_s, **r})
        finally:
            c.stop()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=10, help="duration of each measured run")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1, help="wrk threads")
    ap.add_argument("--secrets", type=int, default=1000, help="secrets for GET and list")
    ap.add_argument("--scale", type=int, default=1_000_000, help="secrets in the scale run (0: skip it)")
    ap.add_argument("--only", help="comma-separated workload ids (get,set,p256_sign,rsa_sign,rsa_decrypt,aes_encrypt,list,unaudited_get,shamir_get,hsm_sign)")
    ap.add_argument("--no-openbao", action="store_true", help="Coffer and the raw limits only")
    ap.add_argument("--bao", default=os.environ.get("BAO_BIN"), help="the bao binary")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "latest.md"))
    args = ap.parse_args()

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="coffer-bench-"))
    procs = []
    try:
        log("raw limits (in-process aws-lc-rs)")
        raw = json.loads(subprocess.run([str(RELEASE / "raw-limits"), "3"], check=True, capture_output=True,
                                        text=True).stdout)
        c = Coffer(tmp / "coffer").start()
        procs.append(c)
        tls = c.dir / "tls"
        floor_proc = subprocess.Popen([str(RELEASE / "tls-floor"), str(tls / "server.pem"), str(tls / "server-key.pem")],
                                      stdout=subprocess.PIPE, text=True)
        floor_port = int(floor_proc.stdout.readline().rsplit(":", 1)[1])

        class Floor:
            port, pid = floor_port, floor_proc.pid

            @staticmethod
            def metrics():
                return {}

        log("bare TLS request (tls-floor)")
        floor = measure(Floor, {"path": "/"}, args)
        stop(floor_proc)

        b = b_ct = None
        versions = subprocess.run([str(RELEASE / "coffer"), "--version"], capture_output=True, text=True).stdout.strip()
        if not args.no_openbao:
            if not args.bao:
                raise SystemExit("no bao binary: run bench/run.sh, or pass --bao / BAO_BIN, or --no-openbao")
            b = OpenBao(args.bao, tmp / "openbao", tls / "server.pem", tls / "server-key.pem", tls / "ca.pem").start()
            procs.append(b)
            versions += ", " + subprocess.run([args.bao, "version"], capture_output=True, text=True).stdout.strip()
            b_ct = setup_bao(b, args.secrets)
        token, c_ct = setup_coffer(c, args.secrets)

        only = set(args.only.split(",")) if args.only else None
        results = []
        for wid, title, operation, raw_key, c_spec, b_spec in workloads(c, token, c_ct, b, b_ct, args.secrets):
            if only and wid not in only:
                continue
            log(f"{wid}: coffer")
            row = {"id": wid, "title": title, "raw": raw_key, "coffer": measure(c, c_spec, args, operation)}
            if b:
                log(f"{wid}: openbao")
                row["openbao"] = measure(b, b_spec, args)
            results.append(row)
        for p in procs:
            p.stop()
        procs.clear()

        unaudited = None
        if not only or "unaudited_get" in only:
            log("get: coffer with --audit-disabled (the audit log's cost)")
            unaudited = get_on(Coffer(tmp / "coffer-unaudited", ["--audit-disabled"]), procs, args)

        sealed_get = None
        if not only or "shamir_get" in only:
            log("get: coffer, Shamir-unsealed production mode (against dev mode's get above)")
            sealed_get = get_on(ShamirCoffer(tmp / "coffer-shamir", tls), procs, args)

        hsm_rows = []
        if (not only or "hsm_sign" in only) and os.path.exists("/usr/lib/softhsm/libsofthsm2.so"):
            log("hsm_sign: RSA-HSM and EC-HSM on SoftHSM against the same software types, one server")
            hc = ShamirCoffer(tmp / "coffer-hsm", tls, softhsm=True).start()
            procs.append(hc)
            hc.create_vault("bench")
            h_token = hc.data_token()
            auth = {"Authorization": f"Bearer {h_token}"}
            for name, body in (("ec256", {"kty": "EC", "crv": "P-256"}), ("rsa2048", {"kty": "RSA", "key_size": 2048}),
                               ("ec256hsm", {"kty": "EC-HSM", "crv": "P-256"}),
                               ("rsa2048hsm", {"kty": "RSA-HSM", "key_size": 2048})):
                hc.http.ok("POST", f"/keys/{name}/create?{API}", body, headers=auth, host=hc.host("bench"))
            digest = b64url(b"d" * 32)
            for label, key, alg in (("P-256 sign (ES256)", "ec256", "ES256"), ("RSA-2048 sign (RS256)", "rsa2048", "RS256")):
                rates = {}
                for kind, name in (("software", key), ("HSM", key + "hsm")):
                    spec = {"host": hc.host("bench"), "auth": f"Authorization: Bearer {h_token}", "method": "POST",
                            "path": f"/keys/{name}//sign?{API}", "body": json.dumps({"alg": alg, "value": digest})}
                    rates[kind] = measure(hc, spec, args, "KeySign")
                hsm_rows.append({"title": label, **rates})
            hc.stop()
            procs.clear()

        scale = []
        if args.scale:
            def spec_for(server, total):
                return {"host": server.host("scale"), "auth": f"Authorization: Bearer {server.data_token()}",
                        "path": f"/secrets/f{{n}}?{API}", "n": total}
            scale = scale_run(args, tmp, spec_for)

        text = report(results, raw, floor, scale, args, versions, sealed_get, hsm_rows, unaudited)
        out = pathlib.Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        out.with_suffix(".json").write_text(json.dumps(
            {"raw": raw, "floor": floor, "workloads": results, "scale": scale, "shamir_get": sealed_get,
             "hsm_sign": hsm_rows, "unaudited_get": unaudited}, indent=1))
        print(text)
        log(f"written to {out}")
    finally:
        for p in procs:
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
