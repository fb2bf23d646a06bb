"""The web portal in headless Chromium (Debian's `chromium` and `chromedriver`, driven by
Selenium): sign in, browse to a secret, see its identifier but not its value without the get
permission, reveal it with it, create, delete and recover a secret, edit an access policy, and
a cross-site form post that must fail. Screenshots of the main pages go to
`tests/artifacts/portal/` (named in the README)."""
import base64
import hashlib
import http.server
import json
import os
import pathlib
import re
import shutil
import threading
import uuid

import pytest
import requests

ARTIFACTS = pathlib.Path(__file__).resolve().parents[1] / "artifacts" / "portal"

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER) and not os.environ.get("COFFER_REQUIRE_BROWSER"):
    pytest.skip("chromium and chromedriver are not installed (scripts/setup-test-env.sh installs them)",
                allow_module_level=True)


def spki_pin(cert_pem_path):
    """base64(SHA-256(SubjectPublicKeyInfo)) of the server certificate: Chromium trusts exactly it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(pathlib.Path(cert_pem_path).read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture
def browser(coffer):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                f"--ignore-certificate-errors-spki-list={spki_pin(os.path.join(coffer.data_dir, 'tls', 'server.pem'))}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def wait_url(driver, suffix):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(driver, 15).until(lambda d: d.current_url.endswith(suffix))
    except TimeoutException:
        return False
    return True


def find(driver, element_id):
    """The element once the page that has it has loaded (after a form post)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from selenium.common.exceptions import TimeoutException

    try:
        return WebDriverWait(driver, 15).until(lambda d: d.find_elements(By.ID, element_id))[0]
    except TimeoutException:
        raise AssertionError(f"no #{element_id} on {driver.current_url}: {driver.find_element(By.TAG_NAME, 'main').text[:1500]}")


def shot(driver, name):
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def sign_in(driver, coffer, user, password):
    from selenium.webdriver.common.by import By

    driver.get(f"{coffer.server}/portal/login")
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    assert wait_url(driver, "/portal/vaults"), driver.page_source[:500]


def sign_out(driver):
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, "header form button").click()
    assert wait_url(driver, "/portal/login")


def user(coffer, name, password, *extra):
    r = coffer.cli("principal", "create", "--type", "user", "--name", name, "--password-stdin", *extra,
                   input=password + "\n")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["object_id"]


