//! Generation: brisk-generator's local model behind brisk-pipeline.
//
// The pipeline runs `Generate` jobs at High priority (the API); the queue
// depths per priority show on the dashboard. Ingested batches train the
// model on a thread of their own (`train.rs`), off the pipeline and the
// request path. The model sits behind an `RwLock`: generation reads it,
// training takes the write lock for the milliseconds a pass takes.
//
// The model is capped at `max_model_posts` posts: past it, ingested batches
// no longer train it, so the model's memory stops growing. It is
// saved to `DATA_DIR/model.bin` (the generator's versioned format behind a
// small header with the model version) by a background task whenever it
// has changed, and at shutdown; a server starting on a database with posts
// loads it instead of training again.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use brisk_core::{Post, Priority};
use brisk_generator::{GenerateOptions, Generator, GeneratorError};
use brisk_pattern_matcher::HookKind;
use brisk_pipeline::{BatchResult, Classify, Endpoint, Handler, Job, Pipeline, PipelineError};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::ApiError;

/// Most posts one request may ask for.
pub(crate) const MAX_N: usize = 10;

/// A generation request, validated.
#[derive(Clone, Debug)]
pub(crate) struct GenerateRequest {
    pub(crate) topic: Option<String>,
    pub(crate) n: usize,
    pub(crate) hook: Option<HookKind>,
    pub(crate) seed: Option<u64>,
    pub(crate) max_chars: usize,
}

impl GenerateRequest {
    /// The cache key of this request's answer from the model whose
    /// [`Model::fingerprint`] is `model`.
    pub(crate) fn cache_key(&self, model: u64) -> brisk_core::ContentHash {
        let hook = self.hook.map(|h| format!("{h:?}")).unwrap_or_default();
        brisk_core::ContentHash::of_parts(&[
            &model.to_le_bytes()[..],
            self.topic.as_deref().unwrap_or("").as_bytes(),
            &(self.n as u64).to_le_bytes(),
            hook.as_bytes(),
            &self.seed.unwrap_or(0).to_le_bytes(),
            &(self.max_chars as u64).to_le_bytes(),
        ])
    }
}

/// What the pipeline runs.
#[derive(Debug)]
pub(crate) enum GenJob {
    Generate(GenerateRequest),
}

/// One generated post, as answered and published.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct GeneratedPost {
    pub(crate) text: String,
    pub(crate) confidence: f64,
    pub(crate) fluency: f64,
    pub(crate) novelty: f64,
    pub(crate) structure_fit: f64,
    pub(crate) attempts: usize,
}

/// What a job gives back.
#[derive(Clone, Debug)]
pub(crate) enum GenOutput {
    Posts(Arc<Vec<GeneratedPost>>),
}

/// A generation error, cheap to clone for every waiter.
#[derive(Clone, Debug)]
pub(crate) struct GenError {
    status: http::StatusCode,
    code: &'static str,
    message: Arc<str>,
}

impl fmt::Display for GenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Classify for GenError {
    fn is_retryable(&self) -> bool {
        false
    }
}

