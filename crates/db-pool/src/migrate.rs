//! Versioned SQL migrations embedded in the binary, one set per backend
//! dialect.
//
// Each migration is a file named `<version>_<name>.sql` (e.g.
// `0001_create_posts.sql`), embedded with `include_str!`. Its checksum is the
// xxh3-128 content hash of its text (brisk-core's `ContentHash`, stable
// across releases). The runners (PostgreSQL: `PgPool::migrate`, SQLite:
// `SqliteStore::migrate`) apply every pending migration in one transaction
// under a lock (an advisory lock / SQLite's write lock), record each with its
// checksum in `brisk_migrations`, and refuse to start if an applied one has
// changed.

use brisk_core::{ConfigError, ContentHash};

/// The SQL dialect a migration is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

/// One versioned migration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migration {
    version: i64,
    name: String,
    sql: String,
    checksum: String,
}

impl Migration {
    /// A migration from its file name (`<version>_<name>.sql`) and text.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `migrations.file` if the name does not start
    /// with a positive version number followed by `_`, or does not end in
    /// `.sql`.
    pub fn from_file(file_name: &str, sql: impl Into<String>) -> Result<Self, ConfigError> {
        let base = file_name.rsplit('/').next().unwrap_or(file_name);
        let stem = base.strip_suffix(".sql").ok_or_else(|| {
            ConfigError::new("migrations.file", format!("{file_name:?} must end in `.sql`"))
        })?;
        let (version, name) = stem.split_once('_').unwrap_or((stem, ""));
        let version: i64 = version.parse().ok().filter(|v| *v > 0).ok_or_else(|| {
            ConfigError::new(
                "migrations.file",
                format!("{file_name:?} must be named `<version>_<name>.sql` with a positive version, e.g. `0001_create_posts.sql`"),
            )
        })?;
        let sql = sql.into();
        Ok(Self {
            version,
            name: name.to_owned(),
            checksum: ContentHash::of(&sql).to_string(),
            sql,
        })
    }

    /// The version (its order).
    #[must_use]
    pub fn version(&self) -> i64 {
        self.version
    }

    /// The name after the version.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The SQL text.
    #[must_use]
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The checksum recorded when it is applied (xxh3-128 of the text, hex).
    #[must_use]
    pub fn checksum(&self) -> &str {
        &self.checksum
    }
}

/// The migrations of an application, one list per dialect; built with
/// [`Migrations::builder`].
///
/// ```
/// use brisk_db_pool::{Dialect, Migrations};
///
/// let migrations = Migrations::builder()
///     .file(Dialect::Postgres, "0001_create_posts.sql", "CREATE TABLE posts (id bigint PRIMARY KEY)")
///     .file(Dialect::Sqlite, "0001_create_posts.sql", "CREATE TABLE posts (id INTEGER PRIMARY KEY)")
///     .build()?;
/// assert_eq!(migrations.for_dialect(Dialect::Sqlite)[0].version(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Migrations {
    postgres: Vec<Migration>,
    sqlite: Vec<Migration>,
}

impl Migrations {
    /// An empty builder.
    pub fn builder() -> MigrationsBuilder {
        MigrationsBuilder::default()
    }

    /// The migrations for `dialect`, in version order.
    #[must_use]
    pub fn for_dialect(&self, dialect: Dialect) -> &[Migration] {
        match dialect {
            Dialect::Postgres => &self.postgres,
            Dialect::Sqlite => &self.sqlite,
        }
    }
}

/// Builds [`Migrations`]; [`build`](Self::build) checks the file names.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct MigrationsBuilder {
    files: Vec<(Dialect, String, String)>,
}

impl MigrationsBuilder {
    /// Adds the file `file_name` (`<version>_<name>.sql`) of `dialect`'s
    /// directory, usually with `include_str!("migrations/postgres/0001_x.sql")`.
    pub fn file(mut self, dialect: Dialect, file_name: impl Into<String>, sql: impl Into<String>) -> Self {
        self.files.push((dialect, file_name.into(), sql.into()));
        self
    }

    /// Checks the names and versions and sorts each dialect by version.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `migrations.file` for a badly named file, or
    /// `migrations.version` when two files of one dialect share a version.
    pub fn build(self) -> Result<Migrations, ConfigError> {
        let mut out = Migrations::default();
        for (dialect, file, sql) in self.files {
            let m = Migration::from_file(&file, sql)?;
            let list = match dialect {
                Dialect::Postgres => &mut out.postgres,
                Dialect::Sqlite => &mut out.sqlite,
            };
            if list.iter().any(|o| o.version == m.version) {
                return Err(ConfigError::new(
                    "migrations.version",
                    format!(
                        "version {} appears twice in the {dialect:?} migrations ({file})",
                        m.version
                    ),
                ));
            }
            list.push(m);
        }
        out.postgres.sort_by_key(Migration::version);
        out.sqlite.sort_by_key(Migration::version);
        Ok(out)
    }
}

/// What a migration run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationReport {
    /// Versions applied by this run, in order.
    pub applied: Vec<i64>,
    /// Migrations that were already applied (and whose checksums matched).
    pub already_applied: usize,
}

/// Checks applied migrations against the embedded ones; returns the pending
/// ones in order.
pub(crate) fn plan<'a>(
    embedded: &'a [Migration],
    applied: &[(i64, String, String)],
) -> Result<Vec<&'a Migration>, crate::Error> {
    for (version, name, checksum) in applied {
        if let Some(m) = embedded.iter().find(|m| m.version == *version)
            && m.checksum != *checksum
        {
            return Err(crate::Error::MigrationChanged {
                version: *version,
                name: name.clone(),
                applied: checksum.clone(),
                embedded: m.checksum.clone(),
            });
        }
    }
    Ok(embedded
        .iter()
        .filter(|m| !applied.iter().any(|(v, _, _)| *v == m.version))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        let m = Migration::from_file("migrations/pg/0007_add_index.sql", "CREATE INDEX ...").unwrap();
        assert_eq!((m.version(), m.name()), (7, "add_index"));
        assert_eq!(m.checksum().len(), 32);
        for bad in ["add.sql", "0000_x.sql", "0001_x.txt", "x_0001.sql"] {
            assert_eq!(
                Migration::from_file(bad, "").unwrap_err().field(),
                "migrations.file",
                "{bad}"
            );
        }
        let dup =
            Migrations::builder()
                .file(Dialect::Sqlite, "1_a.sql", "")
                .file(Dialect::Sqlite, "01_b.sql", "");
        assert_eq!(dup.build().unwrap_err().field(), "migrations.version");
    }

    #[test]
    fn plan_refuses_changed_checksums() {
        let ms = Migrations::builder()
            .file(Dialect::Postgres, "2_b.sql", "B")
            .file(Dialect::Postgres, "1_a.sql", "A")
            .build()
            .unwrap();
        let list = ms.for_dialect(Dialect::Postgres);
        let ok = vec![(1, "a".to_owned(), list[0].checksum().to_owned())];
        let pending = plan(list, &ok).unwrap();
        assert_eq!(pending.iter().map(|m| m.version()).collect::<Vec<_>>(), [2]);
        let changed = vec![(1, "a".to_owned(), "0".repeat(32))];
        assert!(matches!(
            plan(list, &changed),
            Err(crate::Error::MigrationChanged { version: 1, .. })
        ));
    }
}
