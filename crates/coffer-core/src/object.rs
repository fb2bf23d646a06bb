//! The versioned-object model shared by secrets, keys and certificates: kinds, attributes, tags
//! and the validation of what clients may set. Only payloads differ between kinds.
use std::collections::BTreeMap;

use crate::clock::UnixTime;
use crate::error::{Error, Result};
use crate::limits::{MAX_CONTENT_TYPE_CHARS, MAX_TAG_CHARS, MAX_TAGS};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    Secret,
    Key,
    Certificate,
}

impl ObjectKind {
    /// The stored discriminator and the AAD component.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secret => "secret",
            Self::Key => "key",
            Self::Certificate => "certificate",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "secret" => Some(Self::Secret),
            "key" => Some(Self::Key),
            "certificate" => Some(Self::Certificate),
            _ => None,
        }
    }
    /// URL collection: `secrets`, `keys`, `certificates`.
    pub fn collection(self) -> &'static str {
        match self {
            Self::Secret => "secrets",
            Self::Key => "keys",
            Self::Certificate => "certificates",
        }
    }
    pub fn deleted_collection(self) -> &'static str {
        match self {
            Self::Secret => "deletedsecrets",
            Self::Key => "deletedkeys",
            Self::Certificate => "deletedcertificates",
        }
    }
    /// "Secret", "Key", "Certificate" as Azure writes it in messages.
    pub fn title(self) -> &'static str {
        match self {
            Self::Secret => "Secret",
            Self::Key => "Key",
            Self::Certificate => "Certificate",
        }
    }
    pub fn not_found_code(self) -> &'static str {
        match self {
            Self::Secret => "SecretNotFound",
            Self::Key => "KeyNotFound",
            Self::Certificate => "CertificateNotFound",
        }
    }

    pub fn not_found(self, name: &str) -> Error {
        let lower = self.as_str();
        Error::not_found(
            self.not_found_code(),
            format!(
                "A {lower} with (name/id) {name} was not found in this key vault. If you recently \
                 deleted this {lower} you may be able to recover it using the correct recovery \
                 command. For help resolving this issue, please see \
                 https://go.microsoft.com/fwlink/?linkid=2125182"
            ),
        )
    }
    pub fn version_not_found(self, name: &str, version: &str) -> Error {
        let lower = self.as_str();
        Error::not_found(
            self.not_found_code(),
            format!("A {lower} with (name/id) {name}/{version} was not found in this key vault."),
        )
    }
    pub fn deleted_not_found(self, name: &str) -> Error {
        Error::not_found(self.not_found_code(), format!("Deleted {} not found: {name}", self.title()))
    }
    pub fn deleted_but_recoverable(self, name: &str) -> Error {
        let lower = self.as_str();
        Error::conflict(
            Some("ObjectIsDeletedButRecoverable"),
            format!(
                "{} {name} is currently in a deleted but recoverable state, and its name cannot \
                 be reused; in this state, the {lower} can only be recovered or purged.",
                self.title()
            ),
        )
    }
    pub fn disabled(self, operation: &str) -> Error {
        Error::forbidden(
            &format!("{}Disabled", self.title()),
            format!("Operation {operation} is not allowed on a disabled {}.", self.as_str()),
        )
    }
}

/// Attributes of one version. `created`/`updated` are set by the server only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    pub enabled: bool,
    pub not_before: Option<UnixTime>,
    pub expires: Option<UnixTime>,
    pub created: UnixTime,
    pub updated: UnixTime,
}

impl Attributes {
    pub fn new(now: UnixTime) -> Self {
        Self { enabled: true, not_before: None, expires: None, created: now, updated: now }
    }
    /// Applies what a client sent; absent fields keep their value.
    pub fn apply(&mut self, patch: &AttributesPatch, now: UnixTime) {
        if let Some(e) = patch.enabled {
            self.enabled = e;
        }
        if let Some(nbf) = patch.not_before {
            self.not_before = nbf;
        }
        if let Some(exp) = patch.expires {
            self.expires = exp;
        }
        self.updated = now;
    }
    /// Whether `now` lies inside the `nbf`/`exp` window.
    pub fn in_validity_window(&self, now: UnixTime) -> bool {
        self.not_before.is_none_or(|nbf| now >= nbf) && self.expires.is_none_or(|exp| now < exp)
    }
}

/// The client-settable part of attributes. `Some(None)` clears a date (JSON `null`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttributesPatch {
    pub enabled: Option<bool>,
    pub not_before: Option<Option<UnixTime>>,
    pub expires: Option<Option<UnixTime>>,
}

pub type Tags = BTreeMap<String, String>;

pub fn validate_tags(tags: &Tags) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(Error::bad_parameter(format!(
            "Too many tags: {} were given and at most {MAX_TAGS} are allowed.",
            tags.len()
        )));
    }
    for (k, v) in tags {
        if k.is_empty() {
            return Err(Error::bad_parameter("Tag names must not be empty."));
        }
        if k.chars().count() > MAX_TAG_CHARS || v.chars().count() > MAX_TAG_CHARS {
            return Err(Error::bad_parameter(format!(
                "Tag names and values must be at most {MAX_TAG_CHARS} characters long."
            )));
        }
    }
    Ok(())
}

pub fn validate_content_type(ct: &str) -> Result<()> {
    if ct.chars().count() > MAX_CONTENT_TYPE_CHARS {
        return Err(Error::bad_parameter(format!(
            "contentType must be at most {MAX_CONTENT_TYPE_CHARS} characters long."
        )));
    }
    Ok(())
}

/// Dates must be sensible Unix seconds and `nbf` must not come after `exp`.
pub fn validate_dates(attrs: &Attributes) -> Result<()> {
    for d in [attrs.not_before, attrs.expires].into_iter().flatten() {
        if !(0..=253_402_300_799).contains(&d) {
            return Err(Error::bad_parameter(format!("The date {d} is out of range.")));
        }
    }
    if let (Some(nbf), Some(exp)) = (attrs.not_before, attrs.expires)
        && nbf > exp
    {
        return Err(Error::bad_parameter(
            "The 'nbf' (not before) attribute must not be later than the 'exp' (expires) attribute.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_window() {
        let mut a = Attributes::new(100);
        assert!(a.in_validity_window(100));
        a.not_before = Some(200);
        assert!(!a.in_validity_window(150));
        assert!(a.in_validity_window(200));
        a.expires = Some(300);
        assert!(!a.in_validity_window(300));
    }

    #[test]
    fn patch_keeps_absent_fields_and_clears_null() {
        let mut a = Attributes::new(1);
        a.expires = Some(50);
        a.apply(&AttributesPatch { enabled: Some(false), ..Default::default() }, 5);
        assert_eq!(a.expires, Some(50));
        assert!(!a.enabled);
        assert_eq!(a.updated, 5);
        a.apply(&AttributesPatch { expires: Some(None), ..Default::default() }, 6);
        assert_eq!(a.expires, None);
        assert_eq!(a.created, 1);
    }

    #[test]
    fn tag_limits() {
        let mut t = Tags::new();
        for i in 0..15 {
            t.insert(format!("k{i}"), "v".into());
        }
        assert!(validate_tags(&t).is_ok());
        t.insert("k15".into(), "v".into());
        assert!(validate_tags(&t).is_err());
        let mut t = Tags::new();
        t.insert("k".into(), "v".repeat(257));
        assert!(validate_tags(&t).is_err());
    }

    #[test]
    fn dates_ordered() {
        let mut a = Attributes::new(1);
        a.not_before = Some(10);
        a.expires = Some(5);
        assert!(validate_dates(&a).is_err());
    }
}
