//! Test certificates: a throwaway certificate authority and a server
//! certificate it signed, for servers on 127.0.0.1.
//
// Why a CA and a leaf rather than one self-signed certificate: rustls
// (webpki) verifies a chain up to a trust anchor and refuses a CA
// certificate presented as the server's own, so the realistic shape (trust
// the CA, the server shows a leaf) is also the one every client accepts.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

use crate::TestkitError;

/// A fresh certificate authority and a server certificate it signed for
/// `localhost` and `127.0.0.1` (ECDSA P-256, generated with rcgen), for a
/// test server with TLS: [`PostgresServerBuilder::tls`](crate::PostgresServerBuilder::tls).
///
/// A client that trusts [`ca_der`](Self::ca_der) (or
/// [`ca_pem`](Self::ca_pem)) can verify the server; a second
/// `TestCertificates::generate()` is an unrelated CA, for testing that a
/// client refuses a server it should not trust.
///
/// ```
/// let certs = brisk_testkit::TestCertificates::generate()?;
/// assert!(certs.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
/// assert!(certs.server_key_pem().contains("PRIVATE KEY"));
/// # Ok::<(), brisk_testkit::TestkitError>(())
/// ```
#[derive(Clone)]
pub struct TestCertificates {
    ca_pem: String,
    ca_der: Vec<u8>,
    server_cert_pem: String,
    server_key_pem: String,
}

impl TestCertificates {
    /// Generates a new CA and a server certificate signed by it.
    ///
    /// # Errors
    ///
    /// [`TestkitError::Certificate`] if rcgen fails (it should not).
    pub fn generate() -> Result<Self, TestkitError> {
        Self::try_generate().map_err(|err| TestkitError::Certificate {
            reason: err.to_string(),
        })
    }

    fn try_generate() -> Result<Self, rcgen::Error> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        // A name of its own: a client trusting another generated CA must
        // find no issuer at all, not one of the same name.
        ca_params.distinguished_name.push(
            DnType::CommonName,
            format!("brisk-testkit test CA {:016x}", fastrand::u64(..)),
        );
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, "brisk-testkit server");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &ca)?;
        Ok(Self {
            ca_pem: ca.pem(),
            ca_der: ca.der().to_vec(),
            server_cert_pem: cert.pem(),
            server_key_pem: key.serialize_pem(),
        })
    }

    /// The CA certificate, PEM: what a client should trust.
    #[must_use]
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate, DER (e.g. for `rustls::RootCertStore::add`).
    #[must_use]
    pub fn ca_der(&self) -> &[u8] {
        &self.ca_der
    }

    /// The server's certificate, PEM.
    #[must_use]
    pub fn server_cert_pem(&self) -> &str {
        &self.server_cert_pem
    }

    /// The server's private key, PEM (PKCS #8).
    #[must_use]
    pub fn server_key_pem(&self) -> &str {
        &self.server_key_pem
    }
}

impl std::fmt::Debug for TestCertificates {
    // By hand: the key stays out of test output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCertificates")
            .field("ca_der_len", &self.ca_der.len())
            .finish_non_exhaustive()
    }
}
