#!/usr/bin/env python3
"""Renders the README's compatibility matrix from the compatibility suite's results
(tests/artifacts/compat-matrix.json, written by tests/compat/conftest.py): client × area, each
cell what the tests marked `compat(client, area)` did. `--check` fails if the README's table is
not the one the results give (scripts/test.sh runs it after the suite)."""
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "tests" / "artifacts" / "compat-matrix.json"
BEGIN, END = "<!-- compat-matrix:begin -->", "<!-- compat-matrix:end -->"
CLIENTS = ["Python SDK", "JavaScript SDK", "Go SDK", "Java SDK", "Rust SDK", "SOPS", "Azure CLI", "azure-mgmt-*"]
AREAS = ["secrets", "keys", "certificates", "identity", "management", "authorization", "directory"]


def cell(counts):
    if counts is None:
        return "—"
    if counts["failed"]:
        return f"✗ {counts['failed']} failing"
    if counts["passed"]:
        return f"✓ {counts['passed']}"
    return "skipped"


def table(results):
    rows = ["| client | " + " | ".join(AREAS) + " |", "|---|" + "---|" * len(AREAS)]
    for client in CLIENTS:
        rows.append(f"| {client} | " + " | ".join(cell(results.get(f"{client}|{a}")) for a in AREAS) + " |")
    unknown = sorted({k.split("|")[0] for k in results} - set(CLIENTS)) + sorted(
        {k.split("|")[1] for k in results} - set(AREAS))
    if unknown:
        sys.exit(f"compat marks name unknown clients or areas: {unknown}")
    return "\n".join(rows)


def main():
    results = json.loads(RESULTS.read_text())
    text = README.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    wanted = text[:start] + "\n" + table(results) + "\n" + text[end:]
    if "--check" in sys.argv:
        if wanted != text:
            sys.exit("README.md's compatibility matrix is not what the suite's results give: run scripts/compat-matrix.py")
        return
    README.write_text(wanted)


if __name__ == "__main__":
    main()
