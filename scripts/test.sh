#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests (including the store conformance
# suite), then the compatibility suite in which the official Azure SDKs and the coffer CLI
# drive the real server over TLS.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-test-env.sh
cargo build --workspace --locked
COFFER_REQUIRE_POSTGRES=1 cargo test --workspace --locked
COFFER_BIN="$PWD/target/debug/coffer" COFFER_REQUIRE_AZ=1 COFFER_REQUIRE_BROWSER=1 COFFER_REQUIRE_SOFTHSM=1 COFFER_REQUIRE_JS=1 COFFER_REQUIRE_SOPS=1 COFFER_COMPAT_MATRIX=1 .venv/bin/python -m pytest tests/compat -q -p no:cacheprovider
# The README's compatibility matrix is the one these results give.
.venv/bin/python scripts/compat-matrix.py --check
# A guard against a request becoming far more expensive: instructions per secret GET and SET
# (callgrind counts, repeatable on a busy machine) against bench/instructions-baseline.json.
.venv/bin/python bench/instructions.py
