"""Production mode as an operator meets it: a TOML config with the operator's own TLS
certificate, a sealed start, `coffer operator init|unseal|status|seal`, and the official SDKs
against the unsealed server. Nothing secret is left on disk, in the config, the environment or
the log."""
import datetime
import json
import os
import queue
import signal
import ssl
import socket
import subprocess
import tempfile
import threading
import time

import pytest
import requests
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import BIN


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_tls(dir, cn="Hospital Test CA"):
    """A CA and a server certificate for localhost and *.vault.localhost, as an operator's PKI
    would issue them: ca.pem, server.pem (chain, leaf first), server.key."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName("localhost"), x509.DNSName("vault.localhost"), x509.DNSName("*.vault.localhost")]
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)
    paths = {name: os.path.join(dir, name) for name in ("ca.pem", "server.pem", "server.key")}
    with open(paths["ca.pem"], "wb") as f:
        f.write(pem(ca))
    with open(paths["server.pem"], "wb") as f:
        f.write(pem(leaf) + pem(ca))
    with open(paths["server.key"], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(paths["server.key"], 0o600)
    return paths, leaf


class ProductionServer:
    def __init__(self, root):
        self.root = root
        self.data_dir = os.path.join(root, "data")
        self.tls, self.leaf = make_tls(root)
        self.port = free_port()
        self.config = os.path.join(root, "coffer.toml")
        with open(self.config, "w") as f:
            f.write(f'listen = "127.0.0.1:{self.port}"\n'
                    f'data_dir = "{self.data_dir}"\n'
                    f'dns_suffix = "vault.localhost"\n'
                    f'[tls]\ncert_file = "{self.tls["server.pem"]}"\nkey_file = "{self.tls["server.key"]}"\n'
                    f'[seal]\ntype = "shamir"\n')
        self.log_path = os.path.join(root, "server.log")
        self.proc = None
        self.server = f"https://localhost:{self.port}"

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith("COFFER_")}
        env.update({"COFFER_SERVER": self.server, "COFFER_CA_FILE": self.tls["ca.pem"]}, **extra)
        return env

    def start(self, extra_env=None):
        log = open(self.log_path, "ab")

        def allow_core_dumps():
            # As a careless shell would: the server must turn core dumps off itself.
            import resource
            resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

        self.proc = subprocess.Popen([BIN, "serve", "--config", self.config], stdout=log, stderr=log,
                                     env=self.env(**(extra_env or {})), preexec_fn=allow_core_dumps)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"coffer exited {self.proc.returncode}; see {self.log_path}")
            try:
                requests.get(f"{self.server}/healthz", verify=self.tls["ca.pem"], timeout=2)
                return self
            except requests.exceptions.ConnectionError:
                time.sleep(0.2)
        raise RuntimeError("coffer did not start listening")

    def stop(self, kill=False):
        if self.proc and self.proc.poll() is None:
            (self.proc.kill if kill else self.proc.terminate)()
            self.proc.wait(timeout=30)

    def cli(self, *args, input=None, **env):
        return subprocess.run([BIN, *args], env=self.env(**env), capture_output=True, text=True, input=input,
                              timeout=120)

    def cli_json(self, *args, input=None, **env):
        r = self.cli(*args, input=input, **env)
        assert r.returncode == 0, f"coffer {' '.join(args)} failed ({r.returncode}): {r.stderr}"
        return json.loads(r.stdout)

    def get(self, path, host=None, **kw):
        url = f"https://{host or 'localhost'}:{self.port}{path}"
        return requests.get(url, verify=self.tls["ca.pem"], timeout=30, **kw)


@pytest.fixture
def prod():
    root = tempfile.mkdtemp(prefix="coffer-prod-")
    s = ProductionServer(root)
    yield s
    s.stop()


def unseal(s, shares):
    status = None
    for share in shares:
        status = s.cli_json("operator", "unseal", input=share + "\n")
    return status


def admin_credential(s, init):
    """The bootstrap administrator `init` printed, as an SDK credential for the server `s`."""
    return ClientSecretCredential(init["tenant_id"], init["client_id"], init["client_secret"], authority=s.server,
                                  disable_instance_discovery=True, connection_verify=s.tls["ca.pem"])


def admin_env(init):
    return {"COFFER_TENANT_ID": init["tenant_id"], "COFFER_CLIENT_ID": init["client_id"],
            "COFFER_CLIENT_SECRET": init["client_secret"]}


def assert_sealed_everywhere(s, code="VaultSealed"):
    """Every surface answers 503 in Azure's shape; health says sealed; the portal a page."""
    for path, host in [("/subscriptions?api-version=2023-07-01", None), ("/directory/principals", None),
                       ("/organizations/oauth2/v2.0/token", None),
                       ("/secrets/x?api-version=7.6", "ward.vault.localhost")]:
        r = s.get(path, host=host)
        assert r.status_code == 503, (path, r.status_code, r.text)
        assert r.json()["error"]["code"] == code, r.text
    r = s.get("/portal/login")
    assert r.status_code == 503 and "sealed" in r.text.lower()
    health = s.get("/healthz")
    assert health.status_code == 503


