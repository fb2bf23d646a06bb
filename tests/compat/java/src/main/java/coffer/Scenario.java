// The official Azure SDK for Java against Coffer, unchanged: a custom authority
// (ClientSecretCredentialBuilder.authorityHost), the CA in a trust store (javax.net.ssl.trustStore)
// and the vault's name in a hosts file (jdk.net.hosts.file). Run by tests/compat/test_java_sdk.py
// with the area as the argument; each area prints "ok AREA", a failure exits 1 with the reason.
package coffer;

import com.azure.core.credential.TokenCredential;
import com.azure.core.exception.ResourceNotFoundException;
import com.azure.identity.ClientSecretCredentialBuilder;
import com.azure.security.keyvault.certificates.CertificateClient;
import com.azure.security.keyvault.certificates.CertificateClientBuilder;
import com.azure.security.keyvault.certificates.models.CertificateContact;
import com.azure.security.keyvault.certificates.models.CertificateOperation;
import com.azure.security.keyvault.certificates.models.CertificatePolicy;
import com.azure.security.keyvault.certificates.models.ImportCertificateOptions;
import com.azure.security.keyvault.certificates.models.KeyVaultCertificateWithPolicy;
import com.azure.security.keyvault.keys.KeyClient;
import com.azure.security.keyvault.keys.KeyClientBuilder;
import com.azure.security.keyvault.keys.cryptography.CryptographyClient;
import com.azure.security.keyvault.keys.cryptography.CryptographyClientBuilder;
import com.azure.security.keyvault.keys.cryptography.models.EncryptionAlgorithm;
import com.azure.security.keyvault.keys.cryptography.models.KeyWrapAlgorithm;
import com.azure.security.keyvault.keys.cryptography.models.SignatureAlgorithm;
import com.azure.security.keyvault.keys.models.CreateEcKeyOptions;
import com.azure.security.keyvault.keys.models.CreateRsaKeyOptions;
import com.azure.security.keyvault.keys.models.KeyCurveName;
import com.azure.security.keyvault.keys.models.KeyVaultKey;
import com.azure.security.keyvault.secrets.SecretClient;
import com.azure.security.keyvault.secrets.SecretClientBuilder;
import com.azure.security.keyvault.secrets.models.KeyVaultSecret;
import com.azure.security.keyvault.secrets.models.SecretProperties;
import java.io.ByteArrayInputStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.Signature;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.RSAPublicKeySpec;
import java.time.Duration;
import java.util.List;
import javax.crypto.Cipher;
import javax.crypto.spec.OAEPParameterSpec;
import javax.crypto.spec.PSource;
import java.security.spec.MGF1ParameterSpec;

public final class Scenario {
    private static String env(String name) {
        String v = System.getenv(name);
        if (v == null || v.isEmpty()) throw new IllegalStateException(name + " is not set");
        return v;
    }

