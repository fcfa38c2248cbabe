//! The request mix: what each request of a run is, from a small TOML file.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Deserialize;

use crate::LoadError;

/// The built-in mix for brisk-server (`bins/load/mixes/brisk-server.toml`).
pub const DEFAULT_MIX_TOML: &str = include_str!("../mixes/brisk-server.toml");

const PLACEHOLDERS: &str = "seq, rand, word, text, now_ms, pick:a|b|...";

const WORDS: &[&str] = &[
    "rust", "latency", "cache", "deploy", "launch", "market", "stock", "earnings", "rally", "crash", "token",
    "growth", "service", "shipping", "today", "update", "release", "bug", "fix", "outage", "customer",
    "revenue", "product", "team", "weekly", "news", "alert", "price", "buy", "sell", "bullish", "bearish",
    "startup", "funding", "ai", "model", "data", "cloud", "server", "record",
];

/// SLA targets: the p99 latency and the error rate a run must stay within.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Sla {
    /// The p99 latency target in milliseconds (measured from the intended
    /// send time). Default 10 ms.
    pub p99_ms: f64,
    /// The largest share of failed requests (non-2xx/3xx, timeouts,
    /// connection errors), 0 to 1. Default 0.01.
    pub max_error_rate: f64,
}

impl Default for Sla {
    fn default() -> Self {
        Self {
            p99_ms: 10.0,
            max_error_rate: 0.01,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Seq,
    Rand,
    Word,
    Text,
    NowMs,
    /// One of the listed alternatives, at random.
    Pick(Vec<String>),
}

/// A path or body with `{{placeholders}}`, parsed once.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Template(Vec<Piece>);

impl Template {
    fn parse(s: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Lit(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("unclosed placeholder at {:?}", &rest[open..]))?;
            let name = after[..close].trim();
            pieces.push(match name {
                "seq" => Piece::Seq,
                "rand" => Piece::Rand,
                "word" => Piece::Word,
                "text" => Piece::Text,
                "now_ms" => Piece::NowMs,
                pick if pick.starts_with("pick:") => {
                    let options: Vec<String> = pick["pick:".len()..]
                        .split('|')
                        .map(|o| o.trim().to_owned())
                        .collect();
                    if options.iter().any(String::is_empty) {
                        return Err(format!(
                            "{{{{{pick}}}}} has an empty alternative (write {{{{pick:a|b|c}}}})"
                        ));
                    }
                    Piece::Pick(options)
                }
                other => {
                    return Err(format!(
                        "unknown placeholder {{{{{other}}}}} (known: {PLACEHOLDERS})"
                    ));
                }
            });
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Lit(rest.to_owned()));
        }
        Ok(Self(pieces))
    }

    fn is_static(&self) -> bool {
        self.0.iter().all(|p| matches!(p, Piece::Lit(_)))
    }

    fn render(&self, seq: u64, rng: &mut fastrand::Rng, out: &mut String) {
        use std::fmt::Write as _;
        for piece in &self.0 {
            match piece {
                Piece::Lit(s) => out.push_str(s),
                Piece::Seq => {
                    let _ = write!(out, "{seq}");
                }
                Piece::Rand => {
                    let _ = write!(out, "{}", rng.u64(..));
                }
                Piece::Word => out.push_str(WORDS[rng.usize(..WORDS.len())]),
                Piece::Text => {
                    for i in 0..rng.usize(6..=14) {
                        if i > 0 {
                            out.push(' ');
                        }
                        out.push_str(WORDS[rng.usize(..WORDS.len())]);
                    }
                }
                Piece::Pick(options) => out.push_str(&options[rng.usize(..options.len())]),
                Piece::NowMs => {
                    let ms = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis());
                    let _ = write!(out, "{ms}");
                }
            }
        }
    }
}

