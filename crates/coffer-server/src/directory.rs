//! The directory service: principals (users, applications, managed identities, groups),
//! their credentials and group memberships, changed by tenant administrators (the REST API
//! is `crate::directory_api`, the portal's pages `portal::admin`); and the credential checks
//! the token endpoint and the portal's sign-in use. No HTTP types here.
use coffer_core::principal::{Caller, Principal, PrincipalKind};
use coffer_core::{Error, ErrorKind, Result};
use coffer_store::{Credential, credential_kind};
use zeroize::Zeroizing;

use crate::state::AppState;

pub const MIN_PASSWORD_CHARS: usize = 8;
const MAX_NAME_CHARS: usize = 256;

fn principal_not_found(id: &str) -> Error {
    Error::not_found(
        "PrincipalNotFound",
        format!(
            "No principal with object id or client id '{}' exists in this tenant.",
            coffer_core::names::printable(id)
        ),
    )
}

/// Finds a principal of the caller's tenant by object id, or by client id.
pub async fn find(state: &AppState, tenant: &str, id: &str) -> Result<Principal> {
    if let Some(p) = state.store.get_principal(id).await?.filter(|p| p.tenant_id == tenant) {
        return Ok(p);
    }
    state.store.find_principal_by_client_id(tenant, id).await?.ok_or_else(|| principal_not_found(id))
}

/// The endpoint a managed identity's workload calls (`IDENTITY_ENDPOINT`).
pub fn identity_endpoint(state: &AppState, p: &Principal) -> String {
    format!("{}/{}/msi/{}/token", state.names.authority(), p.tenant_id, p.object_id)
}

fn validate_password(p: &str) -> Result<()> {
    if p.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::bad_parameter(format!("A password needs at least {MIN_PASSWORD_CHARS} characters.")));
    }
    Ok(())
}

/// Hashes a secret off the async threads (argon2id is deliberately slow).
async fn hash(secret: Zeroizing<String>) -> Result<String> {
    on_password_thread(move || coffer_crypto::password::hash(&secret)).await?.map_err(Into::into)
}

fn new_credential(
    principal: &Principal,
    kind: &str,
    secret_hash: String,
    expires: Option<i64>,
    now: i64,
) -> Credential {
    Credential {
        id: coffer_crypto::random::guid(),
        principal_id: principal.object_id.clone(),
        kind: kind.into(),
        secret_hash,
        thumbprint: None,
        material: None,
        expires,
        created: now,
    }
}

/// Issues a new secret-like credential (client secret, identity header) and returns the
/// plaintext, shown once.
pub async fn issue_secret(
    state: &AppState,
    p: &Principal,
    kind: &str,
    expires: Option<i64>,
) -> Result<(Credential, Zeroizing<String>)> {
    let secret = coffer_crypto::random::client_secret();
    let c = new_credential(p, kind, hash(secret.clone()).await?, expires, state.clock.now());
    state.store.add_credential(&c).await?;
    Ok((c, secret))
}

/// Replaces a user's password (and, with it, `p`'s other fields as given) in one transaction:
/// the old password and the sessions and refresh tokens it made end, the new one starts.
pub async fn set_password(state: &AppState, p: &Principal, password: Zeroizing<String>) -> Result<Credential> {
    if p.kind != PrincipalKind::User {
        return Err(Error::bad_parameter("Only users have passwords."));
    }
    validate_password(&password)?;
    let c = new_credential(p, credential_kind::PASSWORD, hash(password).await?, None, state.clock.now());
    if !state.store.replace_credential(p, &c).await? {
        return Err(Error::not_found("PrincipalNotFound", format!("The principal '{}' does not exist.", p.object_id)));
    }
    Ok(c)
}

/// The live credentials of `kind` a principal holds now (unexpired).
pub async fn live_credentials(state: &AppState, principal_id: &str, kind: &str) -> Result<Vec<Credential>> {
    let now = state.clock.now();
    Ok(state
        .store
        .list_credentials(principal_id)
        .await?
        .into_iter()
        .filter(|c| c.kind == kind && c.expires.is_none_or(|e| now < e))
        .collect())
}

/// The credential whose hash `secret` matches, checked on a password thread. When there is
/// nothing to check against, a decoy hash is verified so timing reveals nothing.
pub async fn match_secret(candidates: Vec<Credential>, secret: &str) -> Result<Option<Credential>> {
    let secret = Zeroizing::new(secret.to_string());
    on_password_thread(move || {
        if candidates.is_empty() {
            let _ = coffer_crypto::password::verify(&secret, decoy_hash());
            return None;
        }
        candidates.into_iter().find(|c| coffer_crypto::password::verify(&secret, &c.secret_hash))
    })
    .await
}