    private static void expect(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    public static void main(String[] args) {
        try {
            TokenCredential credential = new ClientSecretCredentialBuilder()
                .tenantId(env("TENANT_ID")).clientId(env("CLIENT_ID")).clientSecret(env("CLIENT_SECRET"))
                .authorityHost(env("AUTHORITY")).disableInstanceDiscovery().build();
            String url = env("VAULT_URL");
            for (String area : args[0].split(",")) {
                switch (area) {
                    case "secrets" -> secrets(url, credential);
                    case "keys" -> keys(url, credential);
                    case "certificates" -> certificates(url, credential);
                    default -> throw new IllegalArgumentException(area);
                }
                System.out.println("ok " + area);
            }
        } catch (Throwable e) {
            System.err.println("FAILED: " + e);
            e.printStackTrace();
            System.exit(1);
        }
    }

    static void secrets(String url, TokenCredential credential) {
        SecretClient client = new SecretClientBuilder().vaultUrl(url).credential(credential).buildClient();
        KeyVaultSecret set = client.setSecret(new KeyVaultSecret("patient-db", "Server=db;Password=s3cr3t"));
        expect(client.getSecret("patient-db").getValue().equals("Server=db;Password=s3cr3t"), "get");
        client.setSecret("patient-db", "rotated");
        long versions = client.listPropertiesOfSecretVersions("patient-db").stream().count();
        expect(versions == 2, "versions: " + versions);
        expect(client.getSecret("patient-db", set.getProperties().getVersion()).getValue().startsWith("Server=db"), "old version");
        SecretProperties disabled = client.updateSecretProperties(set.getProperties().setEnabled(false));
        expect(!disabled.isEnabled(), "update");
        expect(client.listPropertiesOfSecrets().stream().anyMatch(p -> p.getName().equals("patient-db")), "list");
        byte[] backup = client.backupSecret("patient-db");
        client.beginDeleteSecret("patient-db").setPollInterval(Duration.ofMillis(100)).waitForCompletion();
        expect(client.getDeletedSecret("patient-db").getName().equals("patient-db"), "deleted");
        client.beginRecoverDeletedSecret("patient-db").setPollInterval(Duration.ofMillis(100)).waitForCompletion();
        expect(client.getSecret("patient-db").getValue().equals("rotated"), "recovered");
        client.beginDeleteSecret("patient-db").setPollInterval(Duration.ofMillis(100)).waitForCompletion();
        client.purgeDeletedSecret("patient-db");
        try {
            client.getSecret("patient-db");
            throw new AssertionError("purged secret still there");
        } catch (ResourceNotFoundException expected) {
            // gone
        }
        expect(client.restoreSecretBackup(backup).getName().equals("patient-db"), "restore");
        expect(client.getSecret("patient-db").getValue().equals("rotated"), "restored value");
    }

    static void keys(String url, TokenCredential credential) throws Exception {
        KeyClient client = new KeyClientBuilder().vaultUrl(url).credential(credential).buildClient();
        byte[] data = "lab result 42".getBytes(StandardCharsets.UTF_8);
        byte[] digest = MessageDigest.getInstance("SHA-256").digest(data);

        KeyVaultKey ec = client.createEcKey(new CreateEcKeyOptions("signer").setCurveName(KeyCurveName.P_256));
        CryptographyClient ecCrypto = new CryptographyClientBuilder().keyIdentifier(ec.getId()).credential(credential).buildClient();
        byte[] sig = ecCrypto.sign(SignatureAlgorithm.ES256, digest).getSignature();
        expect(ecCrypto.verify(SignatureAlgorithm.ES256, digest, sig).isValid(), "ES256 verify in the vault");
        Signature es = Signature.getInstance("SHA256withECDSAinP1363Format");
        es.initVerify(ec.getKey().toEc().getPublic());
        es.update(data);
        expect(es.verify(sig), "ES256 verifies in java.security");

        KeyVaultKey rsa = client.createRsaKey(new CreateRsaKeyOptions("wrapper").setKeySize(2048));
        CryptographyClient rsaCrypto = new CryptographyClientBuilder().keyIdentifier(rsa.getId()).credential(credential).buildClient();
        PublicKey pub = KeyFactory.getInstance("RSA").generatePublic(new RSAPublicKeySpec(
            new BigInteger(1, rsa.getKey().getN()), new BigInteger(1, rsa.getKey().getE())));
        Cipher oaep = Cipher.getInstance("RSA/ECB/OAEPPadding");
        oaep.init(Cipher.ENCRYPT_MODE, pub, new OAEPParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, PSource.PSpecified.DEFAULT));
        byte[] sealed = oaep.doFinal("x-ray".getBytes(StandardCharsets.UTF_8));
        byte[] opened = rsaCrypto.decrypt(EncryptionAlgorithm.RSA_OAEP_256, sealed).getPlainText();
        expect(new String(opened, StandardCharsets.UTF_8).equals("x-ray"), "decrypt");
        byte[] wrapped = rsaCrypto.wrapKey(KeyWrapAlgorithm.RSA_OAEP, new byte[32]).getEncryptedKey();
        expect(rsaCrypto.unwrapKey(KeyWrapAlgorithm.RSA_OAEP, wrapped).getKey().length == 32, "unwrap");
        byte[] rs = rsaCrypto.sign(SignatureAlgorithm.RS256, digest).getSignature();
        Signature v = Signature.getInstance("SHA256withRSA");
        v.initVerify(pub);
        v.update(data);
        expect(v.verify(rs), "RS256 verifies in java.security");

        KeyVaultKey rotated = client.rotateKey("signer");
        expect(!rotated.getProperties().getVersion().equals(ec.getProperties().getVersion()), "rotate");
        expect(client.getRandomBytes(16).length == 16, "random");
        byte[] backup = client.backupKey("wrapper");
        client.beginDeleteKey("wrapper").setPollInterval(Duration.ofMillis(100)).waitForCompletion();
        client.purgeDeletedKey("wrapper");
        expect(client.restoreKeyBackup(backup).getName().equals("wrapper"), "restore");
    }

    static void certificates(String url, TokenCredential credential) throws Exception {
        CertificateClient client = new CertificateClientBuilder().vaultUrl(url).credential(credential).buildClient();
        CertificatePolicy policy = new CertificatePolicy("Self", "CN=portal.hospital.example").setValidityInMonths(12);
        KeyVaultCertificateWithPolicy made = client.beginCreateCertificate("portal", policy)
            .setPollInterval(Duration.ofMillis(100)).getFinalResult();
        X509Certificate x509 = (X509Certificate) CertificateFactory.getInstance("X.509")
            .generateCertificate(new ByteArrayInputStream(made.getCer()));
        expect(x509.getSubjectX500Principal().getName().contains("CN=portal.hospital.example"), "subject");
        expect(client.getCertificatePolicy("portal").getSubject().equals("CN=portal.hospital.example"), "policy");

        byte[] pem = env("PEM_BUNDLE").getBytes(StandardCharsets.UTF_8);
        KeyVaultCertificateWithPolicy imported = client.importCertificate(new ImportCertificateOptions("imported", pem)
            .setPolicy(new CertificatePolicy("Unknown", "CN=imported.example").setContentType(
                com.azure.security.keyvault.certificates.models.CertificateContentType.PEM)));
        expect(imported.getCer().length > 100, "import PEM");

        client.beginCreateCertificate("partner", new CertificatePolicy("Unknown", "CN=partner.example"))
            .setPollInterval(Duration.ofMillis(100)).poll();
        CertificateOperation op = client.getCertificateOperation("partner").poll().getValue();
        expect(op.getCsr() != null && op.getCsr().length > 100, "CSR");
        client.cancelCertificateOperation("partner");
        expect(client.deleteCertificateOperation("partner").getStatus().equalsIgnoreCase("cancelled"), "cancelled");
        client.setContacts(List.of(new CertificateContact().setEmail("pki@hospital.example"))).stream().count();
        expect(client.listContacts().stream().anyMatch(c -> "pki@hospital.example".equals(c.getEmail())), "contacts");
    }
}
