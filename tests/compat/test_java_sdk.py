"""The official Azure SDK for Java (azure-security-keyvault-secrets, -keys, -certificates and
azure-identity, pinned in tests/compat/java/pom.xml, fetched by scripts/setup-test-env.sh)
against Coffer, unchanged: tests/compat/java/.../Scenario.java runs each area on Java 17 and
checks every result (signatures with java.security). The CA is trusted through a trust store,
the vault's host name through a hosts file (`jdk.net.hosts.file`), as a Java user would."""
import shutil
import subprocess

import pytest

from conftest import ROOT
from test_js_sdk import sdk_env

JAVA = ROOT / "tests" / "compat" / "java"


@pytest.fixture(scope="module")
def classpath():
    mvn, java = shutil.which("mvn"), shutil.which("java")
    if not mvn or not java:
        pytest.skip("java and maven are not installed")
    r = subprocess.run([mvn, "-q", "-B", "package", "-DskipTests"], cwd=JAVA, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    return f"{JAVA / 'target' / 'classes'}:{JAVA / 'target' / 'lib'}/*"


@pytest.fixture(scope="module")
def java_trust(coffer, tmp_path_factory):
    """A PKCS#12 trust store holding the dev CA."""
    store = tmp_path_factory.mktemp("java") / "trust.p12"
    r = subprocess.run(["keytool", "-importcert", "-noprompt", "-alias", "coffer", "-file", coffer.creds["ca_file"],
                        "-keystore", str(store), "-storetype", "PKCS12", "-storepass", "changeit"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return store


@pytest.mark.parametrize("area", [
    pytest.param("secrets", marks=[pytest.mark.compat("Java SDK", "secrets"), pytest.mark.compat("Java SDK", "identity")]),
    pytest.param("keys", marks=pytest.mark.compat("Java SDK", "keys")),
    pytest.param("certificates", marks=pytest.mark.compat("Java SDK", "certificates")),
])
def test_java_sdk(coffer, vault, classpath, java_trust, area, tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost vault.localhost {vault}.vault.localhost\n")
    env = sdk_env(coffer, vault)
    r = subprocess.run(["java", f"-Djavax.net.ssl.trustStore={java_trust}", "-Djavax.net.ssl.trustStorePassword=changeit",
                        f"-Djdk.net.hosts.file={hosts}", "-cp", classpath, "coffer.Scenario", area],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and f"ok {area}" in r.stdout, f"{area}: {r.stdout}\n{r.stderr[-4000:]}"
