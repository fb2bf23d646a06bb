"""Faults of the machine under the server: a data directory on a filesystem that fills up.
Writes are refused with an Azure-shaped 503 naming the cause (never a 500), /healthz names it
too, the server recovers by itself once space returns, and the audit log stays verifiable
(no record written twice while the file sink catches up)."""
import json
import os
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import CofferServer

MiB = 1 << 20


@pytest.fixture
def small_disk():
    """A 6 MiB tmpfs of its own (root only: CI runs as root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    mount = tempfile.mkdtemp(prefix="coffer-small-disk-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m,mode=0700", "tmpfs", mount], check=True)
    yield mount
    subprocess.run(["umount", "-l", mount], check=False)


def fill(path, leave):
    """A ballast file that leaves about `leave` bytes free on the filesystem of `path`."""
    st = os.statvfs(os.path.dirname(path))
    free = st.f_bavail * st.f_frsize
    with open(path, "wb") as f:
        remaining = max(0, free - leave)
        chunk = b"\0" * (64 * 1024)
        try:
            while remaining > 0:
                n = f.write(chunk[: min(len(chunk), remaining)])
                remaining -= n
            f.flush()
            os.fsync(f.fileno())
        except OSError:
            pass


def test_a_full_disk_is_a_503_with_its_cause_and_the_server_recovers(small_disk):
    data = os.path.join(small_disk, "data")
    os.mkdir(data, 0o700)
    logs = tempfile.mkdtemp(prefix="coffer-small-disk-logs-")
    s = CofferServer(data, log_dir=logs).start()
    try:
        ca = s.creds["ca_file"]
        v = s.new_vault()
        token = s.token()
        url = s.vault_url(v)

        def put(name, value):
            return requests.put(f"{url}/secrets/{name}?api-version=7.5", json={"value": value},
                                headers={"Authorization": f"Bearer {token}"}, verify=ca, timeout=60)

        def get(name):
            return requests.get(f"{url}/secrets/{name}?api-version=7.5",
                                headers={"Authorization": f"Bearer {token}"}, verify=ca, timeout=60)

        assert put("before", "kept").status_code == 200
        ballast = os.path.join(small_disk, "ballast")
        fill(ballast, leave=96 * 1024)

        statuses, refusals, written = [], [], []
        for i in range(60):
            r = put(f"s{i}", "x" * 20000)
            statuses.append(r.status_code)
            if r.status_code == 200:
                written.append(f"s{i}")
            else:
                refusals.append(r)
        assert 500 not in statuses, [r.text for r in refusals if r.status_code == 500]
        assert refusals, "the disk filled up: some writes must have been refused"
        for r in refusals:
            assert r.status_code == 503, r.text
            err = r.json()["error"]
            assert err["code"] and err["message"], r.text
            assert "space" in err["message"].lower() or "full" in err["message"].lower(), r.text
        health = requests.get(f"{s.server}/healthz", verify=ca, timeout=30)
        assert health.status_code == 503, health.text
        assert "space" in health.text.lower() or "full" in health.text.lower(), health.text
        assert "locked" not in health.text.lower(), health.text

        # Space returns: the server recovers by itself, within seconds.
        os.remove(ballast)
        deadline, recovered = time.time() + 30, None
        while time.time() < deadline:
            r = put("after", "recovered")
            if r.status_code == 200:
                recovered = r
                break
            time.sleep(0.5)
        assert recovered is not None, f"writes still refused after space returned: {r.status_code} {r.text}"
        assert get("after").json()["value"] == "recovered"
        assert get("before").json()["value"] == "kept"
        for name in written:
            assert get(name).status_code == 200, f"{name} was acknowledged, so it must be there"
        deadline = time.time() + 30
        while time.time() < deadline:
            health = requests.get(f"{s.server}/healthz", verify=ca, timeout=30)
            if health.status_code == 200:
                break
            time.sleep(0.5)
        assert health.status_code == 200, health.text
    finally:
        s.stop()

    # After a restart the log verifies: a fault is not mistaken for tampering.
    # After a restart every acknowledged write is still there (none was only "committed" inside
    # a transaction SQLite had ended), and the log verifies: a fault is not mistaken for tampering.
    s = CofferServer(data, log_dir=logs).start()
    try:
        token = s.token()
        for name in written + ["before", "after"]:
            r = requests.get(f"{s.vault_url(v)}/secrets/{name}?api-version=7.5",
                             headers={"Authorization": f"Bearer {token}"}, verify=s.creds["ca_file"], timeout=60)
            assert r.status_code == 200, f"{name}: acknowledged before the restart, lost after it"
        r = s.cli("audit", "verify")
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert json.loads(r.stdout)["ok"]
    finally:
        s.stop()
