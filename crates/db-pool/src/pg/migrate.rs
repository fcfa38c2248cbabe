//! The PostgreSQL migration runner: one transaction under an advisory lock.

use std::borrow::Cow;

use crate::migrate::{MigrationReport, plan};
use crate::{Dialect, Error, Migrations, PgPool};

/// The advisory lock key all brisk migrators take ("briskmig" in ASCII).
const LOCK_KEY: i64 = 0x6272_6973_6b6d_6967;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS brisk_migrations (\
    version bigint PRIMARY KEY, \
    name text NOT NULL, \
    checksum text NOT NULL, \
    applied_at timestamptz NOT NULL DEFAULT now())";

impl PgPool {
    /// Applies the pending [`Dialect::Postgres`] migrations.
    ///
    /// Everything happens in one transaction that first takes a
    /// transaction-level advisory lock, so concurrent migrators (several
    /// instances starting at once) run one after the other and the later
    /// ones find nothing to do. Each applied migration is recorded in
    /// `brisk_migrations` with its checksum; an applied migration whose
    /// embedded SQL has changed stops the run before anything is applied.
    ///
    /// # Errors
    ///
    /// [`Error::MigrationChanged`] for an edited migration,
    /// [`Error::MigrationFailed`] (with the SQLSTATE) for one whose SQL
    /// fails (nothing of this run is then applied), or a connection error.
    pub async fn migrate(&self, migrations: &Migrations) -> Result<MigrationReport, Error> {
        let embedded = migrations.for_dialect(Dialect::Postgres);
        let mut conn = self.get().await?;
        let tx = conn.transaction().await?;
        tx.batch_execute(&format!("SELECT pg_advisory_xact_lock({LOCK_KEY})"))
            .await?;
        tx.batch_execute(CREATE_TABLE).await?;
        let applied: Vec<(i64, String, String)> = tx
            .query(
                "SELECT version, name, checksum FROM brisk_migrations ORDER BY version",
                &[],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let pending = plan(embedded, &applied)?;
        let mut report = MigrationReport {
            applied: Vec::new(),
            already_applied: embedded.len() - pending.len(),
        };
        for m in pending {
            tx.inner()
                .batch_execute(m.sql())
                .await
                .map_err(|e| super::pg_error(e, Cow::Owned(format!("migration {}", m.version()))))
                .map_err(|e| e.in_migration(m.version(), m.name()))?;
            tx.execute(
                "INSERT INTO brisk_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                &[&m.version(), &m.name(), &m.checksum()],
            )
            .await?;
            report.applied.push(m.version());
        }
        tx.commit().await?;
        Ok(report)
    }
}
