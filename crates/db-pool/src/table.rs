//! What a batch writer writes to: a table, its columns, its natural key, and
//! how rows are applied.

use brisk_core::ConfigError;

use crate::ColumnType;

/// How a batch writer applies its rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WriteMode {
    /// Plain inserts: binary `COPY` on PostgreSQL, prepared multi-row
    /// `INSERT` on SQLite. The fastest. A batch whose connection is lost
    /// before `COMMIT` is retried (nothing was written); one lost *during*
    /// `COMMIT` fails with [`Error::OutcomeUnknown`](crate::Error::OutcomeUnknown)
    /// instead of risking duplicates. The default.
    #[default]
    Copy,
    /// Inserts that skip rows whose natural key already exists:
    /// PostgreSQL copies into a temporary table and merges with
    /// `INSERT … SELECT … ON CONFLICT (key) DO NOTHING`; SQLite uses
    /// `INSERT … ON CONFLICT (key) DO NOTHING`. Idempotent, so every
    /// failed batch is retried, even one whose `COMMIT` outcome is unknown.
    /// Needs a [`key`](TableBuilder::key).
    InsertIgnore,
    /// Insert or update by natural key: `INSERT … SELECT … FROM
    /// UNNEST($1::…[], …) ON CONFLICT (key) DO UPDATE SET` every other column.
    /// Idempotent. Needs a key and at least one non-key column.
    Upsert,
    /// Update existing rows by natural key: `UPDATE … FROM UNNEST(…)`.
    /// Idempotent. Needs a key and at least one non-key column.
    Update,
}

impl WriteMode {
    /// Whether running a batch twice leaves the same rows as running it once.
    #[must_use]
    pub fn is_idempotent(self) -> bool {
        !matches!(self, WriteMode::Copy)
    }
}

/// A table a batch writer writes to; built with [`Table::builder`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    name: String,
    columns: Vec<(String, ColumnType)>,
    key: Vec<String>,
}

impl Table {
    /// A builder for the table called `name` (optionally `schema.name`).
    pub fn builder(name: impl Into<String>) -> TableBuilder {
        TableBuilder {
            table: Table {
                name: name.into(),
                columns: Vec::new(),
                key: Vec::new(),
            },
        }
    }

    /// The table name as given.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The columns, in row order.
    #[must_use]
    pub fn columns(&self) -> &[(String, ColumnType)] {
        &self.columns
    }

    /// The natural key's columns (empty if none).
    #[must_use]
    pub fn key(&self) -> &[String] {
        &self.key
    }

    /// The table name, quoted (`"schema"."name"`).
    pub(crate) fn quoted_name(&self) -> String {
        self.name
            .split('.')
            .map(quote_ident)
            .collect::<Vec<_>>()
            .join(".")
    }

    pub(crate) fn quoted_columns(&self) -> String {
        self.columns
            .iter()
            .map(|(c, _)| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(crate) fn quoted_key(&self) -> String {
        self.key
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The columns that are not part of the key.
    pub(crate) fn non_key_columns(&self) -> impl Iterator<Item = &str> {
        self.columns
            .iter()
            .map(|(c, _)| c.as_str())
            .filter(|c| !self.key.iter().any(|k| k == c))
    }

    /// Checks that `mode` can be used with this table.
    pub(crate) fn check_mode(&self, mode: WriteMode) -> Result<(), ConfigError> {
        if mode != WriteMode::Copy && self.key.is_empty() {
            return Err(ConfigError::new(
                "batch_writer.mode",
                format!(
                    "{mode:?} needs a natural key: set `Table::builder(..).key([..])` for `{}`",
                    self.name
                ),
            ));
        }
        if matches!(mode, WriteMode::Upsert | WriteMode::Update) && self.non_key_columns().next().is_none() {
            return Err(ConfigError::new(
                "batch_writer.mode",
                format!(
                    "{mode:?} needs at least one column outside the key of `{}`",
                    self.name
                ),
            ));
        }
        Ok(())
    }
}

/// Builds a [`Table`].
#[derive(Clone, Debug)]
#[must_use]
pub struct TableBuilder {
    table: Table,
}

impl TableBuilder {
    /// Adds a column; rows give their values in the order columns are added.
    pub fn column(mut self, name: impl Into<String>, ty: ColumnType) -> Self {
        self.table.columns.push((name.into(), ty));
        self
    }

    /// The natural key (a unique or primary key of the table), needed by the
    /// idempotent write modes. Default: none.
    pub fn key<I, S>(mut self, columns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.table.key = columns.into_iter().map(Into::into).collect();
        self
    }

    /// Checks the table.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `table.name`, `table.columns` or `table.key`
    /// if the name is empty, there are no columns, a column repeats, or a
    /// key column is not a column.
    pub fn build(self) -> Result<Table, ConfigError> {
        let t = self.table;
        if t.name.trim().is_empty() || t.name.split('.').any(str::is_empty) {
            return Err(ConfigError::new(
                "table.name",
                format!("must be `name` or `schema.name`, got {:?}", t.name),
            ));
        }
        if t.columns.is_empty() {
            return Err(ConfigError::new("table.columns", "at least one column is needed"));
        }
        for (i, (c, _)) in t.columns.iter().enumerate() {
            if c.is_empty() {
                return Err(ConfigError::new("table.columns", "a column name is empty"));
            }
            if t.columns[..i].iter().any(|(p, _)| p == c) {
                return Err(ConfigError::new(
                    "table.columns",
                    format!("column `{c}` is listed twice"),
                ));
            }
        }
        if let Some(k) = t.key.iter().find(|k| !t.columns.iter().any(|(c, _)| c == *k)) {
            return Err(ConfigError::new(
                "table.key",
                format!("key column `{k}` is not one of the table's columns"),
            ));
        }
        Ok(t)
    }
}

/// Quotes an SQL identifier: `a"b` → `"a""b"`.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_names_the_bad_field() {
        assert_eq!(
            Table::builder("")
                .column("a", ColumnType::Int8)
                .build()
                .unwrap_err()
                .field(),
            "table.name"
        );
        assert_eq!(Table::builder("t").build().unwrap_err().field(), "table.columns");
        let dup = Table::builder("t")
            .column("a", ColumnType::Int8)
            .column("a", ColumnType::Text);
        assert_eq!(dup.build().unwrap_err().field(), "table.columns");
        let bad_key = Table::builder("t").column("a", ColumnType::Int8).key(["b"]);
        assert_eq!(bad_key.build().unwrap_err().field(), "table.key");
    }

    #[test]
    fn modes_need_keys() {
        let t = Table::builder("s.t")
            .column("a", ColumnType::Int8)
            .build()
            .unwrap();
        assert_eq!(t.quoted_name(), "\"s\".\"t\"");
        assert!(t.check_mode(WriteMode::Copy).is_ok());
        assert_eq!(
            t.check_mode(WriteMode::InsertIgnore).unwrap_err().field(),
            "batch_writer.mode"
        );
        let k = Table::builder("t")
            .column("a", ColumnType::Int8)
            .key(["a"])
            .build()
            .unwrap();
        assert!(k.check_mode(WriteMode::InsertIgnore).is_ok());
        assert!(k.check_mode(WriteMode::Upsert).is_err());
    }
}
