//! `brisk-load suite`: brisk's own parts run in-process, each line beside
//! the figure the old system published.
//
// Every input is generated here from a fixed seed (no data files), so each
// run measures the same work. Time lines report a median over repeats (or an
// average where the old figure is one), and the old figure at another size
// is the published one scaled linearly by the work, said so in the line's
// `old_text`. The memory line runs first, while the process is still small,
// so its RSS growth is the posts', the model's and the matcher's.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use brisk_cache::Cache;
use brisk_db_pool::{Backend, ColumnType, Store, Table, WriteMode};
use brisk_generator::{GenerateOptions, Generator};
use brisk_pattern_matcher::{Dictionary, Entity, Keyword, Matcher};
use serde::Serialize;

use crate::{LoadError, fanout};

/// How much work each line does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scale {
    /// A reduced size that runs in seconds (tests, `--quick`): 200 tweets,
    /// 200 posts, 20 inserted rows per batch, 10 concurrent requests.
    Small,
    /// The old system's sizes: 1,000 tweets, ~1,000 posts, 100 rows,
    /// 20 concurrent requests, 994 posts in memory.
    Default,
    /// The default lines, then the same lines at 100,000 tweets and posts
    /// and 10,000 concurrent requests, to show how the cost grows.
    Large,
}

impl Scale {
    /// Parses `small`, `default` or `large`.
    ///
    /// # Errors
    ///
    /// [`LoadError::Setting`] naming `--scale` for anything else.
    pub fn parse(s: &str) -> Result<Self, LoadError> {
        match s {
            "small" | "quick" => Ok(Self::Small),
            "default" => Ok(Self::Default),
            "large" => Ok(Self::Large),
            other => Err(LoadError::setting(
                "--scale",
                format!("must be small, default or large, got {other:?}"),
            )),
        }
    }
}

/// The sizes of one pass over the lines.
#[derive(Clone, Copy, Debug)]
struct Sizes {
    name: &'static str,
    tweets: usize,
    posts: usize,
    generations: usize,
    cache_keys: usize,
    cache_requests: usize,
    insert_rows: usize,
    concurrent: usize,
    memory_posts: usize,
    repeats: usize,
}

const SMALL: Sizes = Sizes {
    name: "small",
    tweets: 200,
    posts: 200,
    generations: 20,
    cache_keys: 2_000,
    cache_requests: 20_000,
    insert_rows: 20,
    concurrent: 10,
    memory_posts: 200,
    repeats: 3,
};

const DEFAULT: Sizes = Sizes {
    name: "default",
    tweets: 1_000,
    posts: 1_000,
    generations: 200,
    cache_keys: 10_000,
    cache_requests: 200_000,
    insert_rows: 100,
    concurrent: 20,
    memory_posts: 994,
    repeats: 11,
};

const LARGE: Sizes = Sizes {
    name: "large",
    tweets: 100_000,
    posts: 100_000,
    generations: 200,
    cache_keys: 100_000,
    cache_requests: 2_000_000,
    insert_rows: 100_000,
    // From child processes: one process may hold 20,000 open files, and
    // the server's 10,000 sockets are in this one.
    concurrent: 10_000,
    memory_posts: 100_000,
    repeats: 3,
};

/// The settings of one suite run.
#[derive(Clone, Debug)]
pub struct SuiteOptions {
    /// The sizes. Default [`Scale::Default`].
    pub scale: Scale,
    /// A PostgreSQL URL (`DATABASE_URL`): the insert line also runs there.
    /// Default none (SQLite only).
    pub database_url: Option<String>,
    /// Where the SQLite files and the server's data go (a fresh directory
    /// under it, removed at the end). Default the system's temp dir.
    pub temp_dir: PathBuf,
    /// How many child processes send the concurrent requests: `Some(0)`
    /// sends them from this process. Default `None`: from this process up
    /// to 1,000 requests, above that one process per 2,500 (a process may
    /// hold only so many open files, and the server's are in this one).
    pub client_processes: Option<usize>,
    /// The executable the client processes run (with the hidden
    /// `suite-client` subcommand). Default `None`: this process's own,
    /// which must then be `brisk-load`.
    pub client_exe: Option<PathBuf>,
}

