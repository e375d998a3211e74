//! What the PostgreSQL store knows of its database's health, kept up to date in the background.
//!
//! Without it, every call during an outage waits out the pool's acquire timeout (5 s by
//! default: sqlx keeps retrying to connect until then) before it fails, `/readyz` included, and
//! a Kubernetes probe (1 s by default) sees a timeout rather than a 503. So:
//! - a monitor task checks the database every [`PROBE_INTERVAL`] on a connection of its own
//!   (one more than the pool's `max_connections`, with `application_name` `promptgate-health`),
//!   each `SELECT 1` bounded by [`PROBE_TIMEOUT`],
//!   so a pool busy with requests does not make the database look down;
//! - while the last check failed, the store refuses every call at once with
//!   [`StoreError::Unavailable`] instead of waiting on the pool; only a successful check (the
//!   monitor's or a readiness check's) lifts that;
//! - a readiness check ([`Health::check`]) runs a fresh check of its own, bounded, so it never
//!   reports a database that went away a moment ago as reachable.
//!
//! Calls made before an outage is noticed (at most [`PROBE_INTERVAL`] plus [`PROBE_TIMEOUT`]
//! after it starts) still wait on the pool as before.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::time::Instant;

use crate::StoreError;

/// How often the monitor checks the database.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(500);
/// How long one `SELECT 1` of a check may take before the database counts as down.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// The health state shared by a store's clones and its monitor task.
pub(crate) struct Health {
    down: AtomicBool,
    closed: AtomicBool,
    options: PgConnectOptions,
    /// How long opening the check's own connection may take (the pool's acquire timeout: a
    /// remote database behind TLS may need more than [`PROBE_TIMEOUT`] to connect).
    connect_timeout: Duration,
    probe: tokio::sync::Mutex<Probe>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the connect options: they hold the password.
        f.debug_struct("Health")
            .field("down", &self.down.load(Ordering::Relaxed))
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// The check's own connection and the last check's start time and outcome.
#[derive(Default)]
struct Probe {
    conn: Option<PgConnection>,
    last: Option<(Instant, bool)>,
}

impl Health {
    /// A health state that starts healthy (the store has just connected and migrated), and its
    /// monitor task, which stops once the store is closed or dropped.
    pub(crate) fn start(options: PgConnectOptions, connect_timeout: Duration) -> Arc<Health> {
        let health = Arc::new(Health {
            down: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            options,
            connect_timeout,
            probe: tokio::sync::Mutex::default(),
        });
        let weak = Arc::downgrade(&health);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROBE_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(health) = weak.upgrade() else { return };
                if health.closed.load(Ordering::Relaxed) {
                    return;
                }
                let mut probe = health.probe.lock().await;
                health.run(&mut probe).await;
            }
        });
        health
    }

    /// Whether the last check failed: calls are then refused at once.
    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    /// The error a call refused for a known outage reports.
    pub(crate) fn refusal() -> StoreError {
        StoreError::Unavailable(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            "the database did not answer the last health check",
        )))
    }

    /// Stops the monitor and drops its connection (on graceful shutdown).
    pub(crate) async fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        if let Some(conn) = self.probe.lock().await.conn.take() {
            let _ = conn.close().await;
        }
    }

    /// A fresh check, bounded by `bound` whatever the database does: `Ok` only when the
    /// database answered a check that started after this call. A check the monitor is running
    /// meanwhile counts if it started after this call; otherwise this one runs its own.
    pub(crate) async fn check(&self, bound: Duration) -> Result<(), StoreError> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(StoreError::Unavailable(sqlx::Error::PoolClosed));
        }
        let asked = Instant::now();
        let outcome = tokio::time::timeout(bound, async {
            let mut probe = self.probe.lock().await;
            match probe.last {
                Some((started, healthy)) if started >= asked => healthy,
                _ => self.run(&mut probe).await,
            }
        })
        .await;
        match outcome {
            Ok(true) => Ok(()),
            Ok(false) => Err(Health::refusal()),
            Err(_) => Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
        }
    }

    /// One check: `SELECT 1` on the check's connection, then, if that fails, on a new one (the
    /// old one may have been cut by a restart the database has recovered from). Records the
    /// outcome, logging each change.
    async fn run(&self, probe: &mut Probe) -> bool {
        let started = Instant::now();
        let mut healthy = false;
        if let Some(conn) = probe.conn.as_mut() {
            healthy = select_one(conn).await;
        }
        if !healthy {
            if probe.conn.take().is_some() {
                // The connection that answered before does not: known down at once, even if
                // connecting again takes a while.
                self.record(false);
            }
            if let Ok(Ok(mut conn)) =
                tokio::time::timeout(self.connect_timeout, self.options.connect()).await
            {
                healthy = select_one(&mut conn).await;
                if healthy {
                    probe.conn = Some(conn);
                }
            }
        }
        probe.last = Some((started, healthy));
        self.record(healthy);
        healthy
    }

    /// Sets the state, logging a change.
    fn record(&self, healthy: bool) {
        let was_down = self.down.swap(!healthy, Ordering::Relaxed);
        if was_down && healthy {
            tracing::info!("the database answers again; calls go through");
        } else if !was_down && !healthy {
            tracing::warn!(
                "the database does not answer its health check; calls fail at once with 503 until it does"
            );
        }
    }
}

async fn select_one(conn: &mut PgConnection) -> bool {
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, sqlx::query("SELECT 1").execute(&mut *conn)).await,
        Ok(Ok(_))
    )
}