/// Password checks that may wait for a password thread; past that a burst is refused (429).
pub const PASSWORD_QUEUE: usize = 64;

type PasswordJob = Box<dyn FnOnce() + Send>;

/// The queue of the password threads: one thread per core, for the whole process. argon2id
/// takes 19 MiB and a core for tens of milliseconds per check; on the shared blocking pool a
/// burst ran one check per request at once, and every thread that ever ran one kept its
/// 19 MiB in its allocator arena (24 sign-ins at once: +440 MiB, kept). A few long-lived
/// threads bound both the cores and the memory password checks can take.
fn password_queue() -> &'static std::sync::mpsc::SyncSender<PasswordJob> {
    static QUEUE: std::sync::OnceLock<std::sync::mpsc::SyncSender<PasswordJob>> = std::sync::OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<PasswordJob>(PASSWORD_QUEUE);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("coffer-password-{i}")).spawn(move || {
                loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(poisoned) => poisoned.into_inner().recv(),
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "a password thread could not be started");
            }
        }
        tx
    })
}

/// Runs `f` on a password thread: 429 when the queue is full, 503 if no thread runs.
async fn on_password_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: PasswordJob = Box::new(move || {
        let _ = tx.send(f());
    });
    password_queue().try_send(job).map_err(|e| match e {
        std::sync::mpsc::TrySendError::Full(_) => Error::new(
            ErrorKind::TooManyRequests,
            "TooManyRequests",
            "Too many sign-ins at once; try again in a second.",
        ),
        std::sync::mpsc::TrySendError::Disconnected(_) => {
            Error::unavailable("PasswordCheckUnavailable", "No password thread is running.")
        }
    })?;
    rx.await.map_err(|_| Error::unavailable("PasswordCheckUnavailable", "A password check was lost."))
}

/// Signs a user in with name and password: the user and the password credential, or `None`
/// (for an unknown, disabled or wrongly authenticated user alike). Shared by the token
/// endpoint's password grant and the portal's sign-in form.
pub async fn authenticate_user(
    state: &AppState,
    tenant: &str,
    username: &str,
    password: &str,
) -> Result<Option<(Principal, Credential)>> {
    let user = state.store.find_user(tenant, username).await?.filter(|p| p.enabled && p.kind == PrincipalKind::User);
    let candidates = match &user {
        Some(p) => live_credentials(state, &p.object_id, credential_kind::PASSWORD).await?,
        None => Vec::new(),
    };
    Ok(match (user, match_secret(candidates, password).await?) {
        (Some(u), Some(c)) => Some((u, c)),
        _ => None,
    })
}

fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| coffer_crypto::password::hash(&coffer_crypto::random::guid()).unwrap_or_default())
}

/// Every directory change and listing needs a tenant administrator.
fn require_admin(caller: &Caller) -> Result<()> {
    coffer_core::permissions::require_tenant_admin(caller, "manage the directory")
}

/// A principal to create.
#[derive(Debug)]
pub struct NewPrincipal {
    pub kind: PrincipalKind,
    pub name: String,
    /// Users only.
    pub password: Option<Zeroizing<String>>,
    pub tenant_admin: bool,
    /// Graph's `displayName` where it is not the name (users).
    pub display_name: Option<String>,
    /// Graph's `mailNickname` (groups).
    pub mail_nickname: Option<String>,
    /// False: created disabled (Graph's `accountEnabled: false`).
    pub enabled: bool,
}

impl NewPrincipal {
    /// An enabled principal of `kind` called `name`, with nothing else set.
    pub fn new(kind: PrincipalKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
            password: None,
            tenant_admin: false,
            display_name: None,
            mail_nickname: None,
            enabled: true,
        }
    }
}

/// A name as Coffer accepts it: trimmed, 1 to 256 printable characters.
fn checked_name(name: &str, what: &str) -> Result<String> {
    let name = name.trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(Error::bad_parameter(format!("{what} needs 1 to {MAX_NAME_CHARS} printable characters.")));
    }
    Ok(name)
}

/// A created principal; a managed identity comes with its identity header, shown once.
#[derive(Debug)]
pub struct CreatedPrincipal {
    pub principal: Principal,
    pub identity_header: Option<Zeroizing<String>>,
}