/// One kind of request in a mix.
#[derive(Clone, Debug)]
pub struct RequestSpec {
    name: String,
    method: http::Method,
    path: Template,
    body: Option<Template>,
    static_body: Option<Bytes>,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
    weight: u32,
}

impl RequestSpec {
    /// The request's name (for reports); the path when the file gave none.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its HTTP method.
    #[must_use]
    pub fn method(&self) -> &http::Method {
        &self.method
    }

    /// Its relative share of the mix.
    #[must_use]
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// Extra headers (a body gets `content-type: application/json` unless
    /// the file sets one).
    #[must_use]
    pub fn headers(&self) -> &[(http::HeaderName, http::HeaderValue)] {
        &self.headers
    }

    /// Renders the path (without the target's base path) and the body for
    /// request number `seq`.
    pub fn render(&self, seq: u64, rng: &mut fastrand::Rng) -> (String, Bytes) {
        let mut path = String::with_capacity(64);
        self.path.render(seq, rng, &mut path);
        let body = match (&self.static_body, &self.body) {
            (Some(b), _) => b.clone(),
            (None, Some(t)) => {
                let mut s = String::with_capacity(160);
                t.render(seq, rng, &mut s);
                Bytes::from(s)
            }
            (None, None) => Bytes::new(),
        };
        (path, body)
    }
}

