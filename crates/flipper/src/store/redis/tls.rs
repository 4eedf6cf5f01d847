//! TLS for the Redis store (`rediss://`, `rediss+cluster://`; cargo feature `redis-tls`): the
//! rustls crypto provider, the PEM files named by `ca_file`, `cert_file` and `key_file`, and
//! error messages that say when certificate verification failed.
//!
//! **Crypto provider.** The redis crate builds its rustls configurations from the process-wide
//! default [`CryptoProvider`], and rustls panics when there is none and its crate features
//! name more than one (or none). So before a TLS client exists, [`ensure_crypto_provider`]
//! installs rustls's aws-lc-rs provider as the process default, unless the application
//! installed one first (that one is then used). Losing a race with another installer is not an
//! error: whichever provider won is used.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use redis::{ClientTlsConfig, TlsCertificates};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::config::TlsFileParams;
use crate::error::BoxError;

/// Makes sure rustls has a process-wide default crypto provider: the one already installed,
/// else aws-lc-rs. Never panics.
pub(super) fn ensure_crypto_provider() -> &'static Arc<CryptoProvider> {
    if let Some(provider) = CryptoProvider::get_default() {
        return provider;
    }
    // An error means another thread installed one meanwhile: that one is the default.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    CryptoProvider::get_default().unwrap_or_else(|| {
        static FALLBACK: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
        FALLBACK.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
    })
}

/// Reads and checks the files a `rediss://` URL names: the certificates for the redis crate,
/// `None` when it names none (the system's roots, no client certificate). The error names the
/// file and the problem.
pub(super) fn load(files: &TlsFileParams) -> Result<Option<TlsCertificates>, String> {
    if files.is_empty() {
        return Ok(None);
    }
    let provider = ensure_crypto_provider();
    let root_cert = match &files.ca_file {
        Some(path) => {
            let pem = read("ca_file", path)?;
            let mut roots = RootCertStore::empty();
            for cert in certificates("ca_file", path, &pem)? {
                roots.add(cert).map_err(|e| {
                    format!("ca_file {path:?}: a certificate rustls cannot use: {e}")
                })?;
            }
            Some(pem)
        }
        None => None,
    };
    let client_tls = match (&files.cert_file, &files.key_file) {
        (Some(cert_path), Some(key_path)) => {
            let client_cert = read("cert_file", cert_path)?;
            let chain = certificates("cert_file", cert_path, &client_cert)?;
            let client_key = read("key_file", key_path)?;
            let key = PrivateKeyDer::from_pem_slice(&client_key).map_err(|e| {
                format!(
                    "key_file {key_path:?}: no PEM private key (PKCS#8, PKCS#1 or SEC1) in \
                     it: {e}"
                )
            })?;
            CertifiedKey::from_der(chain, key, provider).map_err(|e| {
                format!(
                    "key_file {key_path:?} does not go with cert_file {cert_path:?}, or \
                     rustls cannot use it: {e}"
                )
            })?;
            Some(ClientTlsConfig {
                client_cert,
                client_key,
            })
        }
        (None, None) => None,
        _ => return Err("cert_file and key_file go together: give both or neither".into()),
    };
    Ok(Some(TlsCertificates {
        client_tls,
        root_cert,
    }))
}

/// A file's bytes, or why they cannot be read.
fn read(param: &str, path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{param} {path:?} cannot be read: {e}"))
}

/// The PEM certificates in a file: at least one.
fn certificates(
    param: &str,
    path: &str,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{param} {path:?}: invalid PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "{param} {path:?} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(certs)
}

/// Warns, once per URL in this process, that a `#insecure` URL skips certificate checks.
pub(super) fn warn_insecure(url: &str) {
    static WARNED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let first = WARNED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(url.to_owned());
    if first {
        tracing::warn!(
            url,
            "#insecure: the Redis server's TLS certificate is not verified; anyone on the \
             network path can impersonate it. Use ca_file=PATH to trust a private CA instead"
        );
    }
}

/// The redis crate's error, explained when it is a TLS verification or handshake failure
/// (the original stays its source).
pub(super) fn explain(error: BoxError) -> BoxError {
    let text = chain_text(&*error);
    let reason = if text.contains("invalid peer certificate") {
        "TLS verification failed: the server's certificate was refused; if a private CA signed \
         it, trust that CA with ca_file=PATH (or skip verification with #insecure)"
    } else if text.contains("received fatal alert") || text.contains("peer sent no certificates") {
        "the TLS handshake failed: the server refused it; if it requires a client certificate \
         (tls-auth-clients yes), give cert_file=PATH&key_file=PATH"
    } else {
        return error;
    };
    Box::new(Explained {
        reason,
        detail: text,
        source: error,
    })
}

/// An error's message and those of its sources, joined with `: ` (repeats dropped).
fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = e.source();
    }
    text
}

/// A TLS failure with a reason a person can act on.
#[derive(Debug)]
struct Explained {
    reason: &'static str,
    detail: String,
    source: BoxError,
}

impl std::fmt::Display for Explained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.reason, self.detail)
    }
}

impl std::error::Error for Explained {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_failures_are_explained_and_others_kept() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "invalid peer certificate: UnknownIssuer",
        );
        let explained = explain(Box::new(redis::RedisError::from(io)));
        let msg = explained.to_string();
        assert!(msg.starts_with("TLS verification failed"), "{msg}");
        assert!(
            msg.contains("UnknownIssuer") && msg.contains("ca_file"),
            "{msg}"
        );
        assert!(explained.source().is_some());

        let other = explain("connection refused".into());
        assert_eq!(other.to_string(), "connection refused");
    }

    #[test]
    fn a_provider_is_always_there() {
        ensure_crypto_provider();
        ensure_crypto_provider();
        assert!(CryptoProvider::get_default().is_some());
    }
}