def test_init_unseal_serve_seal_and_restart(prod):
    s = prod.start()
    status = s.cli_json("operator", "status")
    assert status == {"sealed": True, "initialized": False, "threshold": 0, "shares": 0, "progress": 0,
                      "provider": "shamir"}
    assert_sealed_everywhere(s, code="VaultNotInitialized")
    assert s.get("/healthz").json()["status"] == "uninitialized"

    # Bad splits are refused with the reason; the good one prints the shares once.
    r = s.cli("operator", "init", "--key-shares", "2", "--key-threshold", "3")
    assert r.returncode == 2 and "threshold" in r.stderr
    init = s.cli_json("operator", "init", "--key-shares", "5", "--key-threshold", "3")
    assert len(init["shares"]) == 5 and init["threshold"] == 3 and len(set(init["shares"])) == 5
    assert init["server"] == s.server
    assert s.cli("operator", "init").returncode == 2, "a second init is refused"
    assert s.get("/healthz").json()["status"] == "sealed"
    assert_sealed_everywhere(s)

    # Shares in any order, progress shown; a malformed share, a repeated one and a share of
    # another initialisation are refused with a clear error and do not count.
    shares = init["shares"]
    st = s.cli_json("operator", "unseal", input=shares[3] + "\n")
    assert (st["sealed"], st["progress"], st["threshold"]) == (True, 1, 3)
    r = s.cli("operator", "unseal", input=shares[3] + "\n")
    assert r.returncode == 2 and "already entered" in r.stderr
    r = s.cli("operator", "unseal", input="not-a-share\n")
    assert r.returncode == 2 and "not a Coffer key share" in r.stderr
    other = ProductionServer(tempfile.mkdtemp(prefix="coffer-prod-other-"))
    try:
        other.start()
        foreign = other.cli_json("operator", "init", "--key-shares", "3", "--key-threshold", "2")["shares"][0]
    finally:
        other.stop()
    r = s.cli("operator", "unseal", input=foreign + "\n")
    assert r.returncode == 2 and "another initialisation" in r.stderr
    assert s.cli_json("operator", "status")["progress"] == 1
    # --reset forgets what was entered.
    assert s.cli_json("operator", "unseal", "--reset")["progress"] == 0
    st = unseal(s, [shares[4], shares[0], shares[2]])
    assert st["sealed"] is False and st["progress"] == 0
    assert s.get("/healthz").status_code == 200

    # The bootstrap administrator works with the CLI and the official SDK.
    env = admin_env(init)
    vault = s.cli_json("vault", "create", "--name", "ward", **env)
    assert vault["properties"]["vaultUri"].startswith("https://ward.vault.localhost:")
    credential = ClientSecretCredential(init["tenant_id"], init["client_id"], init["client_secret"],
                                        authority=s.server, disable_instance_discovery=True,
                                        connection_verify=s.tls["ca.pem"])
    client = SecretClient(f"https://ward.vault.localhost:{s.port}", credential, connection_verify=s.tls["ca.pem"])
    marker = "marker-" + os.urandom(8).hex()
    client.set_secret("patient-db", marker)
    assert client.get_secret("patient-db").value == marker

    # Seal: needs a tenant administrator; then everything is 503 again.
    r = s.cli("operator", "seal")
    assert r.returncode == 1, "no credentials: a usage error"
    sealed = s.cli_json("operator", "seal", **env)
    assert sealed["sealed"] is True and sealed["progress"] == 0
    assert_sealed_everywhere(s)
    with pytest.raises(Exception):
        client.get_secret("patient-db")

    # Unseal again: the data is all there; a restart starts sealed.
    unseal(s, shares[:3])
    assert client.get_secret("patient-db").value == marker
    s.stop()
    s.start()
    assert s.cli_json("operator", "status")["sealed"] is True
    unseal(s, shares[1:4])
    assert client.get_secret("patient-db").value == marker
    # The unseals are in the audit log, under the system's name.
    r = s.cli("audit", "query", "--operation", "OperatorUnseal", **env)
    assert r.returncode == 0, r.stderr
    assert len([l for l in r.stdout.splitlines() if l.strip()]) >= 2

    # Nothing secret in clear: not the value, a share, the client secret or the root key, in
    # the data directory, the config, the server's environment or its log.
    s.stop()
    wanted = [marker.encode(), init["client_secret"].encode()] + [sh.encode() for sh in shares]
    files = [os.path.join(d, f) for d, _, fs in os.walk(s.data_dir) for f in fs] + [s.config, s.log_path]
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        for w in wanted:
            assert w not in data, f"{w[:12]!r}… found in {path}"
    assert not os.path.exists(os.path.join(s.data_dir, "root.key"))