pub async fn create_principal(state: &AppState, admin: &Caller, new: NewPrincipal) -> Result<CreatedPrincipal> {
    require_admin(admin)?;
    let NewPrincipal { kind, name, password, tenant_admin, display_name, mail_nickname, enabled } = new;
    let name = checked_name(&name, "A name")?;
    let display_name = display_name.map(|d| checked_name(&d, "A display name")).transpose()?.filter(|d| *d != name);
    let mail_nickname = mail_nickname.map(|m| checked_name(&m, "A mail nickname")).transpose()?;
    if password.is_some() && kind != PrincipalKind::User {
        return Err(Error::bad_parameter("Only users have passwords."));
    }
    if let Some(pw) = &password {
        validate_password(pw)?;
    }
    if kind == PrincipalKind::User && state.store.find_user(&admin.tenant_id, &name).await?.is_some() {
        return Err(Error::conflict(None, format!("A user named '{name}' already exists.")));
    }
    let p = Principal {
        object_id: coffer_crypto::random::guid(),
        tenant_id: admin.tenant_id.clone(),
        kind,
        name,
        client_id: matches!(kind, PrincipalKind::App | PrincipalKind::ManagedIdentity)
            .then(coffer_crypto::random::guid),
        enabled,
        tenant_admin: tenant_admin && kind != PrincipalKind::Group,
        created: state.clock.now(),
        display_name,
        mail_nickname,
    };
    state.store.create_principal(&p).await?;
    if let Some(pw) = password {
        set_password(state, &p, pw).await?;
    }
    let mut identity_header = None;
    if kind == PrincipalKind::ManagedIdentity {
        let (_, header) = issue_secret(state, &p, credential_kind::IDENTITY_HEADER, None).await?;
        identity_header = Some(header);
    }
    Ok(CreatedPrincipal { principal: p, identity_header })
}

pub async fn principals(state: &AppState, admin: &Caller) -> Result<Vec<Principal>> {
    require_admin(admin)?;
    state.store.list_principals(&admin.tenant_id).await
}

/// The directory objects a caller may read: a tenant administrator every one of the tenant,
/// anyone else only itself (Microsoft Graph's `/me`, and the lookups tools make of their own
/// identity; the directory's names are not everyone's to list).
pub async fn readable_principals(state: &AppState, caller: &Caller) -> Result<Vec<Principal>> {
    if caller.tenant_admin {
        return state.store.list_principals(&caller.tenant_id).await;
    }
    Ok(state.store.get_principal(&caller.object_id).await?.into_iter().collect())
}

/// One directory object by object id or client id, if the caller may read it (as
/// `readable_principals`); anything else is not found, so ids cannot be probed.
pub async fn readable_principal(state: &AppState, caller: &Caller, id: &str) -> Result<Principal> {
    let p = find(state, &caller.tenant_id, id).await?;
    if caller.tenant_admin || p.object_id == caller.object_id { Ok(p) } else { Err(principal_not_found(id)) }
}

/// A user by sign-in name (case-insensitive), if the caller may read it.
pub async fn readable_user(state: &AppState, caller: &Caller, name: &str) -> Result<Principal> {
    match state.store.find_user(&caller.tenant_id, name).await? {
        Some(p) if caller.tenant_admin || p.object_id == caller.object_id => Ok(p),
        _ => Err(principal_not_found(name)),
    }
}

/// The groups `id` is in, directly or through other groups (Graph's `getMemberGroups`).
pub async fn member_of_transitively(state: &AppState, caller: &Caller, id: &str) -> Result<Vec<String>> {
    let p = readable_principal(state, caller, id).await?;
    state.store.groups_of(&p.object_id).await
}

/// A principal and, for a group, its members' ids; for anyone else, the groups it is in.
pub async fn principal_with_links(state: &AppState, admin: &Caller, id: &str) -> Result<(Principal, Vec<String>)> {
    require_admin(admin)?;
    let p = find(state, &admin.tenant_id, id).await?;
    let links = if p.kind == PrincipalKind::Group {
        state.store.group_members(&p.object_id).await?
    } else {
        state.store.groups_of(&p.object_id).await?
    };
    Ok((p, links))
}

/// What a principal update changes (unset: unchanged).
#[derive(Debug, Default)]
pub struct PrincipalChange {
    pub enabled: Option<bool>,
    pub password: Option<Zeroizing<String>>,
    /// A user's display name; for anyone else, the name.
    pub display_name: Option<String>,
    pub mail_nickname: Option<String>,
}