impl From<GeneratorError> for GenError {
    fn from(e: GeneratorError) -> Self {
        let (status, code) = match &e {
            GeneratorError::EmptyCorpus | GeneratorError::CorpusTooSmall { .. } => {
                (http::StatusCode::SERVICE_UNAVAILABLE, "model_not_ready")
            }
            GeneratorError::ImpossibleConstraint { .. } | GeneratorError::InvalidInput { .. } => {
                (http::StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
            }
            GeneratorError::NoNovelOutput { .. } => {
                (http::StatusCode::UNPROCESSABLE_ENTITY, "no_novel_output")
            }
            _ => (http::StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        Self {
            status,
            code,
            message: e.to_string().into(),
        }
    }
}

/// Attempts per generated post before answering `no_novel_output`: an
/// attempt costs microseconds, and the generator's default of 10 left ~5%
/// of requests on the 1,000-post demo model without a novel post.
const GENERATE_ATTEMPTS: usize = 40;

/// The local model, its version (one more per trained batch) and its cap.
#[derive(Debug)]
pub(crate) struct Model {
    generator: RwLock<Generator>,
    version: AtomicU64,
    /// A hash of what the model learned (posts, tokens, vocabulary): equal
    /// models in several processes share seeded generations in the L2.
    fingerprint: AtomicU64,
    max_posts: usize,
    /// Posts of ingested batches not learned because of the cap.
    skipped: AtomicU64,
    /// Whether the model is at its cap: read by ingest without taking the
    /// lock, which training may hold.
    full: AtomicBool,
}

fn fingerprint(g: &Generator) -> u64 {
    let parts = [g.posts() as u64, g.tokens() as u64, g.vocabulary_len() as u64];
    let bytes: Vec<u8> = parts.iter().flat_map(|p| p.to_le_bytes()).collect();
    #[allow(clippy::cast_possible_truncation)] // the low half of the hash is enough
    let low = brisk_core::ContentHash::of_parts(&[b"brisk-model/1".as_slice(), &bytes]).as_u128() as u64;
    low
}

impl Model {
    /// A model at version `version` that learns at most `max_posts` posts.
    pub(crate) fn new(generator: Generator, version: u64, max_posts: usize) -> Self {
        Self {
            fingerprint: AtomicU64::new(fingerprint(&generator)),
            full: AtomicBool::new(generator.posts() >= max_posts),
            generator: RwLock::new(generator),
            version: AtomicU64::new(version),
            max_posts,
            skipped: AtomicU64::new(0),
        }
    }

    /// Posts trained, tokens, vocabulary and version.
    pub(crate) fn describe(&self) -> Value {
        let g = self.generator.read().unwrap_or_else(PoisonError::into_inner);
        json!({
            "backend": "local",
            "version": self.version.load(Ordering::Relaxed),
            "posts": g.posts(),
            "max_posts": self.max_posts,
            "skipped_posts": self.skipped.load(Ordering::Relaxed),
            "tokens": g.tokens(),
            "vocabulary": g.vocabulary_len(),
            "heap_bytes": g.heap_bytes(),
        })
    }

    /// Swaps in a model trained afresh.
    pub(crate) fn replace(&self, generator: Generator) {
        let mut g = self.generator.write().unwrap_or_else(PoisonError::into_inner);
        self.fingerprint.store(fingerprint(&generator), Ordering::Relaxed);
        self.full
            .store(generator.posts() >= self.max_posts, Ordering::Relaxed);
        *g = generator;
        self.version.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }

    /// Changes with what the model learned; see the field.
    pub(crate) fn fingerprint(&self) -> u64 {
        self.fingerprint.load(Ordering::Relaxed)
    }

    /// The local scorer's confidence in any text (an LLM's answer).
    pub(crate) fn confidence(&self, text: &str) -> brisk_generator::Confidence {
        self.generator
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .confidence(text)
    }

    /// Writes the model to `path` (through a temporary file and a rename,
    /// so a crash leaves the old file or the new one): a header, the
    /// version, then the generator's own format.
    pub(crate) fn save(&self, path: &Path) -> std::io::Result<u64> {
        let (version, bytes) = {
            let g = self.generator.read().unwrap_or_else(PoisonError::into_inner);
            (self.version(), g.to_bytes())
        };
        let tmp = path.with_extension("bin.tmp");
        let mut out = Vec::with_capacity(bytes.len() + MODEL_MAGIC.len() + 8);
        out.extend_from_slice(MODEL_MAGIC);
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&bytes);
        std::fs::write(&tmp, &out)?;
        std::fs::rename(&tmp, path)?;
        Ok(version)
    }

    fn generate(&self, r: &GenerateRequest) -> Result<Vec<GeneratedPost>, GenError> {
        let mut opts = GenerateOptions::new()
            .max_chars(r.max_chars)
            .attempts(GENERATE_ATTEMPTS);
        if let Some(topic) = &r.topic {
            opts = opts.topic(topic.clone());
        }
        if let Some(hook) = r.hook {
            opts = opts.hook(hook);
        }
        if let Some(seed) = r.seed {
            opts = opts.seed(seed);
        }
        let g = self.generator.read().unwrap_or_else(PoisonError::into_inner);
        let out = g.generate_many(r.n, &opts)?;
        Ok(out
            .into_iter()
            .map(|p| GeneratedPost {
                text: p.text,
                confidence: p.confidence.score,
                fluency: p.confidence.fluency,
                novelty: p.confidence.novelty,
                structure_fit: p.confidence.structure_fit,
                attempts: p.attempts,
            })
            .collect())
    }

    /// Whether the model has reached its cap (ingest no longer teaches it).
    pub(crate) fn is_full(&self) -> bool {
        self.full.load(Ordering::Relaxed)
    }

    /// Counts `n` ingested posts as skipped by the cap.
    pub(crate) fn skip(&self, n: usize) {
        self.skipped.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Learns `posts`, as many as the cap leaves room for; the rest are
    /// counted as skipped. Returns how many were learned.
    pub(crate) fn train(&self, posts: &[Post]) -> Result<usize, GenError> {
        let mut g = self.generator.write().unwrap_or_else(PoisonError::into_inner);
        let room = self.max_posts.saturating_sub(g.posts());
        let take = room.min(posts.len());
        self.skipped
            .fetch_add((posts.len() - take) as u64, Ordering::Relaxed);
        if take == 0 {
            return Ok(0);
        }
        let n = g.train(posts[..take].iter())?;
        self.full.store(g.posts() >= self.max_posts, Ordering::Relaxed);
        self.fingerprint.store(fingerprint(&g), Ordering::Relaxed);
        self.version.fetch_add(1, Ordering::Relaxed);
        Ok(n)
    }
}

/// How often the model is saved when it has changed.
pub(crate) const SAVE_EVERY: Duration = Duration::from_secs(30);

/// The first bytes of a saved model (`DATA_DIR/model.bin`).
const MODEL_MAGIC: &[u8] = b"brisk-server-model/1\n";

/// The saved model's file in `data_dir`.
pub(crate) fn model_path(data_dir: &Path) -> PathBuf {
    data_dir.join("model.bin")
}

/// Loads a model saved by [`Model::save`]: its generator and version.
///
/// # Errors
///
/// Why the file cannot be used (missing, another format or version of it,
/// corrupted); the caller then trains afresh.
pub(crate) fn load_model(path: &Path) -> Result<(Generator, u64), String> {
    let data = std::fs::read(path).map_err(|e| e.to_string())?;
    let rest = data
        .strip_prefix(MODEL_MAGIC)
        .ok_or("not a brisk-server model file")?;
    let (version, bytes) = rest.split_at_checked(8).ok_or("truncated")?;
    let version = u64::from_le_bytes(version.try_into().map_err(|_| "truncated")?);
    let g = Generator::from_bytes(bytes).map_err(|e| e.to_string())?;
    Ok((g, version))
}

/// Saves the model to `path` every `every` when it has changed since the
/// last save (the caller saves once more at shutdown).
pub(crate) fn spawn_saver(model: Arc<Model>, path: PathBuf, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut saved = model.version();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if model.version() == saved {
                continue;
            }
            let (m, p) = (Arc::clone(&model), path.clone());
            match tokio::task::spawn_blocking(move || m.save(&p)).await {
                Ok(Ok(version)) => {
                    saved = version;
                    tracing::debug!(version, "generator model saved");
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, path = %path.display(), "saving the generator model");
                }
                Err(e) => tracing::warn!(error = %e, "saving the generator model"),
            }
        }
    })
}