def test_the_server_process_holds_no_secret_in_its_environment_and_turns_core_dumps_off(prod):
    s = prod.start()
    init = s.cli_json("operator", "init", "--key-shares", "1", "--key-threshold", "1")
    unseal(s, init["shares"])
    pid = s.proc.pid
    with open(f"/proc/{pid}/environ", "rb") as f:
        environ = f.read()
    assert init["shares"][0].encode() not in environ and init["client_secret"].encode() not in environ
    with open(f"/proc/{pid}/limits") as f:
        core = [l for l in f if l.startswith("Max core file size")][0].split()
    assert core[4] == "0" and core[5] == "0", core


def test_bad_configuration_is_refused_at_start_with_the_key_named(prod):
    with open(prod.config) as f:
        good = f.read()

    def refused(extra="", **env):
        with open(prod.config, "w") as f:
            f.write(good + extra)
        r = subprocess.run([BIN, "serve", "--config", prod.config], capture_output=True, text=True, timeout=60,
                           env=prod.env(**env))
        return r.returncode, r.stderr

    code, err = refused("[audit]\nretention_dayz = 3\n")
    assert code == 1 and "unknown setting 'audit.retention_dayz'" in err, err
    code, err = refused(COFFER_LISTEN="not-an-address")
    assert code == 1 and "'listen' from COFFER_LISTEN" in err, err
    code, err = refused(COFFER_SEAL_TYPE="magic")
    assert code == 1 and "'seal.type' from COFFER_SEAL_TYPE" in err, err
    code, err = refused(COFFER_TLS_KEY_FILE="/nonexistent/server.key")
    assert code == 1 and "tls.key_file" in err and "/nonexistent/server.key" in err, err
    r = subprocess.run([BIN, "serve"], capture_output=True, text=True, timeout=60, env=prod.env())
    assert r.returncode == 1 and "--config" in r.stderr
    # A dev data directory is not opened in production mode.
    os.makedirs(prod.data_dir, exist_ok=True)
    with open(os.path.join(prod.data_dir, "root.key"), "wb") as f:
        f.write(os.urandom(32))
    code, err = refused()
    assert code != 0 and "dev data directory" in err, err


