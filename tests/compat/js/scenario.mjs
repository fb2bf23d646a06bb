// The official Azure SDK for JavaScript against Coffer, unchanged: secrets, keys (with the
// CryptographyClient, results checked with node:crypto) and certificates. Settings come from the
// environment (tests/compat/test_js_sdk.py); each check prints one line, a failure exits 1.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { ClientSecretCredential, DefaultAzureCredential, ManagedIdentityCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";
import { CryptographyClient, KeyClient } from "@azure/keyvault-keys";
import { CertificateClient, WellKnownIssuer } from "@azure/keyvault-certificates";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const credential = new ClientSecretCredential(env("TENANT_ID"), env("CLIENT_ID"), env("CLIENT_SECRET"), {
  authorityHost: env("AUTHORITY"),
  disableInstanceDiscovery: true,
});
const url = env("VAULT_URL");
const fast = { intervalInMs: 100 };
const done = (name) => console.log(`ok ${name}`);

async function secrets() {
  const client = new SecretClient(url, credential);
  const set = await client.setSecret("patient-db", "Server=db;Password=s3cr3t", { tags: { ward: "7" } });
  assert.equal(set.value, "Server=db;Password=s3cr3t");
  assert.equal((await client.getSecret("patient-db")).value, "Server=db;Password=s3cr3t");
  await client.setSecret("patient-db", "rotated");
  const versions = [];
  for await (const p of client.listPropertiesOfSecretVersions("patient-db")) versions.push(p.version);
  assert.equal(versions.length, 2);
  assert.equal((await client.getSecret("patient-db", { version: set.properties.version })).value, "Server=db;Password=s3cr3t");
  const updated = await client.updateSecretProperties("patient-db", set.properties.version, { enabled: false });
  assert.equal(updated.enabled, false);
  const names = [];
  for await (const p of client.listPropertiesOfSecrets()) names.push(p.name);
  assert.ok(names.includes("patient-db"));
  const backup = await client.backupSecret("patient-db");
  await (await client.beginDeleteSecret("patient-db", fast)).pollUntilDone();
  assert.equal((await client.getDeletedSecret("patient-db")).name, "patient-db");
  await (await client.beginRecoverDeletedSecret("patient-db", fast)).pollUntilDone();
  assert.equal((await client.getSecret("patient-db")).value, "rotated");
  await (await client.beginDeleteSecret("patient-db", fast)).pollUntilDone();
  await client.purgeDeletedSecret("patient-db");
  await assert.rejects(client.getSecret("patient-db"), (e) => e.statusCode === 404);
  const restored = await client.restoreSecretBackup(backup);
  assert.equal(restored.name, "patient-db");
  assert.equal((await client.getSecret("patient-db")).value, "rotated");
  done("secrets");
}

