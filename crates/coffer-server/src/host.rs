//! Which surface a request is for, decided from its `Host` (or HTTP/2 `:authority`).
use axum::http::Request;

use crate::config::PublicNames;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Surface {
    /// `{vault}.{suffix}[:port]`: the vault's data plane.
    Vault { name: String, authority: String },
    /// The bare host: identity, management, portal.
    Control { authority: String },
}

/// The authority the client used, lowercased.
pub fn authority_of<B>(req: &Request<B>) -> Option<String> {
    let raw =
        req.uri().authority().map(|a| a.as_str().to_string()).or_else(|| {
            req.headers().get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).map(str::to_string)
        })?;
    Some(raw.to_ascii_lowercase())
}

pub fn classify(authority: &str, names: &PublicNames) -> Surface {
    let host = split_host(authority);
    let suffix = format!(".{}", names.dns_suffix);
    if let Some(label) = host.strip_suffix(&suffix)
        && !label.is_empty()
        && !label.contains('.')
    {
        return Surface::Vault { name: label.to_string(), authority: authority.to_string() };
    }
    Surface::Control { authority: authority.to_string() }
}

/// The host part of `host[:port]`, also for `[::1]:port`.
pub fn split_host(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.split(']').next().map(|h| h.trim_start_matches('[')).unwrap_or(authority);
    }
    authority.rsplit_once(':').map(|(h, _)| h).unwrap_or(authority)
}

/// The port part of an authority, if any.
pub fn port_of(authority: &str) -> Option<u16> {
    let after = if authority.starts_with('[') { authority.split(']').nth(1)? } else { authority };
    after.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> PublicNames {
        PublicNames { host: "localhost".into(), dns_suffix: "vault.localhost".into(), port: 8443 }
    }

    #[test]
    fn vault_hosts_are_recognised() {
        assert_eq!(
            classify("hr-app.vault.localhost:8443", &names()),
            Surface::Vault { name: "hr-app".into(), authority: "hr-app.vault.localhost:8443".into() }
        );
        assert!(matches!(classify("localhost:8443", &names()), Surface::Control { .. }));
        assert!(matches!(classify("vault.localhost:8443", &names()), Surface::Control { .. }));
        assert!(matches!(classify("a.b.vault.localhost:8443", &names()), Surface::Control { .. }));
        assert!(matches!(classify("127.0.0.1:8443", &names()), Surface::Control { .. }));
        assert!(matches!(classify("[::1]:8443", &names()), Surface::Control { .. }));
    }

    #[test]
    fn ports() {
        assert_eq!(port_of("a:8443"), Some(8443));
        assert_eq!(port_of("[::1]:9"), Some(9));
        assert_eq!(port_of("a"), None);
        assert_eq!(split_host("[::1]:9"), "::1");
    }
}
