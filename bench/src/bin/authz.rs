//! Authorization cost against directory size: the check a data-plane request makes
//! (`resolve_caller` then `authorize_data` on an RBAC vault) in a tenant of ten principals and
//! in one of 10,000 principals, 1,000 groups and 100,000 role assignments. Decisions come
//! from indexed lookups, so the two should cost about the same; the figure is their ratio.
//!
//! Run: `cargo run --release -p coffer-bench --bin authz-bench [-- CHECKS]`
use std::sync::Arc;
use std::time::Instant;

use coffer_core::lifecycle::RetentionPolicy;
use coffer_core::permissions::DataAction;
use coffer_core::rbac::OWNER;
use coffer_core::vault::Vault;
use coffer_core::{Clock, SystemClock};
use coffer_crypto::jwt::AccessClaims;
use coffer_server::{ServerConfig, authorization, open};
use sqlx::Connection;

const SECRETS_USER: &str = "4633458b-17de-408a-b874-0445c86b69e6";
const VAULTS: usize = 200;

struct World {
    principals: usize,
    groups: usize,
    assignments: usize,
}

/// A deterministic generator, so runs are comparable.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

struct Result {
    label: String,
    checks: usize,
    allowed: usize,
    mean_us: f64,
    p50_us: f64,
    p99_us: f64,
}

async fn run(world: &World, checks: usize) -> anyhow::Result<Result> {
    let dir = tempfile::tempdir()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let config = ServerConfig::dev(dir.path().to_path_buf(), "127.0.0.1:8443".parse()?);
    let opened = open(&config, clock.clone(), 8443).await?;
    let state = opened.state.clone();
    let tenant = opened.credentials.tenant_id.clone();
    let now = clock.now();

    // The vaults the assignments point at; the first is the one checked.
    let mut vaults = Vec::new();
    for i in 0..VAULTS {
        let v = Vault {
            id: coffer_crypto::random::guid(),
            name: format!("bench-{i:04}"),
            tenant_id: tenant.clone(),
            subscription_id: opened.credentials.subscription_id.clone(),
            resource_group: "bench".into(),
            location: "local".into(),
            retention: RetentionPolicy::new(90, false)?,
            enable_rbac_authorization: true,
            access_policies: vec![],
            tags: Default::default(),
            network_acls: None,
            created_by: "bench".into(),
            created: now,
            updated: now,
            deletion: None,
        };
        let (_, wrapped) = state.keyring.new_vault_key(&v.id)?;
        state.store.create_vault(&v, &wrapped).await?;
        vaults.push(v);
    }

    // Bulk load in one transaction, straight into the server's database.
    let mut conn =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", dir.path().join("coffer.db").display())).await?;
    let mut tx = conn.begin().await?;
    let mut rng = Lcg(42);
    let users: Vec<String> = (0..world.principals).map(|i| format!("user-{i:06}")).collect();
    let groups: Vec<String> = (0..world.groups).map(|i| format!("group-{i:05}")).collect();
    for (i, u) in users.iter().enumerate() {
        sqlx::query("INSERT INTO principals (object_id, tenant_id, kind, name, client_id, enabled, tenant_admin, created) VALUES ($1, $2, 'user', $3, NULL, 1, 0, $4)")
            .bind(u).bind(&tenant).bind(format!("user{i}")).bind(now).execute(&mut *tx).await?;
    }
    for g in &groups {
        sqlx::query("INSERT INTO principals (object_id, tenant_id, kind, name, client_id, enabled, tenant_admin, created) VALUES ($1, $2, 'group', $1, NULL, 1, 0, $3)")
            .bind(g).bind(&tenant).bind(now).execute(&mut *tx).await?;
    }
    // Every user in two groups.
    for u in &users {
        for _ in 0..2 {
            let g = &groups[rng.next(groups.len())];
            sqlx::query("INSERT OR IGNORE INTO group_members (group_id, member_id) VALUES ($1, $2)")
                .bind(g)
                .bind(u)
                .execute(&mut *tx)
                .await?;
        }
    }
    // Assignments to users and groups, at tenant, vault and item scopes.
    for i in 0..world.assignments {
        let principal = if rng.next(4) == 0 { &groups[rng.next(groups.len())] } else { &users[rng.next(users.len())] };
        let vault = &vaults[rng.next(vaults.len())].name;
        let scope = match rng.next(10) {
            0 => format!("/vaults/{vault}"),
            _ => format!("/vaults/{vault}/secrets/secret-{}", rng.next(500)),
        };
        sqlx::query("INSERT OR IGNORE INTO role_assignments (id, tenant_id, scope, role_definition_id, principal_id, created, created_by) VALUES ($1, $2, $3, $4, $5, $6, 'bench')")
            .bind(format!("a-{i:07}")).bind(&tenant).bind(scope).bind(if i % 50 == 0 { OWNER } else { SECRETS_USER }).bind(principal).bind(now)
            .execute(&mut *tx).await?;
    }
    tx.commit().await?;
    drop(conn);

    let target = vaults[0].clone();
    let mut times = Vec::with_capacity(checks);
    let mut allowed = 0;
    for i in 0..checks + checks / 10 {
        let user = &users[rng.next(users.len())];
        let name = format!("secret-{}", rng.next(500));
        let claims = AccessClaims {
            aud: String::new(),
            iss: String::new(),
            sub: user.clone(),
            oid: user.clone(),
            tid: tenant.clone(),
            iat: now,
            nbf: now,
            exp: now + 3600,
            appid: None,
            azp: None,
            upn: None,
            name: None,
            idtyp: "user".into(),
            ver: "2.0".into(),
            jti: String::new(),
            cid: None,
        };
        let start = Instant::now();
        let caller = coffer_server::authentication::resolve_caller(state.store.as_ref(), &claims, now).await?;
        let ok =
            authorization::authorize_data(&state, &target, &caller, DataAction::SecretGet, Some(&name)).await.is_ok();
        let elapsed = start.elapsed();
        if i >= checks / 10 {
            // The first tenth warms caches and is not counted.
            times.push(elapsed.as_secs_f64() * 1e6);
            allowed += usize::from(ok);
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p) as usize];
    Ok(Result {
        label: format!("{} principals, {} groups, {} assignments", world.principals, world.groups, world.assignments),
        checks,
        allowed,
        mean_us: times.iter().sum::<f64>() / times.len() as f64,
        p50_us: pct(0.5),
        p99_us: pct(0.99),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let checks: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(3000);
    let small = run(&World { principals: 10, groups: 2, assignments: 10 }, checks).await?;
    let large = run(&World { principals: 10_000, groups: 1_000, assignments: 100_000 }, checks).await?;
    let mut out =
        String::from("| directory | checks | allowed | mean µs | p50 µs | p99 µs |\n|---|---|---|---|---|---|\n");
    for r in [&small, &large] {
        out.push_str(&format!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} |\n",
            r.label, r.checks, r.allowed, r.mean_us, r.p50_us, r.p99_us
        ));
    }
    out.push_str(&format!(
        "\nlarge / small: mean {:.2}×, p50 {:.2}×, p99 {:.2}×\n",
        large.mean_us / small.mean_us,
        large.p50_us / small.p50_us,
        large.p99_us / small.p99_us
    ));
    print!("{out}");
    Ok(())
}