/// The pipeline's handler.
#[derive(Debug)]
pub(crate) struct GenHandler {
    model: Arc<Model>,
}

impl Handler for GenHandler {
    type Request = GenJob;
    type Response = GenOutput;
    type Error = GenError;

    async fn call(&self, _endpoint: &Endpoint, batch: &[GenJob]) -> BatchResult<GenOutput, GenError> {
        Ok(batch
            .iter()
            .map(|job| match job {
                GenJob::Generate(r) => self.model.generate(r).map(|p| GenOutput::Posts(Arc::new(p))),
            })
            .collect())
    }
}

/// The generation pipeline.
pub(crate) type GenPipeline = Pipeline<GenHandler>;

/// A pipeline over `model` queueing `capacity` jobs at most: 1 to 4
/// workers and batches of what is already queued, with no linger: a
/// generation takes microseconds, and any linger becomes a whole tick of
/// tokio's 1 ms timer (a 200 µs linger measured p50 1.3 ms per request).
pub(crate) fn pipeline(model: Arc<Model>, capacity: usize) -> Result<GenPipeline, brisk_core::ConfigError> {
    Pipeline::builder(GenHandler { model })
        .name("generate")
        .capacity(capacity)
        .min_workers(1)
        .max_workers(4)
        .max_batch_size(8)
        .max_batch_wait(Duration::ZERO)
        .build()
}

