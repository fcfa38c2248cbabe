//! `--corpus FILE`: import a real corpus (JSONL, CSV or TSV) at startup,
//! instead of the demo.
//
// JSONL lines are post objects (the fields of `POST /api/posts`). CSV and
// TSV rows are mapped to post fields by `--corpus-columns`, e.g.
// `id=0,text=2` (0-based indices, no header row) or `text=body,author=user`
// (header names, the first row is the header). Rows without an id get
// `corpus-<row>`, so importing the same file again adds nothing.

use std::path::{Path, PathBuf};

use brisk_core::{Post, Timestamp};

/// The file's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CorpusFormat {
    /// One JSON post object per line.
    Jsonl,
    /// Comma-separated values.
    Csv,
    /// Tab-separated values.
    Tsv,
}

/// Where a post field comes from in a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Column {
    /// A 0-based index.
    Index(usize),
    /// A header name.
    Name(String),
}

/// A corpus to import: the file, its format and the column mapping.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CorpusSpec {
    /// The file.
    pub path: PathBuf,
    /// Its format (from `--corpus-format`, else the extension).
    pub format: CorpusFormat,
    /// Post field (`id`, `text`, `author`, `source`, `created_at`,
    /// `language`) → column, for CSV and TSV.
    pub columns: Vec<(String, Column)>,
}

const FIELDS: &[&str] = &["id", "text", "author", "source", "created_at", "language"];

impl CorpusSpec {
    /// Reads `--corpus-format` and `--corpus-columns` for `path`.
    ///
    /// # Errors
    ///
    /// A message for the setting that is wrong.
    pub fn parse(
        path: PathBuf,
        format: Option<&str>,
        columns: Option<&str>,
    ) -> Result<Self, (&'static str, String)> {
        let format = match format.map(str::trim) {
            Some("jsonl" | "ndjson") => CorpusFormat::Jsonl,
            Some("csv") => CorpusFormat::Csv,
            Some("tsv") => CorpusFormat::Tsv,
            Some(other) => return Err(("corpus-format", format!("{other:?} is not jsonl, csv or tsv"))),
            None => match path.extension().and_then(|e| e.to_str()) {
                Some("jsonl" | "ndjson" | "json") => CorpusFormat::Jsonl,
                Some("csv") => CorpusFormat::Csv,
                Some("tsv" | "tab") => CorpusFormat::Tsv,
                _ => {
                    return Err((
                        "corpus-format",
                        format!("{} has no known extension; say jsonl, csv or tsv", path.display()),
                    ));
                }
            },
        };
        let mut mapped = Vec::new();
        for part in columns
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let Some((field, col)) = part.split_once('=') else {
                return Err(("corpus-columns", format!("{part:?} is not field=column")));
            };
            let field = field.trim();
            if !FIELDS.contains(&field) {
                return Err((
                    "corpus-columns",
                    format!("{field:?} is not a post field ({})", FIELDS.join(", ")),
                ));
            }
            let col = col.trim();
            let col = col
                .parse::<usize>()
                .map_or_else(|_| Column::Name(col.to_owned()), Column::Index);
            mapped.push((field.to_owned(), col));
        }
        if format != CorpusFormat::Jsonl && !mapped.is_empty() && !mapped.iter().any(|(f, _)| f == "text") {
            return Err(("corpus-columns", "must map `text`".to_owned()));
        }
        Ok(Self {
            path,
            format,
            columns: mapped,
        })
    }
}

/// Reads the corpus into posts, each validated as `POST /api/posts` would.
pub(crate) fn read(spec: &CorpusSpec, limits: &brisk_core::PostLimits) -> Result<Vec<Post>, String> {
    let now = Timestamp::from_system_time(std::time::SystemTime::now());
    let posts = match spec.format {
        CorpusFormat::Jsonl => read_jsonl(&spec.path, now)?,
        CorpusFormat::Csv => read_delimited(spec, b',', now)?,
        CorpusFormat::Tsv => read_delimited(spec, b'\t', now)?,
    };
    for (i, p) in posts.iter().enumerate() {
        p.validate(limits)
            .map_err(|e| format!("{}: record {}: {e}", spec.path.display(), i + 1))?;
    }
    Ok(posts)
}