/// A weighted set of request kinds, with optional SLA targets.
///
/// ```
/// use brisk_load::Mix;
///
/// let mix = Mix::from_toml_str(
///     r#"
///     [sla]
///     p99_ms = 25
///
///     [[request]]
///     method = "POST"
///     path = "/api/analyze"
///     body = '{"text": "{{text}}"}'
///     weight = 3
///
///     [[request]]
///     path = "/api/posts?limit=20"
///     "#,
///     "example.toml",
/// )?;
/// assert_eq!(mix.requests().len(), 2);
/// assert_eq!(mix.sla().map(|s| s.p99_ms), Some(25.0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Mix {
    requests: Vec<RequestSpec>,
    cumulative: Vec<u32>,
    sla: Option<Sla>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MixFile {
    #[serde(default)]
    sla: Option<SlaFile>,
    #[serde(default)]
    request: Vec<RequestFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlaFile {
    p99_ms: Option<f64>,
    max_error_rate: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestFile {
    name: Option<String>,
    method: Option<String>,
    path: Option<String>,
    body: Option<String>,
    weight: Option<i64>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

impl Mix {
    /// The built-in mix for brisk-server: analyze 40%, generate 10%, ingest
    /// 10%, `GET /api/posts` 20%, `GET /api/alerts` 20%; SLA p99 ≤ 10 ms,
    /// errors ≤ 1%.
    ///
    /// # Panics
    ///
    /// Never: the built-in file is checked by a test.
    #[must_use]
    pub fn brisk_server() -> Self {
        Self::from_toml_str(DEFAULT_MIX_TOML, "built-in").expect("the built-in mix parses")
    }

    /// Reads a mix file.
    ///
    /// # Errors
    ///
    /// [`LoadError::Io`] when the file cannot be read, [`LoadError::Mix`]
    /// naming the field when it is invalid.
    pub fn from_file(path: &std::path::Path) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| LoadError::io(format!("reading mix file {}", path.display()), e))?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses a mix from TOML; `source_name` appears in errors.
    ///
    /// # Errors
    ///
    /// [`LoadError::Mix`] naming the field (`request[1].method`,
    /// `sla.p99_ms`, ...) and what is wrong with it.
    pub fn from_toml_str(text: &str, source_name: &str) -> Result<Self, LoadError> {
        let err = |field: String, message: String| LoadError::Mix {
            source_name: source_name.to_owned(),
            field,
            message,
        };
        let file: MixFile = toml::from_str(text).map_err(|e| {
            let field = e
                .span()
                .map_or_else(|| "(file)".to_owned(), |span| field_at(text, span.start));
            err(field, e.message().to_owned())
        })?;
        let sla = file
            .sla
            .map(|s| {
                let d = Sla::default();
                let p99_ms = s.p99_ms.unwrap_or(d.p99_ms);
                if !(p99_ms.is_finite() && p99_ms > 0.0) {
                    return Err(err(
                        "sla.p99_ms".into(),
                        format!("must be a positive number, got {p99_ms}"),
                    ));
                }
                let max_error_rate = s.max_error_rate.unwrap_or(d.max_error_rate);
                if !(0.0..=1.0).contains(&max_error_rate) {
                    return Err(err(
                        "sla.max_error_rate".into(),
                        format!("must be between 0 and 1, got {max_error_rate}"),
                    ));
                }
                Ok(Sla {
                    p99_ms,
                    max_error_rate,
                })
            })
            .transpose()?;
        if file.request.is_empty() {
            return Err(err("request".into(), "the mix has no [[request]] entries".into()));
        }
        let mut requests = Vec::with_capacity(file.request.len());
        for (i, r) in file.request.into_iter().enumerate() {
            let f = |name: &str| format!("request[{i}].{name}");
            let method_text = r.method.unwrap_or_else(|| "GET".to_owned());
            let method = http::Method::from_bytes(method_text.to_ascii_uppercase().as_bytes())
                .ok()
                .filter(|m| {
                    [
                        http::Method::GET,
                        http::Method::POST,
                        http::Method::PUT,
                        http::Method::PATCH,
                        http::Method::DELETE,
                        http::Method::HEAD,
                        http::Method::OPTIONS,
                    ]
                    .contains(m)
                })
                .ok_or_else(|| err(f("method"), format!("{method_text:?} is not an HTTP method")))?;
            let path_text = r
                .path
                .ok_or_else(|| err(f("path"), "missing (write path = \"/...\")".into()))?;
            if !path_text.starts_with('/') {
                return Err(err(f("path"), format!("{path_text:?} must start with /")));
            }
            let path = Template::parse(&path_text).map_err(|m| err(f("path"), m))?;
            let body = r
                .body
                .as_deref()
                .map(Template::parse)
                .transpose()
                .map_err(|m| err(f("body"), m))?;
            let weight = r.weight.unwrap_or(1);
            let weight = u32::try_from(weight)
                .ok()
                .filter(|w| (1..=1_000_000).contains(w))
                .ok_or_else(|| err(f("weight"), format!("must be 1 to 1,000,000, got {weight}")))?;
            let mut headers = Vec::new();
            for (k, v) in &r.headers {
                let name = http::HeaderName::from_bytes(k.as_bytes())
                    .map_err(|e| err(f(&format!("headers.{k}")), e.to_string()))?;
                let value = http::HeaderValue::from_str(v)
                    .map_err(|e| err(f(&format!("headers.{k}")), e.to_string()))?;
                headers.push((name, value));
            }
            if body.is_some() && !headers.iter().any(|(n, _)| n == http::header::CONTENT_TYPE) {
                headers.push((
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                ));
            }
            let static_body = body.as_ref().filter(|b| b.is_static()).map(|b| {
                let mut s = String::new();
                b.render(0, &mut fastrand::Rng::with_seed(0), &mut s);
                Bytes::from(s)
            });
            requests.push(RequestSpec {
                name: r.name.unwrap_or_else(|| path_text.clone()),
                method,
                path,
                body,
                static_body,
                headers,
                weight,
            });
        }
        let mut total = 0u32;
        let cumulative = requests
            .iter()
            .map(|r| {
                total = total.saturating_add(r.weight);
                total
            })
            .collect();
        Ok(Self {
            requests,
            cumulative,
            sla,
        })
    }

    /// A mix of one `GET path` request (for tests and quick runs).
    ///
    /// # Errors
    ///
    /// [`LoadError::Mix`] when the path does not start with `/` or has an
    /// unknown placeholder.
    pub fn single_get(path: &str) -> Result<Self, LoadError> {
        let text = format!("[[request]]\nmethod = \"GET\"\npath = {}\n", toml_string(path));
        Self::from_toml_str(&text, "single GET")
    }

    /// The request kinds, in file order.
    #[must_use]
    pub fn requests(&self) -> &[RequestSpec] {
        &self.requests
    }

    /// The SLA targets the file gave, if it had an `[sla]` table.
    #[must_use]
    pub fn sla(&self) -> Option<Sla> {
        self.sla
    }

    /// Picks a request kind by weight.
    pub fn pick(&self, rng: &mut fastrand::Rng) -> &RequestSpec {
        let total = *self.cumulative.last().unwrap_or(&1);
        let x = rng.u32(..total);
        let i = self.cumulative.partition_point(|&c| c <= x);
        &self.requests[i.min(self.requests.len() - 1)]
    }
}

fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"/\"".to_owned())
}