impl Default for SuiteOptions {
    fn default() -> Self {
        Self {
            scale: Scale::Default,
            database_url: None,
            temp_dir: std::env::temp_dir(),
            client_processes: None,
            client_exe: None,
        }
    }
}

/// One line of the suite's table.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct SuiteLine {
    /// What was measured, with its size.
    pub line: String,
    /// The old system's figure in `unit` (scaled linearly at other sizes).
    pub old: f64,
    /// brisk's figure in `unit`; `None` when the line could not run.
    pub brisk: Option<f64>,
    /// `ms`, `%` or `MB`.
    pub unit: &'static str,
    /// How many times better brisk is (above 1 is better); `None` when the
    /// line could not run.
    pub ratio: Option<f64>,
    /// The old figure as published, or how it was scaled.
    pub old_text: String,
    /// The scale pass the line belongs to (`small`, `default`, `large`).
    pub scale: &'static str,
    /// How it was measured, or why it could not run.
    pub note: String,
}

impl SuiteLine {
    fn lower_is_better(line: String, old: f64, old_text: String, brisk: f64, unit: &'static str) -> Self {
        Self {
            line,
            old,
            brisk: Some(brisk),
            unit,
            ratio: Some(old / brisk),
            old_text,
            scale: "",
            note: String::new(),
        }
    }

    fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }

    /// The line as one JSON object:
    /// `{"line","old","brisk","unit","ratio","old_text","scale","note"}`.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The lines as a table: line, old, brisk, ratio, then the notes.
#[must_use]
pub fn suite_table(lines: &[SuiteLine]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<58} {:>22} {:>14} {:>9}",
        "line", "old system", "brisk", "ratio"
    );
    for l in lines {
        let brisk = l.brisk.map_or_else(
            || "not available".to_owned(),
            |b| format!("{} {}", figure(b), l.unit),
        );
        let ratio = l.ratio.map_or_else(
            || "-".to_owned(),
            |r| {
                if r < 10.0 {
                    format!("{r:.2}x")
                } else {
                    format!("{r:.1}x")
                }
            },
        );
        let _ = writeln!(
            out,
            "{:<58} {:>22} {:>14} {:>9}",
            l.line, l.old_text, brisk, ratio
        );
    }
    out.push_str("\nnotes:\n");
    for l in lines {
        if !l.note.is_empty() {
            let _ = writeln!(out, "- {}: {}", l.line, l.note);
        }
    }
    out
}

