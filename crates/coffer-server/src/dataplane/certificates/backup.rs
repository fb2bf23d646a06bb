//! Backup and restore of a certificate with its key, secret and policy.
use super::*;

pub(super) async fn backup(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    ok(json!({"value": certificates::backup(state, &req.ctx, name).await?}))
}

#[derive(Deserialize)]
struct BlobParams {
    value: Option<String>,
}

pub(super) async fn restore(state: &SharedState, req: &DataRequest) -> Handled {
    let p: BlobParams = parse_body(&req.body)?;
    let blob = p.value.unwrap_or_default();
    ok(bundle(&req.ctx, &certificates::restore(state, &req.ctx, &blob).await?))
}