def test_portal_end_to_end(coffer, browser):
    from selenium.webdriver.common.by import By

    d = browser
    v = coffer.new_vault()
    value = "value-" + uuid.uuid4().hex
    coffer.cli_json("secret", "set", "--vault-name", v, "--name", "db", "--value", value)
    suffix = uuid.uuid4().hex[:6]
    reader, keeper = f"reader{suffix}", f"keeper{suffix}"
    reader_id = user(coffer, reader, "Reader-pass-1")
    keeper_id = user(coffer, keeper, "Keeper-pass-1", "--tenant-admin")
    coffer.cli_json("vault", "set-policy", "--name", v, "--object-id", reader_id, "--secret-permissions", "list")
    coffer.cli_json("vault", "set-policy", "--name", v, "--object-id", keeper_id, "--secret-permissions",
                    "get", "list", "set", "delete", "recover", "purge", "--key-permissions", "all",
                    "--certificate-permissions", "all")

    # A reader: sees the vault and the secret's identifier, not its value.
    sign_in(d, coffer, reader, "Reader-pass-1")
    shot(d, "vaults")
    d.find_element(By.LINK_TEXT, v).click()
    shot(d, "vault-overview")
    assert f"https://{v}.vault.localhost:{coffer.port}/" in d.find_element(By.ID, "vault-uri").text
    d.find_element(By.LINK_TEXT, "Secrets").click()
    d.find_element(By.LINK_TEXT, "db").click()
    assert d.find_element(By.ID, "secret-id").text == f"https://{v}.vault.localhost:{coffer.port}/secrets/db"
    assert value not in d.page_source
    d.find_element(By.ID, "show-value").click()
    refused = find(d, "value-refused").text
    assert "does not have secrets get permission" in refused, refused
    assert value not in d.page_source
    shot(d, "secret-refused")
    sign_out(d)

    # A keeper: reveals it, creates, deletes and recovers a secret.
    sign_in(d, coffer, keeper, "Keeper-pass-1")
    d.get(f"{coffer.server}/portal/vaults/{v}/secrets/db")
    d.find_element(By.ID, "show-value").click()
    assert find(d, "secret-value").text == value
    shot(d, "secret-revealed")
    # Edit: a new version, then disable it.
    d.find_element(By.ID, "new-value").send_keys("second value")
    d.find_element(By.ID, "new-version").click()
    from selenium.webdriver.support.ui import WebDriverWait
    WebDriverWait(d, 15).until(lambda x: len(x.find_elements(By.CSS_SELECTOR, "section:nth-of-type(2) tbody tr")) == 2)
    assert coffer.cli_json("secret", "show", "--vault-name", v, "--name", "db")["value"] == "second value"
    d.find_element(By.ID, "toggle-enabled").click()
    WebDriverWait(d, 15).until(lambda x: "Enable the current version" in x.page_source)
    assert coffer.cli("secret", "show", "--vault-name", v, "--name", "db").returncode == 2, "a disabled version is not served"
    d.find_element(By.ID, "toggle-enabled").click()
    WebDriverWait(d, 15).until(lambda x: "Disable the current version" in x.page_source)
    coffer.cli_json("secret", "set", "--vault-name", v, "--name", "db", "--value", value)
    # Edit the current version's properties.
    d.get(f"{coffer.server}/portal/vaults/{v}/secrets/db")
    find(d, "edit-content-type").send_keys("text/plain")
    d.find_element(By.ID, "edit-expires").send_keys("2030-01-31")
    d.find_element(By.ID, "edit-tags").send_keys("env=prod\nowner=lab")
    d.find_element(By.ID, "save-properties").click()
    WebDriverWait(d, 15).until(lambda x: "env = prod" in x.page_source or "That did not work" in x.page_source)
    assert "env = prod" in d.page_source, d.find_element(By.TAG_NAME, "main").text
    shown = coffer.cli_json("secret", "show", "--vault-name", v, "--name", "db")
    assert shown["contentType"] == "text/plain" and shown["tags"] == {"env": "prod", "owner": "lab"}
    assert shown["attributes"]["exp"] == 1896048000
    d.get(f"{coffer.server}/portal/vaults/{v}/secrets")
    d.find_element(By.ID, "name").send_keys("created-in-browser")
    d.find_element(By.ID, "value").send_keys("from chromium")
    d.find_element(By.CSS_SELECTOR, "form[action$='/secrets'] button").click()
    assert wait_url(d, f"/portal/vaults/{v}/secrets/created-in-browser")
    assert coffer.cli_json("secret", "show", "--vault-name", v, "--name", "created-in-browser")["value"] == "from chromium"
    d.find_element(By.ID, "delete").click()
    assert wait_url(d, f"/portal/vaults/{v}/deleted-secrets"), d.page_source
    shot(d, "deleted-secrets")
    assert coffer.cli("secret", "show", "--vault-name", v, "--name", "created-in-browser").returncode == 2
    d.find_element(By.ID, "recover-created-in-browser").click()
    assert wait_url(d, f"/portal/vaults/{v}/secrets/created-in-browser")
    assert coffer.cli_json("secret", "show", "--vault-name", v, "--name", "created-in-browser")["value"] == "from chromium"

    # Keys: generate one, see it, delete and recover it.
    d.get(f"{coffer.server}/portal/vaults/{v}/keys")
    d.find_element(By.ID, "name").send_keys("signing")
    from selenium.webdriver.support.ui import Select
    Select(d.find_element(By.ID, "kty")).select_by_value("EC:P-256")
    d.find_element(By.ID, "create-key").click()
    assert wait_url(d, f"/portal/vaults/{v}/keys/signing")
    assert d.find_element(By.ID, "object-id").text == f"https://{v}.vault.localhost:{coffer.port}/keys/signing"
    assert "EC P-256" in d.page_source and "sign" in d.page_source
    shot(d, "key")
    assert coffer.cli_json("key", "show", "--vault-name", v, "--name", "signing")["key"]["crv"] == "P-256"
    d.find_element(By.ID, "delete").click()
    assert wait_url(d, f"/portal/vaults/{v}/deleted-keys")
    d.find_element(By.ID, "recover-signing").click()
    assert wait_url(d, f"/portal/vaults/{v}/keys/signing")

    # Import a key (a P-256 JWK made here) and a certificate (PEM made here).
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography import x509 as cx509
    from cryptography.x509.oid import NameOID
    import datetime

    def b64u(n, size):
        return base64.urlsafe_b64encode(n.to_bytes(size, "big")).rstrip(b"=").decode()

    k = ec.generate_private_key(ec.SECP256R1())
    nums = k.private_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "x": b64u(nums.public_numbers.x, 32), "y": b64u(nums.public_numbers.y, 32),
           "d": b64u(nums.private_value, 32), "key_ops": ["sign", "verify"]}
    d.get(f"{coffer.server}/portal/vaults/{v}/keys")
    d.find_element(By.ID, "import-name").send_keys("imported")
    d.find_element(By.ID, "jwk").send_keys(json.dumps(jwk))
    d.find_element(By.ID, "import-key").click()
    assert wait_url(d, f"/portal/vaults/{v}/keys/imported")
    assert coffer.cli_json("key", "show", "--vault-name", v, "--name", "imported")["key"]["x"] == jwk["x"]
    name_ = cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, "imported.hospital.example")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (cx509.CertificateBuilder().subject_name(name_).issuer_name(name_).public_key(k.public_key())
            .serial_number(7).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
            .sign(k, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM).decode() + k.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    d.get(f"{coffer.server}/portal/vaults/{v}/certificates")
    d.find_element(By.ID, "import-name").send_keys("imported-cert")
    d.find_element(By.ID, "bundle").send_keys(pem)
    d.find_element(By.ID, "import-certificate").click()
    assert wait_url(d, f"/portal/vaults/{v}/certificates/imported-cert"), d.page_source
    thumb = base64.urlsafe_b64encode(cert.fingerprint(hashes.SHA1())).rstrip(b"=").decode()
    assert thumb in d.page_source

    # Certificates: create a self-signed one and download it.
    d.get(f"{coffer.server}/portal/vaults/{v}/certificates")
    d.find_element(By.ID, "name").send_keys("web")
    subject = d.find_element(By.ID, "subject")
    subject.clear()
    subject.send_keys("CN=portal.hospital.example")
    d.find_element(By.ID, "create-certificate").click()
    assert wait_url(d, f"/portal/vaults/{v}/certificates/web")
    shot(d, "certificate")
    cookie = d.get_cookie("__Host-coffer-session")["value"]
    cer = requests.get(f"{coffer.server}/portal/vaults/{v}/certificates/web/download",
                       cookies={"__Host-coffer-session": cookie}, verify=coffer.creds["ca_file"], timeout=10)
    assert cer.status_code == 200 and cer.headers["content-type"] == "application/pkix-cert"
    from cryptography import x509
    assert x509.load_der_x509_certificate(cer.content).subject.rfc4514_string() == "CN=portal.hospital.example"

    # Access: give the reader get, through the same handler as the API.
    d.get(f"{coffer.server}/portal/vaults/{v}/access")
    Select(d.find_element(By.ID, "object_id")).select_by_value(reader_id)
    for p in ("get", "list"):
        d.find_element(By.CSS_SELECTOR, f"input[name=secret][value={p}]").click()
    d.find_element(By.ID, "save-policy").click()
    from selenium.webdriver.support.ui import WebDriverWait
    WebDriverWait(d, 15).until(lambda x: "was saved" in x.page_source or 'role="alert"' in x.page_source)
    assert "The access policy was saved." in d.page_source, d.page_source
    shot(d, "access-policies")
    policies = coffer.cli_json("vault", "show", "--name", v)["properties"]["accessPolicies"]
    mine = next(p for p in policies if p["objectId"] == reader_id)
    assert sorted(mine["permissions"]["secrets"]) == ["get", "list"]
    # Editing a principal's policy starts from what it has, keys and certificates included.
    d.get(f"{coffer.server}/portal/vaults/{v}/access?principal={keeper_id}")
    checked = {(b.get_attribute("name"), b.get_attribute("value"))
               for b in d.find_elements(By.CSS_SELECTOR, "input[type=checkbox]") if b.is_selected()}
    assert ("secret", "purge") in checked and ("key", "sign") in checked and ("certificate", "import") in checked
    assert ("secret", "backup") not in checked

    # The vault's audit page shows the reveal, and the reader's refusal.
    d.get(f"{coffer.server}/portal/vaults/{v}/audit?operation=SecretGet")
    shot(d, "audit")
    rows = d.find_elements(By.CSS_SELECTOR, "tbody tr")
    seen = {(r.find_elements(By.TAG_NAME, "td")[4].text, r.find_elements(By.TAG_NAME, "td")[2].text) for r in rows}
    assert (keeper, "success") in seen and (reader, "denied") in seen, seen
    reveal = [json.loads(line) for line in coffer.cli("audit", "query", "--vault", v, "--operation", "SecretGet",
                                                      "--caller", keeper_id, "--result", "success").stdout.splitlines()]
    assert reveal and "HeadlessChrome" in reveal[0]["properties"]["clientInfo"]
    # The record keeps the decision that let the value out (not the who-can question's).
    assert reveal[0]["properties"]["authorization"]["model"] == "accessPolicy", reveal[0]
    assert reveal[0]["properties"]["authorization"]["decision"] == "allow"
    assert value not in json.dumps(reveal)

    # Security headers on every page.
    r = requests.get(f"{coffer.server}/portal/login", verify=coffer.creds["ca_file"], timeout=10)
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-frame-options"] == "DENY" and r.headers["referrer-policy"] == "same-origin"
    assert "max-age" in r.headers["strict-transport-security"]

    # Cross-site: a page elsewhere auto-posts a delete form to Coffer. The session cookie is
    # SameSite=Strict and the form has no CSRF token: nothing happens.
    attack = (f'<form id="f" method="post" action="{coffer.server}/portal/vaults/{v}/secrets/db/delete">'
              '<input name="csrf" value="guess"></form><script>document.getElementById("f").submit()</script>')

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.end_headers()
            self.wfile.write(attack.encode())

        def log_message(self, *a):
            pass

    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        d.get(f"http://127.0.0.1:{evil.server_port}/")
        d.implicitly_wait(0)
        import time
        deadline = time.time() + 10
        while time.time() < deadline and "127.0.0.1" in d.current_url:
            time.sleep(0.2)
        # The post arrived without the session (SameSite=Strict): Coffer asks to sign in.
        assert d.current_url.endswith("/portal/login"), d.current_url
    finally:
        evil.shutdown()
    assert coffer.cli_json("secret", "show", "--vault-name", v, "--name", "db")["value"] == value, "not deleted"
    # Even with the session cookie (a same-site attacker), a post without the token is refused.
    cookie = d.get_cookie("__Host-coffer-session")["value"]
    r = requests.post(f"{coffer.server}/portal/vaults/{v}/secrets/db/delete", data={"csrf": "guess"},
                      cookies={"__Host-coffer-session": cookie}, verify=coffer.creds["ca_file"],
                      allow_redirects=False, timeout=10)
    assert r.status_code == 403 and "not sent from a Coffer page" in r.text
    assert coffer.cli_json("secret", "show", "--vault-name", v, "--name", "db")["value"] == value
    d.get(f"{coffer.server}/portal/vaults")
    sign_out(d)
    # After signing out, the old cookie is worth nothing.
    r = requests.get(f"{coffer.server}/portal/vaults", cookies={"__Host-coffer-session": cookie},
                     verify=coffer.creds["ca_file"], allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["location"] == "/portal/login"


def test_wrong_password_and_login_csrf(coffer):
    s = requests.Session()
    page = s.get(f"{coffer.server}/portal/login", verify=coffer.creds["ca_file"], timeout=10)
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    name = "u" + uuid.uuid4().hex[:8]
    user(coffer, name, "Right-pass-1")
    bad = s.post(f"{coffer.server}/portal/login", data={"csrf": token, "username": name, "password": "wrong"},
                 verify=coffer.creds["ca_file"], allow_redirects=False, timeout=10)
    assert bad.status_code == 401 and "incorrect" in bad.text and "__Host-coffer-session" not in bad.headers.get("set-cookie", "")
    # A login form posted without this browser's login cookie (login CSRF) is refused.
    r = requests.post(f"{coffer.server}/portal/login", data={"csrf": token, "username": name, "password": "Right-pass-1"},
                      verify=coffer.creds["ca_file"], allow_redirects=False, timeout=10)
    assert r.status_code == 403
    failed = [json.loads(line) for line in coffer.cli("audit", "query", "--operation", "Authentication",
                                                      "--result", "denied").stdout.splitlines()]
    assert any(f["properties"].get("claimedIdentity") == name for f in failed)


def test_administrators_create_vaults_and_principals(coffer, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    d = browser
    admin = "admin" + uuid.uuid4().hex[:6]
    user(coffer, admin, "Admin-pass-1", "--tenant-admin")
    sign_in(d, coffer, admin, "Admin-pass-1")
    name = "p" + uuid.uuid4().hex[:10]
    d.find_element(By.ID, "vname").send_keys(name)
    d.find_element(By.ID, "create-vault").click()
    assert wait_url(d, f"/portal/vaults/{name}")
    vault = coffer.cli_json("vault", "show", "--name", name)
    mine = [p for p in vault["properties"]["accessPolicies"] if p["permissions"]["secrets"] == ["all"]]
    assert mine, "the creator gets every permission, as az keyvault create gives"

    d.get(f"{coffer.server}/portal/admin")
    app = "app" + uuid.uuid4().hex[:6]
    Select(d.find_element(By.ID, "ptype")).select_by_value("app")
    d.find_element(By.ID, "pname").send_keys(app)
    d.find_element(By.ID, "create-principal").click()
    WebDriverWait(d, 15).until(lambda x: x.find_elements(By.ID, "shown-once"))
    shown = d.find_element(By.ID, "shown-once").text
    client_id = re.search(r"client_id: (\S+)", shown).group(1)
    secret = re.search(r"client_secret: (\S+)", shown).group(1)
    shot(d, "directory")
    token = requests.post(f"{coffer.server}/{coffer.creds['tenant_id']}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
        "scope": f"https://vault.localhost:{coffer.port}/.default"}, verify=coffer.creds["ca_file"], timeout=10)
    assert token.status_code == 200, "the secret shown once signs the new application in"

    group = "grp" + uuid.uuid4().hex[:6]
    Select(d.find_element(By.ID, "ptype")).select_by_value("group")
    d.find_element(By.ID, "pname").send_keys(group)
    d.find_element(By.ID, "create-principal").click()
    WebDriverWait(d, 15).until(lambda x: f"Created group '{group}'" in x.page_source)
    group_id = next(o.get_attribute("value") for o in d.find_elements(By.CSS_SELECTOR, "#group option") if o.text == group)
    app_id = next(o.get_attribute("value") for o in d.find_elements(By.CSS_SELECTOR, "#member option")
                  if o.text.startswith(app + " "))
    Select(d.find_element(By.ID, "group")).select_by_value(group_id)
    Select(d.find_element(By.ID, "member")).select_by_value(app_id)
    d.find_element(By.ID, "add-member").click()
    WebDriverWait(d, 15).until(lambda x: "The member was added." in x.page_source)
    members = coffer.cli_json("group", "member", "list", "--group", group_id)
    assert app_id in json.dumps(members)
    d.find_element(By.ID, f"remove-{app}-from-{group}").click()
    WebDriverWait(d, 15).until(lambda x: "The member was removed." in x.page_source)
    assert app_id not in json.dumps(coffer.cli_json("group", "member", "list", "--group", group_id))
    # Disable the application: its secret no longer signs it in; enable it again; delete it.
    def sign_in_app():
        return requests.post(f"{coffer.server}/{coffer.creds['tenant_id']}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
            "scope": f"https://vault.localhost:{coffer.port}/.default"}, verify=coffer.creds["ca_file"], timeout=10)
    d.find_element(By.ID, f"credential-{app}").click()
    WebDriverWait(d, 15).until(lambda x: "A new credential was added." in x.page_source)
    second = find(d, "shown-once").text.strip()
    assert second != secret
    assert requests.post(f"{coffer.server}/{coffer.creds['tenant_id']}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": second,
        "scope": f"https://vault.localhost:{coffer.port}/.default"}, verify=coffer.creds["ca_file"],
        timeout=10).status_code == 200
    d.find_element(By.ID, f"toggle-{app}").click()
    WebDriverWait(d, 15).until(lambda x: "The principal was disabled." in x.page_source)
    assert sign_in_app().status_code != 200
    d.find_element(By.ID, f"toggle-{app}").click()
    WebDriverWait(d, 15).until(lambda x: "The principal was enabled." in x.page_source)
    assert sign_in_app().status_code == 200
    d.find_element(By.ID, f"delete-{app}").click()
    WebDriverWait(d, 15).until(lambda x: "The principal was deleted." in x.page_source)
    assert coffer.cli("principal", "show", "--id", app_id).returncode == 2

    # Roles (the vault switched to RBAC): assign one at an item's scope, see it, remove it.
    coffer.cli_json("vault", "update", "--name", name, "--enable-rbac-authorization", "true")
    d.get(f"{coffer.server}/portal/vaults/{name}/roles")
    Select(d.find_element(By.ID, "role")).select_by_value("Key Vault Secrets User")
    Select(d.find_element(By.ID, "assignee")).select_by_value(group_id)
    scope = d.find_element(By.ID, "scope")
    scope.clear()
    scope.send_keys(f"/vaults/{name}/secrets/one")
    d.find_element(By.ID, "assign-role").click()
    from selenium.common.exceptions import StaleElementReferenceException
    settle = dict(ignored_exceptions=[StaleElementReferenceException])
    WebDriverWait(d, 15, **settle).until(lambda x: "Key Vault Secrets User" in x.find_element(By.TAG_NAME, "tbody").text
                               if x.find_elements(By.TAG_NAME, "tbody") else False)
    shot(d, "roles")
    explained = coffer.cli_json("access", "explain", "--assignee", group_id, "--vault", name, "--secret", "one",
                                "--action", "getSecret")
    assert explained["decision"] == "allow", explained
    row = next(r for r in d.find_elements(By.CSS_SELECTOR, "tbody tr") if "Key Vault Secrets User" in r.text)
    row.find_element(By.TAG_NAME, "button").click()
    WebDriverWait(d, 15, **settle).until(lambda x: "Key Vault Secrets User" not in x.find_element(By.TAG_NAME, "tbody").text
                               and "Owner" in x.find_element(By.TAG_NAME, "tbody").text)
    explained = coffer.cli_json("access", "explain", "--assignee", group_id, "--vault", name, "--secret", "one",
                                "--action", "getSecret")
    assert explained["decision"] == "deny"

    # On a phone-sized screen the pages fit the width (no sideways scrolling).
    d.set_window_size(390, 844)
    for page in (f"/portal/vaults/{name}", f"/portal/vaults/{name}/roles", "/portal/vaults"):
        d.get(f"{coffer.server}{page}")
        overflow = d.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, (page, overflow)
    shot(d, "phone-vaults")