pub async fn update_principal(
    state: &AppState,
    admin: &Caller,
    id: &str,
    change: PrincipalChange,
) -> Result<Principal> {
    require_admin(admin)?;
    let mut p = find(state, &admin.tenant_id, id).await?;
    if let Some(e) = change.enabled {
        if !e && p.object_id == admin.object_id {
            return Err(Error::bad_parameter("You cannot disable yourself."));
        }
        p.enabled = e;
    }
    if let Some(d) = change.display_name {
        let d = checked_name(&d, "A display name")?;
        if p.kind == PrincipalKind::User {
            p.display_name = (d != p.name).then_some(d);
        } else {
            p.name = d;
        }
    }
    if let Some(m) = change.mail_nickname {
        p.mail_nickname = Some(checked_name(&m, "A mail nickname")?);
    }
    // All of it or nothing: a refused password leaves `enabled` as it was.
    match change.password {
        Some(pw) => {
            set_password(state, &p, pw).await?;
        }
        None => {
            state.store.update_principal(&p).await?;
        }
    }
    Ok(p)
}

pub async fn delete_principal(state: &AppState, admin: &Caller, id: &str) -> Result<()> {
    require_admin(admin)?;
    let p = find(state, &admin.tenant_id, id).await?;
    if p.object_id == admin.object_id {
        return Err(Error::bad_parameter("You cannot delete yourself."));
    }
    state.store.delete_principal(&p.object_id).await?;
    Ok(())
}

/// A credential to add; none of the fields set means a generated one (a client secret for
/// an application, a new identity header for a managed identity).
#[derive(Debug, Default)]
pub struct NewCredential {
    /// Unix seconds.
    pub expires: Option<i64>,
    /// A PEM or base64 DER public certificate (applications).
    pub certificate: Option<String>,
    pub password: Option<Zeroizing<String>>,
}

/// An added credential, with what is shown once.
#[derive(Debug)]
pub enum IssuedCredential {
    Certificate(Credential),
    ClientSecret { credential: Credential, client_id: Option<String>, secret: Zeroizing<String> },
    IdentityHeader { credential: Credential, endpoint: String, header: Zeroizing<String> },
    Password(Credential),
}

impl IssuedCredential {
    pub fn credential(&self) -> &Credential {
        match self {
            Self::Certificate(c) | Self::Password(c) => c,
            Self::ClientSecret { credential, .. } | Self::IdentityHeader { credential, .. } => credential,
        }
    }
}

pub async fn add_credential(
    state: &AppState,
    admin: &Caller,
    id: &str,
    new: NewCredential,
) -> Result<IssuedCredential> {
    require_admin(admin)?;
    let p = find(state, &admin.tenant_id, id).await?;
    let now = state.clock.now();
    if let Some(exp) = new.expires
        && exp <= now
    {
        return Err(Error::bad_parameter("The expiry must be in the future."));
    }
    Ok(match (p.kind, new.certificate, new.password) {
        (PrincipalKind::App, Some(pem), None) => {
            let raw = if pem.contains("-----BEGIN") {
                pem.into_bytes()
            } else {
                coffer_crypto::b64::std_decode(&pem)
                    .ok_or_else(|| Error::bad_parameter("The certificate is neither PEM nor base64 DER."))?
            };
            let info = coffer_crypto::x509::parse_certificate(&raw).map_err(|e| Error::bad_parameter(e.to_string()))?;
            let mut c = new_credential(
                &p,
                credential_kind::CERTIFICATE,
                String::new(),
                new.expires.or(Some(info.not_after)),
                now,
            );
            c.thumbprint = Some(info.x5t.clone());
            c.material = Some(info.der);
            state.store.add_credential(&c).await?;
            IssuedCredential::Certificate(c)
        }
        (PrincipalKind::App, None, None) => {
            let (credential, secret) = issue_secret(state, &p, credential_kind::SECRET, new.expires).await?;
            IssuedCredential::ClientSecret { credential, client_id: p.client_id.clone(), secret }
        }
        (PrincipalKind::ManagedIdentity, None, None) => {
            // Rotating the identity header: the old ones stop working, in the same transaction.
            let header = coffer_crypto::random::client_secret();
            let hashed = hash(header.clone()).await?;
            let credential = new_credential(&p, credential_kind::IDENTITY_HEADER, hashed, new.expires, now);
            state.store.replace_credential(&p, &credential).await?;
            IssuedCredential::IdentityHeader { credential, endpoint: identity_endpoint(state, &p), header }
        }
        (PrincipalKind::User, None, Some(pw)) => IssuedCredential::Password(set_password(state, &p, pw).await?),
        (PrincipalKind::User, _, None) => return Err(Error::bad_parameter("A user's credential is a password.")),
        (PrincipalKind::Group, ..) => return Err(Error::bad_parameter("Groups have no credentials.")),
        _ => return Err(Error::bad_parameter("This kind of credential does not fit this kind of principal.")),
    })
}