async function keys() {
  const client = new KeyClient(url, credential);
  const digest = crypto.createHash("sha256").update("lab result 42").digest();
  const ec = await client.createEcKey("signer", { curve: "P-256" });
  const ecCrypto = new CryptographyClient(ec, credential);
  const signed = await ecCrypto.sign("ES256", digest);
  const ecPublic = crypto.createPublicKey({
    key: { kty: "EC", crv: "P-256", x: Buffer.from(ec.key.x).toString("base64url"), y: Buffer.from(ec.key.y).toString("base64url") },
    format: "jwk",
  });
  assert.ok(crypto.verify("sha256", Buffer.from("lab result 42"), { key: ecPublic, dsaEncoding: "ieee-p1363" }, signed.result), "ES256 verifies in node:crypto");
  assert.ok((await ecCrypto.verify("ES256", digest, signed.result)).result);

  const rsa = await client.createRsaKey("wrapper", { keySize: 2048 });
  const rsaCrypto = new CryptographyClient(rsa.id, credential);
  const rsaPublic = crypto.createPublicKey({
    key: { kty: "RSA", n: Buffer.from(rsa.key.n).toString("base64url"), e: Buffer.from(rsa.key.e).toString("base64url") },
    format: "jwk",
  });
  const sealed = crypto.publicEncrypt({ key: rsaPublic, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" }, Buffer.from("x-ray"));
  assert.equal(Buffer.from((await rsaCrypto.decrypt({ algorithm: "RSA-OAEP-256", ciphertext: sealed })).result).toString(), "x-ray");
  const wrapped = await rsaCrypto.wrapKey("RSA-OAEP", Buffer.alloc(32, 7));
  assert.deepEqual(Buffer.from((await rsaCrypto.unwrapKey("RSA-OAEP", wrapped.result)).result), Buffer.alloc(32, 7));
  const rs = await rsaCrypto.sign("RS256", digest);
  assert.ok(crypto.verify("sha256", Buffer.from("lab result 42"), rsaPublic, rs.result), "RS256 verifies in node:crypto");

  const rotated = await client.rotateKey("signer");
  assert.notEqual(rotated.properties.version, ec.properties.version);
  const policy = await client.updateKeyRotationPolicy("signer", {
    expiresIn: "P90D",
    lifetimeActions: [{ action: "Rotate", timeBeforeExpiry: "P30D" }],
  });
  assert.equal(policy.expiresIn, "P90D");
  assert.equal((await client.getKeyRotationPolicy("signer")).lifetimeActions.length, 1);
  const random = await client.getRandomBytes(16);
  assert.equal(random.length, 16);
  const backup = await client.backupKey("wrapper");
  await (await client.beginDeleteKey("wrapper", fast)).pollUntilDone();
  await client.purgeDeletedKey("wrapper");
  assert.equal((await client.restoreKeyBackup(backup)).name, "wrapper");
  done("keys");
}

async function certificates() {
  const client = new CertificateClient(url, credential);
  const made = await (
    await client.beginCreateCertificate("portal", { issuerName: WellKnownIssuer.Self, subject: "CN=portal.hospital.example", validityInMonths: 12 }, fast)
  ).pollUntilDone();
  assert.ok(made.cer && made.cer.length > 100);
  const x509 = new crypto.X509Certificate(Buffer.from(made.cer));
  assert.match(x509.subject, /CN=portal.hospital.example/);
  assert.equal((await client.getCertificatePolicy("portal")).subject, "CN=portal.hospital.example");

  // A PEM import (key and certificate made by the test): the SDK sends the PEM text itself.
  const imported = await client.importCertificate("imported", Buffer.from(env("PEM_BUNDLE")), {
    policy: { contentType: "application/x-pem-file", issuerName: "Unknown" },
  });
  assert.ok(imported.cer && imported.cer.length > 100);

  // A certificate to be signed elsewhere: the operation and its CSR.
  const poller = await client.beginCreateCertificate("partner", { issuerName: "Unknown", subject: "CN=partner.example" }, fast);
  const operation = await client.getCertificateOperation("partner", fast);
  const state = operation.getOperationState();
  assert.equal(state.certificateOperation.status.toLowerCase(), "inprogress");
  assert.ok(state.certificateOperation.csr.length > 100);
  const pending = await client.getCertificate("partner");
  assert.equal(pending.properties.enabled, false);
  assert.equal(pending.cer, undefined);
  await operation.cancelOperation();
  assert.equal((await client.deleteCertificateOperation("partner")).status.toLowerCase(), "cancelled");
  void poller;

  await client.setContacts([{ email: "pki@hospital.example", name: "PKI", phone: "0101" }]);
  const contacts = await client.getContacts();
  assert.equal(contacts[0].email, "pki@hospital.example");
  await (await client.beginDeleteCertificate("portal", fast)).pollUntilDone();
  await (await client.beginRecoverDeletedCertificate("portal", fast)).pollUntilDone();
  assert.ok((await client.getCertificate("portal")).cer);
  done("certificates");
}

// A managed identity (App Service's IDENTITY_ENDPOINT and IDENTITY_HEADER, set by the test for
// an identity that may read the vault's secrets) and DefaultAzureCredential (its
// EnvironmentCredential: AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET,
// AZURE_AUTHORITY_HOST): each reads the secret the test set.
async function identityCredentials() {
  for (const [name, cred] of [
    ["ManagedIdentityCredential", new ManagedIdentityCredential()],
    ["DefaultAzureCredential", new DefaultAzureCredential({ disableInstanceDiscovery: true })],
  ]) {
    const client = new SecretClient(url, cred);
    assert.equal((await client.getSecret("for-identities")).value, "read by every credential", name);
    console.log(`ok ${name}`);
  }
  done("identity-credentials");
}

const wanted = (process.argv[2] || "secrets,keys,certificates").split(",");
const areas = { secrets, keys, certificates, "identity-credentials": identityCredentials };
try {
  for (const area of wanted) await areas[area]();
} catch (e) {
  console.error(`FAILED: ${e.stack || e}`);
  if (e.response) console.error(`response: ${e.response.status} ${e.response.bodyAsText}`);
  process.exit(1);
}