def test_the_certificate_is_reloaded_on_sighup_without_dropping_connections(prod):
    s = prod.start()
    ctx = ssl.create_default_context(cafile=s.tls["ca.pem"])
    held = ctx.wrap_socket(socket.create_connection(("127.0.0.1", s.port)), server_hostname="localhost")
    first = x509.load_der_x509_certificate(held.getpeercert(binary_form=True))
    assert first.serial_number == s.leaf.serial_number
    # The operator's PKI issues a new certificate (a new CA here) into the same files.
    new_paths, new_leaf = make_tls(tempfile.mkdtemp(prefix="coffer-tls-"), cn="Hospital Test CA 2")
    for name in ("server.pem", "server.key"):
        with open(new_paths[name], "rb") as src, open(s.tls[name], "wb") as dst:
            dst.write(src.read())
    os.kill(s.proc.pid, signal.SIGHUP)
    deadline, seen = time.time() + 10, None
    while time.time() < deadline:
        ctx2 = ssl.create_default_context(cafile=new_paths["ca.pem"])
        try:
            with ctx2.wrap_socket(socket.create_connection(("127.0.0.1", s.port)), server_hostname="localhost") as c:
                seen = x509.load_der_x509_certificate(c.getpeercert(binary_form=True)).serial_number
                break
        except ssl.SSLError:
            time.sleep(0.2)
    assert seen == new_leaf.serial_number
    # The connection opened before the reload still works.
    held.sendall(b"GET /operator/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    reply = held.recv(4096)
    assert reply.startswith(b"HTTP/1.1 200"), reply[:64]
    held.close()


def test_a_dev_server_reports_its_provider_and_cannot_be_sealed(coffer):
    status = coffer.cli_json("operator", "status")
    assert status["provider"] == "dev" and status["sealed"] is False and status["initialized"] is True
    r = coffer.cli("operator", "seal")
    assert r.returncode == 2 and "no seal" in r.stderr
    assert coffer.cli("operator", "init").returncode == 2


def test_rekey_changes_the_split_only_once_the_new_shares_are_shown(prod):
    s = prod.start()
    init = s.cli_json("operator", "init", "--key-shares", "3", "--key-threshold", "2")
    old = init["shares"]
    env = admin_env(init)
    # Sealed: no rekey (it could not be audited).
    r = s.cli("operator", "rekey", input="\n".join(old[:2]) + "\n")
    assert r.returncode == 2 and "sealed" in r.stderr
    unseal(s, old[:2])
    s.cli_json("vault", "create", "--name", "ward", **env)
    s.cli_json("secret", "set", "--vault-name", "ward", "--name", "a", "--value", "kept", **env)
    r = s.cli("operator", "rekey", "--key-shares", "5", "--key-threshold", "3", input=old[0] + "\n")
    assert r.returncode == 2 and "2 key shares are needed, 1 were given" in r.stderr
    made = s.cli_json("operator", "rekey", "--key-shares", "5", "--key-threshold", "3",
                      input="\n".join(old[1:3]) + "\n")
    new = made["shares"]
    assert len(new) == 5 and made["threshold"] == 3 and made["verified"] is False
    # Killed before the verification: the old shares still unseal, the new ones do not yet.
    s.stop(kill=True)
    s.start()
    assert s.cli_json("operator", "status")["threshold"] == 2
    r = s.cli("operator", "unseal", input=new[0] + "\n")
    assert r.returncode == 2 and "another initialisation" in r.stderr
    unseal(s, old[:2])
    r = s.cli("operator", "rekey", "--verify", input="\n".join(new[:2]) + "\n")
    assert r.returncode == 2 and "3 key shares are needed" in r.stderr
    done = s.cli_json("operator", "rekey", "--verify", input="\n".join(new[2:5]) + "\n")
    assert done["verified"] is True and done["threshold"] == 3
    status = s.cli_json("operator", "status")
    assert (status["threshold"], status["shares"]) == (3, 5)
    # Now only the new shares unseal; the data is unchanged.
    s.cli_json("operator", "seal", **env)
    r = s.cli("operator", "unseal", input=old[0] + "\n")
    assert r.returncode == 2 and "another initialisation" in r.stderr
    unseal(s, [new[4], new[1], new[3]])
    assert s.cli_json("secret", "show", "--vault-name", "ward", "--name", "a", **env)["value"] == "kept"
    r = s.cli("audit", "query", "--operation", "OperatorRekey", **env)
    assert len([l for l in r.stdout.splitlines() if l.strip()]) == 2, r.stdout


def test_an_init_that_stopped_before_its_seal_file_is_done_again_but_vaults_are_never_orphaned(prod):
    s = prod.start()
    s.cli_json("operator", "init", "--key-shares", "1", "--key-threshold", "1")
    # As if the process had died after the database writes, before the seal file.
    s.stop(kill=True)
    os.remove(os.path.join(s.data_dir, "seal.json"))
    s.start()
    again = s.cli_json("operator", "init", "--key-shares", "1", "--key-threshold", "1")
    unseal(s, again["shares"])
    s.cli_json("vault", "create", "--name", "ward", **admin_env(again))
    # With a vault, a lost seal file is not papered over by a new root key.
    s.stop()
    os.remove(os.path.join(s.data_dir, "seal.json"))
    s.start()
    r = s.cli("operator", "init")
    assert r.returncode == 2 and "restore it from your backup" in r.stderr


def test_kill_9_during_unseal_after_seal_and_during_rekey_loses_nothing(prod):
    s = prod.start()
    init = s.cli_json("operator", "init", "--key-shares", "3", "--key-threshold", "2")
    shares, env = init["shares"], admin_env(init)
    unseal(s, shares[:2])
    s.cli_json("vault", "create", "--name", "ward", **env)
    s.cli_json("secret", "set", "--vault-name", "ward", "--name", "a", "--value", "v1", **env)
    # Killed half-way through an unseal: the shares entered are gone with the process (they
    # were only in memory); the next start is sealed with no progress.
    s.cli_json("operator", "seal", **env)
    assert s.cli_json("operator", "unseal", input=shares[2] + "\n")["progress"] == 1
    s.stop(kill=True)
    s.start()
    status = s.cli_json("operator", "status")
    assert (status["sealed"], status["progress"]) == (True, 0)
    unseal(s, [shares[2], shares[0]])
    assert s.cli_json("secret", "show", "--vault-name", "ward", "--name", "a", **env)["value"] == "v1"
    # Killed right after a seal: still sealed at the next start, the data intact.
    s.cli_json("operator", "seal", **env)
    s.stop(kill=True)
    s.start()
    assert s.cli_json("operator", "status")["sealed"] is True
    unseal(s, shares[1:])
    assert s.cli_json("secret", "show", "--vault-name", "ward", "--name", "a", **env)["value"] == "v1"
    # Killed in the middle of a rekey (new shares made, not verified): the old shares still
    # unseal, and the pending split can still be verified after the restart.
    made = s.cli_json("operator", "rekey", "--key-shares", "2", "--key-threshold", "2",
                      input="\n".join(shares[:2]) + "\n")
    s.stop(kill=True)
    s.start()
    unseal(s, shares[:2])
    assert s.cli_json("operator", "rekey", "--verify", input="\n".join(made["shares"]) + "\n")["verified"] is True
    s.stop(kill=True)
    s.start()
    r = s.cli("operator", "unseal", input=shares[0] + "\n")
    assert r.returncode == 2 and "another initialisation" in r.stderr
    unseal(s, made["shares"])
    assert s.cli_json("secret", "show", "--vault-name", "ward", "--name", "a", **env)["value"] == "v1"
    assert s.cli("audit", "verify", **env).returncode == 0
