//! `tasker health`

use serde_json::json;

use super::{with_engine, Ctx};
use crate::error::CliResult;
use crate::output::{health_table, kv_table, print_json};

pub async fn run(ctx: &Ctx) -> CliResult {
    let (kind, pool, counts) = with_engine(ctx, |engine| async move {
        // A real round trip first: counts from a store that cannot answer would be misleading.
        engine.ping().await?;
        Ok((engine.store_kind(), engine.pool_stats(), engine.health_counts().await?))
    })
    .await?;
    if ctx.json {
        return print_json(&json!({
            "database_url": ctx.redacted_url(),
            "store": kind,
            "pool": {"size": pool.size, "idle": pool.idle},
            "counts": counts,
        }));
    }
    outln!(
        "{}",
        kv_table(vec![
            ("database", ctx.redacted_url()),
            ("store", format!("{kind}, reachable")),
            ("pool", format!("{} connections, {} idle", pool.size, pool.idle)),
            ("tasks", counts.total_tasks.to_string()),
            ("steps", counts.total_steps.to_string()),
            ("steps waiting for a retry", counts.retrying.to_string()),
            ("steps out of attempts", counts.exhausted.to_string()),
        ])
    );
    outln!("{}", health_table(&counts));
    Ok(())
}
