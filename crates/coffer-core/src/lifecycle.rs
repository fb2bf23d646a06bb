//! Soft delete: recovery levels, purge dates and the purge-protection rule.
use crate::clock::UnixTime;
use crate::error::{Error, Result};

pub const DEFAULT_RETENTION_DAYS: u32 = 90;
pub const MIN_RETENTION_DAYS: u32 = 7;
pub const MAX_RETENTION_DAYS: u32 = 90;

/// The soft-delete settings of a vault, fixed at creation (retention) or one-way (protection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub retention_days: u32,
    pub purge_protection: bool,
}

impl RetentionPolicy {
    pub fn new(retention_days: u32, purge_protection: bool) -> Result<Self> {
        if !(MIN_RETENTION_DAYS..=MAX_RETENTION_DAYS).contains(&retention_days) {
            return Err(Error::bad_parameter(format!(
                "softDeleteRetentionInDays must be between {MIN_RETENTION_DAYS} and \
                 {MAX_RETENTION_DAYS}; {retention_days} was given."
            )));
        }
        Ok(Self { retention_days, purge_protection })
    }

    /// Azure's `recoveryLevel` string for objects in a vault with these settings.
    pub fn recovery_level(&self) -> &'static str {
        match (self.retention_days == DEFAULT_RETENTION_DAYS, self.purge_protection) {
            (true, false) => "Recoverable+Purgeable",
            (true, true) => "Recoverable",
            (false, false) => "CustomizedRecoverable+Purgeable",
            (false, true) => "CustomizedRecoverable",
        }
    }

    pub fn scheduled_purge_date(&self, deleted: UnixTime) -> UnixTime {
        deleted + i64::from(self.retention_days) * 86_400
    }

    /// With purge protection a deleted object can only wait out its retention period.
    pub fn check_purge_allowed(&self, vault_name: &str) -> Result<()> {
        if self.purge_protection {
            return Err(Error::new(
                crate::ErrorKind::Forbidden,
                "Forbidden",
                format!(
                    "Operation \"purge\" is not allowed because purge protection is enabled for \
                     this vault. Key Vault service will automatically purge it after the \
                     retention period has passed. Vault: {vault_name};location=local"
                ),
            ));
        }
        Ok(())
    }
}

/// When an object or vault was deleted and when it will be purged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deletion {
    pub deleted_date: UnixTime,
    pub scheduled_purge_date: UnixTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_levels_follow_settings() {
        assert_eq!(RetentionPolicy::new(90, false).unwrap().recovery_level(), "Recoverable+Purgeable");
        assert_eq!(RetentionPolicy::new(90, true).unwrap().recovery_level(), "Recoverable");
        assert_eq!(RetentionPolicy::new(7, false).unwrap().recovery_level(), "CustomizedRecoverable+Purgeable");
        assert_eq!(RetentionPolicy::new(30, true).unwrap().recovery_level(), "CustomizedRecoverable");
    }

    #[test]
    fn retention_bounds() {
        assert!(RetentionPolicy::new(6, false).is_err());
        assert!(RetentionPolicy::new(91, false).is_err());
        assert_eq!(RetentionPolicy::new(7, false).unwrap().scheduled_purge_date(10), 10 + 7 * 86_400);
    }

    #[test]
    fn purge_protection_forbids_purge() {
        assert!(RetentionPolicy::new(7, true).unwrap().check_purge_allowed("v").is_err());
        assert!(RetentionPolicy::new(7, false).unwrap().check_purge_allowed("v").is_ok());
    }
}