/// The field a TOML error points at: the key on the error's line, prefixed
/// by the table it is in (`request[1].weight`, `sla.p99_ms`).
fn field_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = text[line_start..line_end].trim();
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_owned())
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    let mut table = String::new();
    let mut requests = 0usize;
    for l in text[..line_start].lines() {
        let l = l.trim();
        if l.starts_with("[[request]]") {
            requests += 1;
            table = format!("request[{}]", requests - 1);
        } else if l.starts_with('[') && l.ends_with(']') && !l.starts_with("[[") {
            table = l.trim_matches(['[', ']']).trim().to_owned();
        }
    }
    if line.starts_with("[[request]]") {
        table = format!("request[{requests}]");
    }
    match (table.is_empty(), key) {
        (true, Some(k)) => k,
        (false, Some(k)) => format!("{table}.{k}"),
        (false, None) => table,
        (true, None) => "(file)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_mix_parses_and_renders_json_bodies() {
        let mix = Mix::brisk_server();
        assert_eq!(mix.requests().len(), 5);
        let mut rng = fastrand::Rng::with_seed(7);
        for r in mix.requests() {
            let (path, body) = r.render(3, &mut rng);
            assert!(path.starts_with("/api/"), "{path}");
            if !body.is_empty() {
                serde_json::from_slice::<serde_json::Value>(&body).expect("valid JSON");
            }
        }
    }

    #[test]
    fn pick_placeholders_choose_among_their_alternatives() {
        let t = Template::parse(r#"{"topic": "{{pick:earnings| launch |Acme}}"}"#).unwrap();
        let mut rng = fastrand::Rng::with_seed(3);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let mut out = String::new();
            t.render(0, &mut rng, &mut out);
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            seen.insert(v["topic"].as_str().unwrap().to_owned());
        }
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            ["Acme", "earnings", "launch"]
        );
        let err = Template::parse("{{pick:a||b}}").unwrap_err();
        assert!(err.contains("empty alternative"), "{err}");
        let err = Template::parse("{{pick:}}").unwrap_err();
        assert!(err.contains("empty alternative"), "{err}");
    }

    #[test]
    fn picks_follow_weights() {
        let mix = Mix::from_toml_str(
            "[[request]]\npath = \"/a\"\nweight = 3\n[[request]]\npath = \"/b\"\nweight = 1\n",
            "t",
        )
        .unwrap();
        let mut rng = fastrand::Rng::with_seed(1);
        let a = (0..40_000).filter(|_| mix.pick(&mut rng).name() == "/a").count();
        assert!((29_000..31_000).contains(&a), "{a}");
    }

    #[test]
    fn field_at_names_nested_keys() {
        let text = "[sla]\np99_ms = \"x\"\n[[request]]\npath = \"/\"\n[[request]]\nweight = \"w\"\n";
        assert_eq!(field_at(text, text.find("\"x\"").unwrap()), "sla.p99_ms");
        assert_eq!(field_at(text, text.find("\"w\"").unwrap()), "request[1].weight");
    }
}
