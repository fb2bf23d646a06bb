"""Instructions per request, counted by valgrind's callgrind: a regression guard, not a timing.

Counts are repeatable on a busy machine (callgrind counts instructions, not seconds), so CI
can compare them with a committed baseline (`bench/instructions-baseline.json`) and fail a
change that makes a request far more expensive. The margin is generous (MARGIN×): this
catches a doubled cost, not noise.

It starts `coffer serve --dev` (the debug build the suite uses, or COFFER_BIN) under callgrind
with counting off, makes a vault and a secret, warms up, then per workload switches counting
on, sends N requests over one keep-alive HTTPS connection, dumps, and divides. Everything the
server does meanwhile counts (request handling, the audit record's group commit, the store):
that is the request's cost.

    .venv/bin/python bench/instructions.py            # check against the baseline
    .venv/bin/python bench/instructions.py --update   # write the baseline from this run
    .venv/bin/python bench/instructions.py --keep /tmp/cg && callgrind_annotate /tmp/cg/callgrind.out.*.2
"""
import argparse
import glob
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "compat"))

from conftest import CofferServer  # noqa: E402  (the suite's harness: the same dev server)

BASELINE = ROOT / "bench" / "instructions-baseline.json"
RESULTS = ROOT / "tests" / "artifacts" / "instructions.json"
MARGIN = 2.0
REQUESTS = 50
WARM_UP = 10


def callgrind_control(pid, *args):
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True, timeout=120)


def totals(out_prefix, pid):
    """The instruction total of the newest dump of `pid`."""
    dumps = sorted(glob.glob(f"{out_prefix}.{pid}.*"), key=os.path.getmtime)
    if not dumps:
        raise RuntimeError("callgrind wrote no dump")
    with open(dumps[-1]) as f:
        for line in f:
            # (`summary:` is 0 in a dump asked for while running; `totals:` holds the count.)
            if line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {dumps[-1]}")


def measure(server, out_prefix, request):
    import requests

    session = requests.Session()
    for _ in range(WARM_UP):
        request(session)
    pid = server.proc.pid
    callgrind_control(pid, "--zero")
    callgrind_control(pid, "--instr=on")
    for _ in range(REQUESTS):
        request(session)
    callgrind_control(pid, "--instr=off")
    callgrind_control(pid, "--dump")
    return totals(out_prefix, pid) // REQUESTS


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="write the baseline from this run")
    parser.add_argument("--keep", metavar="DIR", help="keep the callgrind dumps in DIR (for callgrind_annotate)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="coffer-callgrind-") as tmp:
        if args.keep:
            os.makedirs(args.keep, exist_ok=True)
        out_prefix = os.path.join(args.keep or tmp, "callgrind.out")
        wrapper = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out_prefix}.%p"]
        server = CofferServer(os.path.join(tmp, "data"), log_dir=tmp, wrapper=wrapper, start_timeout=600)
        server.start()
        # As the suite's fixture does (requests prefers the variable to a session's own CA).
        os.environ["REQUESTS_CA_BUNDLE"] = os.environ["SSL_CERT_FILE"] = server.creds["ca_file"]
        try:
            vault = server.new_vault()
            url = f"{server.vault_url(vault)}/secrets/patient-db"
            auth = {"Authorization": f"Bearer {server.token()}"}
            version = {"api-version": "7.6"}

            def get(s):
                r = s.get(url, params=version, headers=auth, timeout=120)
                assert r.status_code == 200, r.text

            def put(s):
                r = s.put(url, params=version, headers=auth, json={"value": "Server=db;Password=s3cr3t"}, timeout=120)
                assert r.status_code == 200, r.text

            def page(s):
                r = s.get(f"{server.vault_url(vault)}/secrets", params={**version, "maxresults": "25"}, headers=auth,
                          timeout=120)
                assert r.status_code == 200 and len(r.json()["value"]) == 25, r.text

            import requests

            setup = requests.Session()
            put(setup)
            for i in range(30):  # a full page to list (Azure's page size is 25)
                r = setup.put(f"{server.vault_url(vault)}/secrets/listed-{i}", params=version, headers=auth,
                              json={"value": "x"}, timeout=120)
                assert r.status_code == 200, r.text
            measured = {"secret_set": measure(server, out_prefix, put), "secret_get": measure(server, out_prefix, get),
                        "secret_list_page": measure(server, out_prefix, page)}
        finally:
            server.stop()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(measured, indent=1, sort_keys=True) + "\n")
    if args.update:
        BASELINE.write_text(json.dumps(measured, indent=1, sort_keys=True) + "\n")
        print(f"baseline written: {measured}")
        return 0
    baseline = json.loads(BASELINE.read_text())
    failed = False
    for name, count in sorted(measured.items()):
        base = baseline.get(name)
        if not base:
            print(f"{name}: {count:,} instructions per request; no baseline (run with --update)")
            failed = True
            continue
        ratio = count / base
        verdict = "ok" if ratio <= MARGIN else f"MORE THAN {MARGIN}x THE BASELINE"
        print(f"{name}: {count:,} instructions per request (baseline {base:,}; {ratio:.2f}x) {verdict}")
        failed |= ratio > MARGIN
    return 1 if failed else 0


if __name__ == "__main__":
    start = time.time()
    code = main()
    print(f"({time.time() - start:.0f} s)")
    sys.exit(code)