/// Trains a model on `posts` (the corpus in the database at startup), the
/// first `max_posts` of them at most.
pub(crate) fn initial_model(posts: &[Post], max_posts: usize) -> Result<Generator, GeneratorError> {
    let mut g = Generator::builder().build()?;
    let posts = &posts[..posts.len().min(max_posts)];
    if !posts.is_empty() {
        g.train(posts.iter())?;
    }
    Ok(g)
}

/// Generates through the pipeline at High priority.
pub(crate) async fn run(
    pipeline: &GenPipeline,
    request: GenerateRequest,
) -> Result<Arc<Vec<GeneratedPost>>, ApiError> {
    let job = Job::new(GenJob::Generate(request))
        .priority(Priority::High)
        .timeout(Duration::from_secs(5));
    match pipeline.call(job).await {
        Ok(GenOutput::Posts(posts)) => Ok(posts),
        Err(PipelineError::Upstream { error, .. }) => {
            Err(ApiError::new(error.status, error.code, error.message.to_string()))
        }
        Err(e @ (PipelineError::Shed { .. } | PipelineError::Shutdown)) => {
            Err(ApiError::unavailable(format!("generation is overloaded: {e}"), 1))
        }
        Err(e) => Err(ApiError::unavailable(format!("generation failed: {e}"), 1)),
    }
}

/// Parses `{topic?, n?, hook?, seed?, max_chars?}`.
pub(crate) fn parse_request(body: &Value) -> Result<GenerateRequest, ApiError> {
    const FIELDS: &[&str] = &["topic", "n", "hook", "seed", "max_chars"];
    let Value::Object(obj) = body else {
        return Err(ApiError::invalid(
            "body",
            "must be an object: {topic?, n?, hook?, seed?, max_chars?}",
        ));
    };
    if let Some(unknown) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            unknown,
            format!("is not a field (expected one of {})", FIELDS.join(", ")),
        ));
    }
    let topic = match obj.get("topic") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) if t.trim().is_empty() => None,
        Some(Value::String(t)) if t.chars().count() <= 100 => Some(t.trim().to_owned()),
        Some(Value::String(_)) => return Err(ApiError::invalid("topic", "is over 100 characters")),
        Some(_) => return Err(ApiError::invalid("topic", "must be a string")),
    };
    let n = match obj.get("n") {
        None | Some(Value::Null) => 1,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_N as u64).contains(&n) => usize::try_from(n).unwrap_or(1),
            _ => {
                return Err(ApiError::invalid(
                    "n",
                    format!("must be a whole number from 1 to {MAX_N}"),
                ));
            }
        },
    };
    let max_chars = match obj.get("max_chars") {
        None | Some(Value::Null) => 280,
        Some(v) => match v.as_u64() {
            Some(m) if (20..=2_000).contains(&m) => usize::try_from(m).unwrap_or(280),
            _ => {
                return Err(ApiError::invalid(
                    "max_chars",
                    "must be a whole number from 20 to 2000",
                ));
            }
        },
    };
    let seed = match obj.get("seed") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| ApiError::invalid("seed", "must be a whole number ≥ 0"))?,
        ),
    };
    let hook = match obj.get("hook") {
        None | Some(Value::Null) => None,
        Some(Value::String(h)) => Some(match h.as_str() {
            "question" => HookKind::Question,
            "number_or_list" => HookKind::NumberOrList,
            "bold_claim" => HookKind::BoldClaim,
            "quote" => HookKind::Quote,
            "other" => HookKind::Other,
            _ => {
                return Err(ApiError::invalid(
                    "hook",
                    "must be one of question, number_or_list, bold_claim, quote, other",
                ));
            }
        }),
        Some(_) => return Err(ApiError::invalid("hook", "must be a string")),
    };
    Ok(GenerateRequest {
        topic,
        n,
        hook,
        seed,
        max_chars,
    })
}
