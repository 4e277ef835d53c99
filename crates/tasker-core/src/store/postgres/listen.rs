//! Wake-ups across processes: every commit that may have made work ready sends `NOTIFY tasker_work` (see
//! `PgTx::notify_work`), and each store LISTENs on a connection of its own and wakes its idle workers.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::url::Target;
use super::{APPLICATION_NAME, WORK_CHANNEL};

/// The listener's first and longest wait between reconnection attempts.
const RECONNECT_MIN: Duration = Duration::from_millis(250);
const RECONNECT_MAX: Duration = Duration::from_secs(10);

/// How long `close` waits for the listener's connection to say goodbye; a dead network must not hang it.
const LISTENER_CLOSE_GRACE: Duration = Duration::from_secs(2);

/// A wake-up listener: its task and the one-connection pool it listens on.
pub(super) struct Listening {
    task: JoinHandle<()>,
    pool: PgPool,
}

impl Listening {
    /// Starts a listener on `runtime`, on a pool of one of its own: the listener holds its connection for good,
    /// which must not shrink the work pool, and it is named apart so that operators can tell it from the rest
    /// in pg_stat_activity.
    pub(super) fn start(
        runtime: &tokio::runtime::Handle,
        connect: &PgConnectOptions,
        connect_timeout: Duration,
        target: &Target,
        work: Arc<Notify>,
    ) -> Listening {
        let name = format!(
            "{}-listener",
            connect.get_application_name().unwrap_or(APPLICATION_NAME)
        );
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(connect_timeout)
            .connect_lazy_with(connect.clone().application_name(&name));
        let task = runtime.spawn(listen_for_work(pool.clone(), target.clone(), work));
        Listening { task, pool }
    }

    /// Stops the listener at once, for a store dropped without `close`.
    pub(super) fn abort(&self) {
        self.task.abort();
    }

    /// Stops the listener and closes its connection, waiting at most [`LISTENER_CLOSE_GRACE`] for the server.
    pub(super) async fn stop(self, target: &Target) {
        self.task.abort();
        let _ = self.task.await;
        if tokio::time::timeout(LISTENER_CLOSE_GRACE, self.pool.close())
            .await
            .is_err()
        {
            tracing::debug!(database = %target.database, "postgres listener connection did not close in time");
        }
    }
}

/// Listens on `tasker_work` until aborted or until its pool closes, waking every idle worker of this
/// process on each notification.
///
/// `PgListener::try_recv` reconnects by itself when the connection drops (it answers `None` once it has
/// listened again) but gives up with an error when the server cannot be reached; then the listener is
/// rebuilt here, with backoff, for as long as it takes. After any reconnection the workers are woken once,
/// because work announced while nobody listened was never delivered.
async fn listen_for_work(pool: PgPool, target: Target, work: Arc<Notify>) {
    let mut delay = RECONNECT_MIN;
    let mut first = true;
    loop {
        let listening = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(WORK_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        }
        .await;
        match listening {
            Ok(mut listener) => {
                if !first {
                    tracing::info!(database = %target.database, "postgres wake-up listener reconnected");
                    work.notify_waiters();
                }
                delay = RECONNECT_MIN;
                loop {
                    match listener.try_recv().await {
                        Ok(Some(_)) => {
                            // One wake-up covers every notification already queued behind this one.
                            while listener.next_buffered().is_some() {}
                            work.notify_waiters();
                        }
                        Ok(None) => {
                            tracing::info!(database = %target.database, "postgres wake-up listener reconnected");
                            work.notify_waiters();
                        }
                        Err(sqlx::Error::PoolClosed) => return,
                        Err(e) => {
                            tracing::warn!(
                                database = %target.database,
                                addr = %target,
                                error = %e,
                                "postgres wake-up listener lost its connection; reconnecting"
                            );
                            break;
                        }
                    }
                }
            }
            Err(sqlx::Error::PoolClosed) => return,
            Err(e) => {
                tracing::warn!(
                    database = %target.database,
                    addr = %target,
                    error = %e,
                    retry_in_ms = delay.as_millis() as u64,
                    "postgres wake-up listener cannot listen; idle workers poll until it can"
                );
            }
        }
        first = false;
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(RECONNECT_MAX);
    }
}
