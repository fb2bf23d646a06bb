"""Harness for the compatibility tests: the real `coffer` binary, over TLS, driven by the
official Azure SDKs. `*.localhost` names resolve to 127.0.0.1 here (glibc does not)."""
import json
import os
import pathlib
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("COFFER_BIN") or str(ROOT / "target" / "debug" / "coffer")

_real_getaddrinfo = socket.getaddrinfo


def _getaddrinfo(host, *args, **kwargs):
    if isinstance(host, bytes):
        host = host.decode()
    if isinstance(host, str) and (host == "localhost" or host.endswith(".localhost")):
        host = "127.0.0.1"
    return _real_getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _getaddrinfo


class CofferServer:
    """One `coffer serve --dev` process on a data directory."""

    def __init__(self, data_dir, extra=(), log_dir=None, wrapper=(), start_timeout=60):
        self.data_dir = str(data_dir)
        self.extra = list(extra)
        # A command the server runs under (bench/instructions.py: valgrind), and how long its
        # start may take.
        self.wrapper = list(wrapper)
        self.start_timeout = start_timeout
        self.proc = None
        self.creds = None
        self.log_path = os.path.join(log_dir or self.data_dir, "server.log")
        self.log = open(self.log_path, "ab")

    def start(self, port=0):
        self.proc = subprocess.Popen(
            [*self.wrapper, BIN, "serve", "--dev", "--data-dir", self.data_dir, "--listen", f"127.0.0.1:{port}",
             *self.extra],
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in self.proc.stdout], daemon=True).start()
        exports, deadline = {}, time.time() + self.start_timeout
        while len(exports) < 5:
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"coffer did not start; see {self.log_path}")
            try:
                line = lines.get(timeout=1).decode().strip()
            except queue.Empty:
                continue
            if line.startswith("export "):
                k, v = line[len("export "):].split("=", 1)
                exports[k] = v
        with open(os.path.join(self.data_dir, "dev-credentials.json")) as f:
            self.creds = json.load(f)
        self.exports = exports
        self.port = int(self.creds["server"].rsplit(":", 1)[1])
        return self

    def stop(self, kill=False):
        if self.proc and self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            self.proc.wait(timeout=30)

    @property
    def server(self):
        return self.creds["server"]

    def vault_url(self, name):
        return f"https://{name}.vault.localhost:{self.port}"

    def env(self):
        env = dict(os.environ)
        env.update(self.exports)
        return env

    def cli(self, *args, input=None):
        return subprocess.run([BIN, *args], env=self.env(), capture_output=True, text=True, input=input, timeout=120)

    def cli_json(self, *args):
        r = self.cli(*args)
        assert r.returncode == 0, f"coffer {' '.join(args)} failed ({r.returncode}): {r.stderr}"
        return json.loads(r.stdout) if r.stdout.strip() else None

    def credential(self):
        from azure.identity import ClientSecretCredential

        return ClientSecretCredential(
            self.creds["tenant_id"], self.creds["client_id"], self.creds["client_secret"],
            authority=self.server, disable_instance_discovery=True, connection_verify=self.creds["ca_file"],
        )

    def async_credential(self):
        from azure.identity.aio import ClientSecretCredential

        return ClientSecretCredential(
            self.creds["tenant_id"], self.creds["client_id"], self.creds["client_secret"],
            authority=self.server, disable_instance_discovery=True,
        )

    def token(self, resource=None):
        """A raw access token (for requests the SDK cannot make)."""
        resource = resource or f"https://vault.localhost:{self.port}"
        return self.credential().get_token(f"{resource}/.default").token

    def new_user(self, name, password, *extra):
        """A user with a password (`coffer principal create --type user`): its object id."""
        r = self.cli("principal", "create", "--type", "user", "--name", name, "--password-stdin", *extra,
                     input=password + "\n")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["object_id"]

    def portal_session(self, name, password):
        """A `requests` session signed in to the portal as the user `name`."""
        import re

        import requests

        web = requests.Session()
        web.verify = self.creds["ca_file"]
        page = web.get(f"{self.server}/portal/login", timeout=10)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        r = web.post(f"{self.server}/portal/login", data={"csrf": csrf, "username": name, "password": password},
                     headers={"Origin": self.server}, allow_redirects=False, timeout=30)
        assert r.status_code in (302, 303), r.text
        return web

    def new_vault(self, *extra):
        name = "v" + uuid.uuid4().hex[:12]
        self.cli_json("vault", "create", "--name", name, *extra)
        return name


def self_signed(common_name):
    """An RSA key and a self-signed certificate for it (an application's credential)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    return key, cert


def swap_link(link, target):
    """Points the symlink `link` at `target` atomically (to break or mend an audit sink)."""
    tmp = link + ".new"
    os.symlink(target, tmp)
    os.replace(tmp, link)


@pytest.fixture(scope="session")
def coffer():
    tmp = tempfile.mkdtemp(prefix="coffer-compat-")
    server = CofferServer(tmp).start()
    os.environ["SSL_CERT_FILE"] = server.creds["ca_file"]
    os.environ["REQUESTS_CA_BUNDLE"] = server.creds["ca_file"]
    yield server
    server.stop()


@pytest.fixture(scope="session")
def credential(coffer):
    return coffer.credential()


@pytest.fixture
def vault(coffer):
    return coffer.new_vault()


@pytest.fixture
def client(coffer, credential, vault):
    from azure.keyvault.secrets import SecretClient

    return SecretClient(coffer.vault_url(vault), credential)


# The compatibility matrix: each test marked `compat(client, area)` adds its outcome to the cell;
# the whole suite's session (COFFER_COMPAT_MATRIX=1, set by scripts/test.sh) writes them to
# tests/artifacts/compat-matrix.json, from which
# scripts/compat-matrix.py renders the README's table (and checks it in scripts/test.sh).
MATRIX_FILE = ROOT / "tests" / "artifacts" / "compat-matrix.json"
_matrix = {}


def pytest_configure(config):
    config.addinivalue_line("markers", "compat(client, area): the client and area of Key Vault this test covers")
    # Every temporary directory the tests make (servers' data directories, audit sinks, tokens)
    # goes under one root, removed when the session ends: a run leaves nothing behind in /tmp.
    global _temp_root
    _temp_root = tempfile.mkdtemp(prefix="coffer-tests-")
    tempfile.tempdir = _temp_root


_temp_root = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" and not (report.when == "setup" and (report.skipped or report.failed)):
        return
    result = "passed" if report.passed else "skipped" if report.skipped else "failed"
    for mark in item.iter_markers("compat"):
        cell = _matrix.setdefault(f"{mark.args[0]}|{mark.args[1]}", {"passed": 0, "failed": 0, "skipped": 0})
        cell[result] += 1


def pytest_unconfigure(config):
    if _temp_root:
        tempfile.tempdir = None
        shutil.rmtree(_temp_root, ignore_errors=True)


def pytest_sessionfinish(session, exitstatus):
    # Only the whole suite's run (scripts/test.sh) speaks for the matrix, not a partial one.
    if _matrix and os.environ.get("COFFER_COMPAT_MATRIX") == "1":
        MATRIX_FILE.parent.mkdir(parents=True, exist_ok=True)
        MATRIX_FILE.write_text(json.dumps(_matrix, indent=1, sort_keys=True) + "\n")