fn read_jsonl(path: &Path, now: Timestamp) -> Result<Vec<Post>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut posts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |m: &str| format!("{}:{}: {m}", path.display(), i + 1);
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| at(&e.to_string()))?;
        let s = |k: &str| v.get(k).and_then(serde_json::Value::as_str).map(str::to_owned);
        let Some(text) = s("text") else {
            return Err(at("no `text` string"));
        };
        let created = match v.get("created_at") {
            None | Some(serde_json::Value::Null) => now,
            Some(serde_json::Value::Number(n)) => n
                .as_i64()
                .map(Timestamp::from_unix_millis)
                .ok_or_else(|| at("created_at is not Unix milliseconds"))?,
            Some(serde_json::Value::String(t)) => {
                t.parse().map_err(|_| at("created_at is not an RFC 3339 time"))?
            }
            Some(_) => return Err(at("created_at is not a time")),
        };
        let id = s("id").unwrap_or_else(|| format!("corpus-{}", i + 1));
        let mut post = Post::new(id, text, created)
            .with_author(s("author").unwrap_or_default())
            .with_source(s("source").unwrap_or_else(|| "corpus".into()));
        if let Some(l) = s("language") {
            post = post.with_language(l);
        }
        posts.push(post);
    }
    Ok(posts)
}

fn read_delimited(spec: &CorpusSpec, delimiter: u8, now: Timestamp) -> Result<Vec<Post>, String> {
    let path = &spec.path;
    let by_name = spec.columns.iter().any(|(_, c)| matches!(c, Column::Name(_)));
    let columns = if spec.columns.is_empty() {
        vec![("text".to_owned(), Column::Name("text".to_owned()))]
    } else {
        spec.columns.clone()
    };
    let has_header = by_name || spec.columns.is_empty();
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(has_header)
        .flexible(true)
        // TSV files (e.g. tweets) often hold stray quotes that are text.
        .quoting(delimiter != b'\t')
        .from_path(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut index: Vec<(String, usize)> = Vec::new();
    let headers = if has_header {
        Some(
            reader
                .headers()
                .map_err(|e| format!("{}: {e}", path.display()))?
                .clone(),
        )
    } else {
        None
    };
    for (field, col) in &columns {
        let i = match col {
            Column::Index(i) => *i,
            Column::Name(name) => headers
                .as_ref()
                .and_then(|h| h.iter().position(|x| x.trim() == name))
                .ok_or_else(|| {
                    format!(
                        "{}: no column named {name:?} for `{field}` (use --corpus-columns)",
                        path.display()
                    )
                })?,
        };
        index.push((field.clone(), i));
    }
    let mut posts = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("{}: {e}", path.display()))?;
        let get = |field: &str| -> Option<String> {
            index
                .iter()
                .find(|(f, _)| f == field)
                .and_then(|(_, i)| record.get(*i))
                .map(str::to_owned)
        };
        let at = |m: &str| format!("{}: row {}: {m}", path.display(), row + 1);
        let Some(text) = get("text") else {
            return Err(at("the text column is missing"));
        };
        let created = match get("created_at") {
            None => now,
            Some(t) => t
                .parse::<Timestamp>()
                .or_else(|_| t.parse::<i64>().map(Timestamp::from_unix_millis))
                .map_err(|_| at("created_at is neither RFC 3339 nor Unix milliseconds"))?,
        };
        let id = get("id").unwrap_or_else(|| format!("corpus-{}", row + 1));
        let mut post = Post::new(id, text, created)
            .with_author(get("author").unwrap_or_default())
            .with_source(get("source").unwrap_or_else(|| "corpus".into()));
        if let Some(l) = get("language") {
            post = post.with_language(l);
        }
        posts.push(post);
    }
    Ok(posts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_by_index_and_csv_by_name() {
        let dir = std::env::temp_dir().join(format!("brisk-corpus-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tsv = dir.join("c.tsv");
        std::fs::write(&tsv, "1\t0.5\tHello \"world\"\n2\t-1\tSecond post\n").unwrap();
        let spec = CorpusSpec::parse(tsv, None, Some("id=0,text=2")).unwrap();
        let posts = read(&spec, &brisk_core::PostLimits::default()).unwrap();
        assert_eq!(posts.len(), 2);
        assert_eq!(
            (posts[0].id.as_str(), posts[0].text.as_str()),
            ("1", "Hello \"world\"")
        );

        let csv = dir.join("c.csv");
        std::fs::write(&csv, "user,body\n@a,\"with, comma\"\n@b,plain\n").unwrap();
        let spec = CorpusSpec::parse(csv, None, Some("text=body,author=user")).unwrap();
        let posts = read(&spec, &brisk_core::PostLimits::default()).unwrap();
        assert_eq!(posts[0].text, "with, comma");
        assert_eq!(posts[1].author, "@b");
        assert_eq!(posts[1].id, "corpus-2");

        let bad = CorpusSpec::parse(dir.join("c.csv"), None, Some("body=1")).unwrap_err();
        assert_eq!(bad.0, "corpus-columns");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
