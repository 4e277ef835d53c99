//! `tasker worker`

use tasker_core::worker::{default_worker_id, Worker, WorkerConfig};

use super::{shutdown_signal, with_engine, Ctx};
use crate::cli::WorkerArgs;
use crate::error::CliResult;
use crate::output::{kv_table, print_json};
use crate::{examples, handlers};

pub async fn run(ctx: &Ctx, args: WorkerArgs) -> CliResult {
    let worker_id = args.worker_id.unwrap_or_else(default_worker_id);
    let stats = with_engine(ctx, |engine| async move {
        if args.register_examples {
            examples::register_all(&engine).await?;
        }
        let lease = std::time::Duration::from_secs(u64::from(args.lease_seconds));
        let config = WorkerConfig {
            worker_id: worker_id.clone(),
            concurrency: args.concurrency as usize,
            batch_size: args.batch_size,
            lease,
            heartbeat_interval: lease / 3,
            poll_interval: std::time::Duration::from_millis(args.poll_ms),
            // Recovering crashed workers' steps promptly matters more than the cost of a pass.
            reap_interval: match args.maintenance_ms {
                Some(ms) => std::time::Duration::from_millis(ms),
                None => (lease / 3).max(std::time::Duration::from_millis(500)),
            },
            manual_clock: None,
        };
        let mut worker = Worker::new(engine, config);
        handlers::register_examples(&mut worker);
        if args.testkit {
            for (key, handler) in tasker_core::testkit::handlers() {
                worker.handle_arc(key, handler);
            }
        }
        eprintln!(
            "worker {worker_id} running {} handlers, {} at a time, on {}; stop with Ctrl-C or SIGTERM",
            worker.handler_keys().len(),
            args.concurrency,
            ctx.redacted_url()
        );
        let stats = worker.run(shutdown_signal()).await?;
        eprintln!("worker {worker_id} stopped after its running steps finished");
        Ok(stats)
    })
    .await?;
    if ctx.json {
        return print_json(&stats);
    }
    outln!(
        "{}",
        kv_table(vec![
            ("steps claimed", stats.claimed.to_string()),
            ("succeeded", stats.succeeded.to_string()),
            ("failed", stats.failed.to_string()),
            ("outcomes rejected (claim lost)", stats.rejected.to_string()),
        ])
    );
    Ok(())
}