fn figure(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Runs the suite and returns its lines, in table order.
///
/// The memory line runs first; the server line starts brisk-server
/// in-process on `127.0.0.1:0` with its data in a temporary directory.
///
/// # Errors
///
/// [`LoadError::Io`] when the temporary directory cannot be made; a part
/// that fails to run gives a line without a brisk figure and the reason.
pub async fn run_suite(options: &SuiteOptions) -> Result<Vec<SuiteLine>, LoadError> {
    let dir = options.temp_dir.join(format!(
        "brisk-load-suite-{}-{}",
        std::process::id(),
        fastrand::u32(..)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| LoadError::io(format!("creating {}", dir.display()), e))?;
    let passes: &[Sizes] = match options.scale {
        Scale::Small => &[SMALL],
        Scale::Default => &[DEFAULT],
        Scale::Large => &[DEFAULT, LARGE],
    };
    let mut lines = Vec::new();
    for (i, sizes) in passes.iter().enumerate() {
        let pass_dir = dir.join(sizes.name);
        std::fs::create_dir_all(&pass_dir)
            .map_err(|e| LoadError::io(format!("creating {}", pass_dir.display()), e))?;
        let mut pass = Vec::new();
        // The memory line first, while the process is small.
        let mut memory = memory_line(sizes, &pass_dir).await;
        if i > 0 {
            memory
                .note
                .push_str("; measured after the earlier pass, whose freed memory is reused: a lower bound");
        }
        pass.push(memory);
        pass.push(analysis_line(sizes));
        pass.push(generation_line(sizes));
        pass.push(cache_line(sizes).await);
        pass.push(
            insert_line(
                sizes,
                &format!("sqlite://{}/inserts.db", pass_dir.display()),
                "SQLite",
            )
            .await,
        );
        if let Some(url) = &options.database_url {
            pass.push(insert_line(sizes, url, "PostgreSQL").await);
        }
        pass.push(server_line(sizes, &pass_dir, options).await);
        for mut l in pass {
            l.scale = sizes.name;
            lines.push(l);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(lines)
}

fn scaled(old: f64, unit: &str, published: &str, n: usize, base: usize) -> (f64, String) {
    if n == base {
        (old, published.to_owned())
    } else {
        let k = n as f64 / base as f64;
        (old * k, format!("~{} {unit} (linear)", figure(old * k)))
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------- inputs

const SUBJECTS: &[&str] = &[
    "the market",
    "$ABC",
    "$XYZ",
    "our team",
    "the new model",
    "this release",
    "@analyst",
    "bitcoin",
    "the fed",
    "earnings",
    "the startup",
    "my portfolio",
    "rust",
    "the build",
    "the launch",
];
const VERBS: &[&str] = &[
    "looks", "is", "feels", "keeps", "turned", "stays", "went", "seems", "got", "remains",
];
const TAILS: &[&str] = &[
    "strong after the earnings call",
    "weak into the close",
    "bullish for the week ahead",
    "bearish again, not great",
    "faster than anyone expected",
    "overvalued if you ask me",
    "ready to rally 🚀",
    "a buy under these levels",
    "risky with rates this high",
    "the best trade of the year",
    "not worth the hype",
    "quiet before the data tomorrow",
    "up 12% since monday",
    "down hard on the news",
    "the story nobody talks about",
];
const EXTRAS: &[&str] = &[
    "#crypto",
    "#stocks",
    "#rust",
    "#ai",
    "🚀",
    "📉",
    "what do you think?",
    "thread 1/",
    "https://example.com/news/123",
    "no doubt.",
    "watch this space",
    "big if true",
];

/// `n` tweet-like posts (mentions, hashtags, cashtags, emoji, URLs), the
/// same for the same seed.
fn posts(n: usize, seed: u64) -> Vec<String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let pick = |rng: &mut fastrand::Rng, w: &[&'static str]| w[rng.usize(..w.len())];
    (0..n)
        .map(|_| {
            let mut t = String::with_capacity(140);
            for s in 0..rng.usize(1..=3) {
                if s > 0 {
                    t.push_str(". ");
                }
                let _ = write!(
                    t,
                    "{} {} {}",
                    pick(&mut rng, SUBJECTS),
                    pick(&mut rng, VERBS),
                    pick(&mut rng, TAILS)
                );
            }
            for _ in 0..rng.usize(0..=2) {
                t.push(' ');
                t.push_str(pick(&mut rng, EXTRAS));
            }
            t
        })
        .collect()
}

fn generated_word(rng: &mut fastrand::Rng) -> String {
    const SYLLABLES: &[&str] = &[
        "ka", "zo", "ri", "ven", "tor", "lu", "mex", "qua", "dri", "pol", "sen", "vy", "xan", "bre", "thu",
    ];
    (0..rng.usize(2..=4))
        .map(|_| SYLLABLES[rng.usize(..SYLLABLES.len())])
        .collect()
}

/// A 1,000-term dictionary as the pattern-matcher bench builds it: one
/// entity per 20 terms (a name and a `$TICKER`), words of the texts as the
/// first keywords, then generated words and phrases that do not occur.
fn dictionary(texts: &[String]) -> Result<Dictionary, String> {
    const TERMS: usize = 1_000;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for t in texts {
        for w in t
            .split(|c: char| !c.is_ascii_alphabetic())
            .filter(|w| w.len() >= 4)
        {
            *counts.entry(w.to_ascii_lowercase()).or_default() += 1;
        }
    }
    let mut vocab: Vec<(String, usize)> = counts.into_iter().collect();
    vocab.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut rng = fastrand::Rng::with_seed(7);
    let mut seen = std::collections::HashSet::new();
    let mut builder = Dictionary::builder();
    let mut terms = 0;
    for i in 0..TERMS / 20 {
        let name = loop {
            let w = generated_word(&mut rng);
            if seen.insert(w.clone()) {
                break w;
            }
        };
        let ticker = format!("$Q{i:03}");
        builder = builder.entity(Entity::new(name).alias(ticker));
        terms += 2;
    }
    for (w, _) in vocab.iter().take(60) {
        if seen.insert(w.clone()) {
            builder = builder.keyword(Keyword::term(w.clone(), 5.0 + (terms % 8) as f64 * 5.0));
            terms += 1;
        }
    }
    while terms < TERMS {
        let w = if rng.bool() {
            generated_word(&mut rng)
        } else {
            format!("{} {}", generated_word(&mut rng), generated_word(&mut rng))
        };
        if seen.insert(w.clone()) {
            builder = builder.keyword(Keyword::term(w, 5.0 + (terms % 8) as f64 * 5.0));
            terms += 1;
        }
    }
    builder.build().map_err(|e| e.to_string())
}

fn not_available(
    line: String,
    old: f64,
    old_text: String,
    unit: &'static str,
    why: impl Into<String>,
) -> SuiteLine {
    SuiteLine {
        line,
        old,
        brisk: None,
        unit,
        ratio: None,
        old_text,
        scale: "",
        note: format!("not available: {}", why.into()),
    }
}

// ---------------------------------------------------------------- lines

fn analysis_line(s: &Sizes) -> SuiteLine {
    let line = format!("pattern analysis, {} tweets", thousands(s.tweets));
    let (old, old_text) = scaled(45.0, "ms", "~45 ms", s.tweets, 1_000);
    let texts = posts(s.tweets, 11);
    let matcher = match dictionary(&texts).and_then(|d| Matcher::new(d).map_err(|e| e.to_string())) {
        Ok(m) => m,
        Err(e) => return not_available(line, old, old_text, "ms", e),
    };
    let mut relevant = 0;
    let mut times = Vec::new();
    for _ in 0..s.repeats {
        let start = Instant::now();
        relevant = texts
            .iter()
            .filter(|t| matcher.analyze(t).relevance.relevant)
            .count();
        times.push(ms(start.elapsed()));
    }
    let brisk = median(times);
    SuiteLine::lower_is_better(line, old, old_text, brisk, "ms").note(format!(
        "Matcher::analyze (match, score, structure) over generated texts, 1,000-term dictionary, \
         one thread; median of {} runs; {relevant} texts relevant",
        s.repeats
    ))
}

fn generation_line(s: &Sizes) -> SuiteLine {
    let line = format!(
        "one generated tweet, average (trained on {} posts)",
        thousands(s.posts)
    );
    let (old, old_text) = (85.0, "~85 ms".to_owned());
    let corpus = posts(s.posts, 23);
    let trained = Generator::builder()
        .build()
        .and_then(|mut g| g.train_texts(&corpus).map(|_| g));
    let generator = match trained {
        Ok(g) => g,
        Err(e) => return not_available(line, old, old_text, "ms", e.to_string()),
    };
    let mut failed = 0;
    let start = Instant::now();
    for i in 0..s.generations {
        if generator
            .generate(&GenerateOptions::new().max_chars(280).seed(i as u64))
            .is_err()
        {
            failed += 1;
        }
    }
    let brisk = ms(start.elapsed()) / s.generations as f64;
    SuiteLine::lower_is_better(line, old, old_text, brisk, "ms").note(format!(
        "Generator::generate (local model, novelty test, confidence), average of {} seeds; \
         {failed} found no novel output",
        s.generations
    ))
}

/// A Zipf(1.0) sampler over `1..=n` by inverse CDF on a table.
fn zipf_table(n: usize) -> Vec<f64> {
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = (1..=n)
        .map(|k| {
            acc += 1.0 / k as f64;
            acc
        })
        .collect();
    for c in &mut cdf {
        *c /= acc;
    }
    cdf
}

async fn cache_line(s: &Sizes) -> SuiteLine {
    let capacity = s.cache_keys / 5;
    let line = format!(
        "cache hit rate, Zipf repeat requests ({} keys)",
        thousands(s.cache_keys)
    );
    let (old, old_text) = (85.0, "> 85%".to_owned());
    let cache: Cache<u64, u64> = match Cache::builder().max_capacity(capacity as u64).build() {
        Ok(c) => c,
        Err(e) => return not_available(line, old, old_text, "%", e.to_string()),
    };
    let cdf = zipf_table(s.cache_keys);
    let mut rng = fastrand::Rng::with_seed(99);
    let mut load_errors = 0u64;
    for _ in 0..s.cache_requests {
        let u = rng.f64();
        let key = cdf.partition_point(|&c| c < u) as u64;
        let loaded = cache
            .get_or_load(key, || async move { Ok::<_, std::convert::Infallible>(key * 2) })
            .await;
        if loaded.is_err() {
            load_errors += 1;
        }
    }
    let stats = cache.stats();
    let rate = stats.hit_ratio() * 100.0;
    // The best any cache of this size can do on this stream: the share of
    // requests for the `capacity` most popular keys.
    let bound = cdf[capacity - 1] * 100.0;
    SuiteLine {
        line,
        old,
        brisk: Some(rate),
        unit: "%",
        ratio: Some(rate / old),
        old_text,
        scale: "",
        note: format!(
            "get_or_load, {} requests, Zipf s = 1.0, capacity {} entries (20% of the keys); \
             {} hits, {} misses, {load_errors} load errors; an ideal cache of this size would hit {bound:.1}%",
            thousands(s.cache_requests),
            thousands(capacity),
            stats.hits,
            stats.misses
        ),
    }
}

async fn insert_line(s: &Sizes, url: &str, backend: &str) -> SuiteLine {
    let line = format!("{} batched inserts ({backend})", thousands(s.insert_rows));
    let (old, old_text) = scaled(30.0, "ms", "~30 ms", s.insert_rows, 100);
    match inserts(s, url).await {
        Ok((brisk, note)) => SuiteLine::lower_is_better(line, old, old_text, brisk, "ms").note(note),
        Err(e) => not_available(line, old, old_text, "ms", e),
    }
}

async fn inserts(s: &Sizes, url: &str) -> Result<(f64, String), String> {
    let err = |e: brisk_db_pool::Error| e.to_string();
    let store = Store::connect(url).await.map_err(err)?;
    let table = format!("brisk_load_suite_{}", fastrand::u32(..));
    let create = match store.backend() {
        Backend::Postgres => format!(
            "CREATE TABLE {table} (id bigint PRIMARY KEY, author text NOT NULL, body text NOT NULL, likes bigint NOT NULL)"
        ),
        _ => format!(
            "CREATE TABLE {table} (id INTEGER PRIMARY KEY, author TEXT NOT NULL, body TEXT NOT NULL, likes INTEGER NOT NULL)"
        ),
    };
    store.execute_batch(&create).await.map_err(err)?;
    let spec = Table::builder(table.clone())
        .column("id", ColumnType::Int8)
        .column("author", ColumnType::Text)
        .column("body", ColumnType::Text)
        .column("likes", ColumnType::Int8)
        .key(["id"])
        .build()
        .map_err(|e| e.to_string())?;
    // One batch per write: a full batch is written at once (no linger).
    let chunk = s.insert_rows.min(1_000);
    let writer = store
        .batch_writer::<(i64, String, String, i64)>(spec)
        .mode(WriteMode::InsertIgnore)
        .max_batch_rows(chunk)
        .build()
        .map_err(err)?;
    let texts = posts(s.insert_rows.min(5_000), 31);
    let mut next_id = 0i64;
    let mut times = Vec::new();
    // One warm-up round (connections, statement caches), then the repeats.
    for round in 0..=s.repeats {
        let rows: Vec<_> = (0..s.insert_rows)
            .map(|i| {
                next_id += 1;
                (
                    next_id,
                    format!("user{}", i % 97),
                    texts[i % texts.len()].clone(),
                    (i % 1000) as i64,
                )
            })
            .collect();
        let start = Instant::now();
        let mut receipts = Vec::new();
        let mut rows = rows.into_iter();
        loop {
            let part: Vec<_> = rows.by_ref().take(chunk).collect();
            if part.is_empty() {
                break;
            }
            receipts.push(writer.write(part).await.map_err(err)?);
        }
        for r in receipts {
            r.await.map_err(err)?;
        }
        if round > 0 {
            times.push(ms(start.elapsed()));
        }
    }
    let stored = store
        .query_i64(&format!("SELECT count(*) FROM {table}"))
        .await
        .map_err(err)?;
    let _ = store.execute_batch(&format!("DROP TABLE {table}")).await;
    let expected = (s.insert_rows * (s.repeats + 1)) as i64;
    if stored != expected {
        return Err(format!("{stored} rows stored, {expected} written"));
    }
    Ok((
        median(times),
        format!(
            "BatchWriter (insert-ignore, 4 columns), writes of {} rows, timed until every row is \
             acknowledged after commit; median of {} rounds after a warm-up",
            thousands(chunk),
            s.repeats
        ),
    ))
}

/// This process's resident set, in kB, from `/proc/self/status`.
fn rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

async fn memory_line(s: &Sizes, dir: &std::path::Path) -> SuiteLine {
    let line = format!("memory with {} posts loaded", thousands(s.memory_posts));
    let (old, old_text) = scaled(350.0, "MB", "< 350 MB", s.memory_posts, 994);
    let Some(before) = rss_kb() else {
        return not_available(line, old, old_text, "MB", "/proc/self/status has no VmRSS");
    };
    let held = match load_posts(s.memory_posts, dir).await {
        Ok(held) => held,
        Err(e) => return not_available(line, old, old_text, "MB", e),
    };
    let after = rss_kb().unwrap_or(before);
    let growth = (after.saturating_sub(before)) as f64 / 1024.0;
    let out = SuiteLine::lower_is_better(line, old, old_text, growth, "MB").note(format!(
        "RSS growth of this process (VmRSS {:.1} -> {:.1} MB) for the posts in SQLite and in \
         memory, the generator trained on them and the 1,000-term matcher; the whole process \
         (runtime, SQLite) is {:.1} MB",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        after as f64 / 1024.0
    ));
    drop(held);
    out
}

/// The posts (in SQLite and in memory), the trained generator and the
/// matcher, kept alive while the RSS is read.
async fn load_posts(
    n: usize,
    dir: &std::path::Path,
) -> Result<(Store, Vec<String>, Generator, Matcher), String> {
    let corpus = posts(n, 5);
    let store = Store::connect(&format!("sqlite://{}/memory.db", dir.display()))
        .await
        .map_err(|e| e.to_string())?;
    store
        .execute_batch("CREATE TABLE posts (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        .await
        .map_err(|e| e.to_string())?;
    let table = Table::builder("posts")
        .column("id", ColumnType::Int8)
        .column("body", ColumnType::Text)
        .key(["id"])
        .build()
        .map_err(|e| e.to_string())?;
    let writer = store
        .batch_writer::<(i64, String)>(table)
        .mode(WriteMode::InsertIgnore)
        .build()
        .map_err(|e| e.to_string())?;
    let rows = corpus
        .iter()
        .enumerate()
        .map(|(i, t)| (i as i64, t.clone()))
        .collect();
    writer.write_and_wait(rows).await.map_err(|e| e.to_string())?;
    let mut generator = Generator::builder().build().map_err(|e| e.to_string())?;
    generator.train_texts(&corpus).map_err(|e| e.to_string())?;
    let matcher = Matcher::new(dictionary(&corpus)?).map_err(|e| e.to_string())?;
    Ok((store, corpus, generator, matcher))
}

async fn server_line(s: &Sizes, dir: &std::path::Path, options: &SuiteOptions) -> SuiteLine {
    let line = format!(
        "{} concurrent generate requests through the server",
        thousands(s.concurrent)
    );
    let (old, old_text) = scaled(200.0, "ms", "~200 ms", s.concurrent, 20);
    let mut settings = brisk_server::Settings::with_data_dir(dir.join("server"), ([127, 0, 0, 1], 0).into());
    // One client sends everything: the per-client limit would answer 429.
    settings.client_rate_limit_per_minute = 0;
    // Every request at once must fit in the generate queue (16,384 by default).
    settings.generate_queue_capacity = settings.generate_queue_capacity.max(s.concurrent + 64);
    // The server's accepted sockets, beside its files; the clients' sockets
    // are in child processes above `IN_PROCESS_MAX`.
    fanout::raise_file_limit(s.concurrent.min(fanout::IN_PROCESS_MAX) + s.concurrent + 512);
    let server = match brisk_server::start(settings).await {
        Ok(s) => s,
        Err(e) => {
            return not_available(
                line,
                old,
                old_text,
                "ms",
                format!("brisk-server did not start: {e}"),
            );
        }
    };
    let addr = server.local_addr();
    let result = concurrent_rounds(addr, s, options).await;
    server.shutdown().await;
    match result {
        Ok((brisk, note)) => SuiteLine::lower_is_better(line, old, old_text, brisk, "ms").note(note),
        Err(e) => not_available(line, old, old_text, "ms", e),
    }
}

async fn concurrent_rounds(
    addr: std::net::SocketAddr,
    s: &Sizes,
    options: &SuiteOptions,
) -> Result<(f64, String), String> {
    // A warm-up request (connections, the model's first use).
    fanout::generate_request(addr, None).await?;
    let rounds = s.repeats.min(5);
    let processes = options
        .client_processes
        .unwrap_or(if s.concurrent > fanout::IN_PROCESS_MAX {
            s.concurrent.div_ceil(fanout::PER_CHILD)
        } else {
            0
        });
    let mut clients = if processes > 0 {
        let exe = fanout::client_exe(options.client_exe.as_ref())?;
        Some(fanout::Clients::start(&exe, addr, s.concurrent, processes).await?)
    } else {
        None
    };
    let mut times = Vec::new();
    let mut total = fanout::RoundResult::default();
    let mut failure = None;
    for _ in 0..rounds {
        let (elapsed, result) = match &mut clients {
            Some(c) => match c.round().await {
                Ok(r) => r,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            },
            None => {
                let start = Instant::now();
                let result = fanout::round(addr, 0, s.concurrent, 0, 0).await;
                (start.elapsed(), result)
            }
        };
        if !result.errors.is_empty() {
            failure = Some(format!(
                "not every request succeeded: {:?} (and {} answered)",
                result.errors,
                result.generated + result.no_novel
            ));
            break;
        }
        total.add(result);
        times.push(ms(elapsed));
    }
    let from = match &clients {
        Some(c) => format!(
            "from {} client processes (sources 127.0.0.N, {} connections each)",
            c.len(),
            thousands(fanout::PER_SOURCE)
        ),
        None => "from this process".to_owned(),
    };
    if let Some(c) = clients {
        c.finish().await;
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let slow = if total.slow_connects > 0 {
        format!(
            "; {} connects took over 0.9 s (a SYN retransmit: the listen backlog was full)",
            thousands(total.slow_connects)
        )
    } else {
        String::new()
    };
    Ok((
        median(times),
        format!(
            "brisk-server in-process on {addr} (SQLite, demo corpus), {} POST /api/generate \
             sent at once {from}, each on its own connection, timed until all answered; \
             median of {rounds} rounds; {} answers were posts, {} were 422 \
             no_novel_output (the model found no novel post for that request){slow}",
            thousands(s.concurrent),
            thousands(total.generated),
            thousands(total.no_novel),
        ),
    ))
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_and_scaling() {
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(994), "994");
        assert_eq!(scaled(45.0, "ms", "~45 ms", 100_000, 1_000).0, 4_500.0);
        assert_eq!(scaled(45.0, "ms", "~45 ms", 1_000, 1_000).1, "~45 ms");
    }

    #[test]
    fn zipf_favours_the_first_keys() {
        let cdf = zipf_table(10_000);
        assert!((cdf[9_999] - 1.0).abs() < 1e-9);
        // H(2000) / H(10000) = 8.18 / 9.79.
        assert!((cdf[1_999] - 0.836).abs() < 0.01, "{}", cdf[1_999]);
    }
}