pub async fn credentials(state: &AppState, admin: &Caller, id: &str) -> Result<Vec<Credential>> {
    require_admin(admin)?;
    let p = find(state, &admin.tenant_id, id).await?;
    state.store.list_credentials(&p.object_id).await
}

/// The application whose client id is `app_id`, for a tenant administrator: Graph's
/// service principal of an application is that same Coffer principal.
pub async fn application_by_client_id(state: &AppState, admin: &Caller, app_id: &str) -> Result<Principal> {
    require_admin(admin)?;
    match state.store.find_principal_by_client_id(&admin.tenant_id, app_id).await? {
        Some(p) if p.kind == PrincipalKind::App => Ok(p),
        _ => Err(Error::bad_parameter(format!(
            "No application with appId '{}' is in this directory.",
            coffer_core::names::printable(app_id)
        ))),
    }
}

/// A principal's credentials for a caller who may read the principal: a tenant
/// administrator, or the principal itself (its own credentials' ids and expiry, never a hash).
pub async fn readable_credentials(state: &AppState, caller: &Caller, p: &Principal) -> Result<Vec<Credential>> {
    if !(caller.tenant_admin || p.object_id == caller.object_id) {
        return Err(principal_not_found(&p.object_id));
    }
    state.store.list_credentials(&p.object_id).await
}

pub async fn remove_credential(state: &AppState, admin: &Caller, id: &str, cid: &str) -> Result<()> {
    require_admin(admin)?;
    let p = find(state, &admin.tenant_id, id).await?;
    if !state.store.remove_credential(&p.object_id, cid).await? {
        return Err(Error::not_found("CredentialNotFound", "That principal holds no credential with this id."));
    }
    Ok(())
}

async fn group(state: &AppState, caller: &Caller, id: &str) -> Result<Principal> {
    let g = find(state, &caller.tenant_id, id).await?;
    if g.kind != PrincipalKind::Group {
        return Err(Error::bad_parameter(format!("'{}' is not a group.", g.name)));
    }
    Ok(g)
}

pub async fn members(state: &AppState, admin: &Caller, id: &str) -> Result<Vec<Principal>> {
    require_admin(admin)?;
    let g = group(state, admin, id).await?;
    let mut items = Vec::new();
    for m in state.store.group_members(&g.object_id).await? {
        if let Some(p) = state.store.get_principal(&m).await? {
            items.push(p);
        }
    }
    Ok(items)
}

/// Adds `member` to `group`; the group, the member, and whether it was not a member before.
pub async fn add_member(
    state: &AppState,
    admin: &Caller,
    group_id: &str,
    member: &str,
) -> Result<(Principal, Principal, bool)> {
    require_admin(admin)?;
    let g = group(state, admin, group_id).await?;
    let m = find(state, &admin.tenant_id, member).await?;
    if m.object_id == g.object_id {
        return Err(Error::bad_parameter("A group cannot be a member of itself."));
    }
    let added = state.store.add_group_member(&g.object_id, &m.object_id).await?;
    Ok((g, m, added))
}

/// Removes `member` from `group`; the group and the member.
pub async fn remove_member(
    state: &AppState,
    admin: &Caller,
    group_id: &str,
    member: &str,
) -> Result<(Principal, Principal)> {
    require_admin(admin)?;
    let g = group(state, admin, group_id).await?;
    let m = find(state, &admin.tenant_id, member).await?;
    if !state.store.remove_group_member(&g.object_id, &m.object_id).await? {
        return Err(Error::not_found("MemberNotFound", format!("'{}' is not a member of '{}'.", m.name, g.name)));
    }
    Ok((g, m))
}

/// A new token-signing key for the administrator's tenant; its `kid`.
pub async fn rotate_signing_key(state: &AppState, admin: &Caller) -> Result<String> {
    require_admin(admin)?;
    state.tokens.rotate(state.store.as_ref(), &state.keyring, &admin.tenant_id, state.clock.now()).await
}
