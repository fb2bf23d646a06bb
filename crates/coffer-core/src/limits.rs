//! Azure Key Vault's service limits, enforced on input.

/// Secret values: "a maximum size of 25 KB each".
pub const MAX_SECRET_VALUE_BYTES: usize = 25 * 1024;
pub const MAX_CONTENT_TYPE_CHARS: usize = 255;
pub const MAX_TAGS: usize = 15;
pub const MAX_TAG_CHARS: usize = 256;
pub const MAX_OBJECT_NAME_CHARS: usize = 127;
/// `maxresults` on list operations is 1..=25; 25 is also the default page size.
pub const MAX_PAGE_SIZE: usize = 25;
/// Largest request body the server reads at all (a backup blob of a long version history is
/// the largest legitimate body).
pub const MAX_REQUEST_BODY_BYTES: usize = 4 * 1024 * 1024;
/// A backup holds at most this many versions of one object.
pub const MAX_BACKUP_VERSIONS: usize = 500;
/// Access policies per vault.
pub const MAX_ACCESS_POLICIES: usize = 1024;
