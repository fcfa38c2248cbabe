//! Training the local model on ingested posts, off the request path.
//
// Why a thread of its own, and not a job on the generation pipeline: a
// training call takes the model's write lock and CPU for milliseconds, and
// the generator rescores its held-out posts after every call (work that
// grows with the model), so one call per 1,000-post batch made training
// cost more than the ingest it followed, on the same tokio workers. Here:
//
// - An acknowledged batch (after commit, as before) hands its texts and
//   engagement to a queue bounded in posts. When the queue is full the
//   posts that do not fit are dropped and counted: ingest never waits for
//   training and never fails because of it.
// - One OS thread, at the lowest CPU priority (nice 19: on Linux the nice
//   value is per thread), takes everything queued in one pass (at most
//   `CHUNK` posts per hold of the write lock) and trains at most once per
//   `PERIOD`, so a burst of ingest trains in a few large calls while the
//   request path keeps the CPU; on an idle machine a batch is learned
//   within a period.
// - Shutdown closes the queue and waits for the thread to train what is
//   queued, so the model saved at exit has learned every acknowledged post
//   that was not dropped.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use brisk_core::{Engagement, Post, StatsReport, StatsSource, Timestamp};
use serde_json::{Value, json};

use crate::generate::Model;

/// The shortest time between two training passes: batches arriving
/// meanwhile are learned together in the next one.
const PERIOD: Duration = Duration::from_millis(500);

/// Most posts learned under one hold of the model's write lock (generation
/// waits for the lock meanwhile).
const CHUNK: usize = 10_000;

/// The trainer thread's nice value (19 is the lowest priority).
const NICE: i32 = 19;

/// What training needs of a post: its text and engagement (the weight).
#[derive(Debug)]
struct Sample {
    text: String,
    engagement: Option<Engagement>,
}

#[derive(Debug, Default)]
struct Queue {
    samples: VecDeque<Sample>,
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    model: Arc<Model>,
    queue: Mutex<Queue>,
    wake: Condvar,
    capacity: usize,
    /// Posts not queued because the queue was full (or closed).
    dropped: AtomicU64,
    /// Posts handed to the model (learned, or skipped by its cap).
    trained: AtomicU64,
    /// Training passes (calls into the model).
    passes: AtomicU64,
    /// Time spent in training passes, in microseconds.
    busy_micros: AtomicU64,
}

/// The background trainer: a bounded queue of ingested posts and the
/// thread that teaches them to the model.
#[derive(Debug)]
pub(crate) struct Trainer {
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Trainer {
    /// Starts the trainer thread for `model`, queueing at most `capacity`
    /// posts.
    ///
    /// # Errors
    ///
    /// The thread could not be spawned.
    pub(crate) fn start(model: Arc<Model>, capacity: usize) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            model,
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            capacity,
            dropped: AtomicU64::new(0),
            trained: AtomicU64::new(0),
            passes: AtomicU64::new(0),
            busy_micros: AtomicU64::new(0),
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("brisk-trainer".into())
            .spawn(move || run(&worker))?;
        Ok(Self {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues `posts` (already committed) for training, or counts them
    /// dropped when the queue is full: never waits.
    pub(crate) fn submit(&self, posts: Vec<Post>) {
        let n = posts.len();
        if n == 0 {
            return;
        }
        let s = &self.shared;
        if s.model.is_full() {
            // Learned by nobody: counted as the cap's, without queueing.
            s.model.skip(n);
            return;
        }
        let mut q = s.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let room = if q.closed {
            0
        } else {
            s.capacity.saturating_sub(q.samples.len())
        };
        let take = room.min(n);
        if take < n {
            s.dropped.fetch_add((n - take) as u64, Ordering::Relaxed);
        }
        if take == 0 {
            return;
        }
        let was_empty = q.samples.is_empty();
        q.samples.extend(posts.into_iter().take(take).map(|p| Sample {
            text: p.text,
            engagement: p.engagement,
        }));
        drop(q);
        if was_empty {
            s.wake.notify_one();
        }
    }

    /// Posts waiting to be learned.
    pub(crate) fn queued(&self) -> usize {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .samples
            .len()
    }

    /// The queue and its counters, for the performance summary.
    pub(crate) fn describe(&self) -> Value {
        let s = &self.shared;
        json!({
            "queued_posts": self.queued(),
            "capacity_posts": s.capacity,
            "trained_posts": s.trained.load(Ordering::Relaxed),
            "dropped_posts": s.dropped.load(Ordering::Relaxed),
            "passes": s.passes.load(Ordering::Relaxed),
        })
    }

    /// Closes the queue and waits (up to `timeout`) until the thread has
    /// learned what was queued. Later submissions are counted dropped.
    pub(crate) async fn shutdown(&self, timeout: Duration) {
        self.close();
        let thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner).take();
        let Some(thread) = thread else {
            return;
        };
        let join = tokio::task::spawn_blocking(move || thread.join());
        match tokio::time::timeout(timeout, join).await {
            Ok(Ok(Ok(()))) => {}
            Ok(_) => tracing::error!("the trainer thread panicked"),
            Err(_) => tracing::warn!(?timeout, "the trainer was still training at the shutdown timeout"),
        }
    }

    fn close(&self) {
        let mut q = self.shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
        q.closed = true;
        drop(q);
        self.shared.wake.notify_all();
    }
}

impl Drop for Trainer {
    fn drop(&mut self) {
        // A server dropped without a shutdown (tests) must not leave the
        // thread waiting forever: it trains what is queued and ends.
        self.close();
    }
}

impl StatsSource for Trainer {
    fn report_stats(&self, out: &mut StatsReport) {
        let s = &self.shared;
        #[allow(clippy::cast_precision_loss)] // a queue length
        let queued = self.queued() as f64;
        let _ = out.gauge(
            "brisk_server_training_queued_posts",
            "Ingested posts waiting to train the local model",
            queued,
        );
        let _ = out.counter(
            "brisk_server_training_dropped_posts_total",
            "Ingested posts not trained because the training queue was full",
            s.dropped.load(Ordering::Relaxed),
        );
        let _ = out.counter(
            "brisk_server_training_posts_total",
            "Ingested posts handed to the local model (learned, or skipped at its cap)",
            s.trained.load(Ordering::Relaxed),
        );
        let _ = out.counter(
            "brisk_server_training_passes_total",
            "Training passes of the background trainer",
            s.passes.load(Ordering::Relaxed),
        );
        #[allow(clippy::cast_precision_loss)] // seconds as a float
        let busy = s.busy_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = out.gauge(
            "brisk_server_training_seconds",
            "Wall time spent in training passes since the start",
            busy,
        );
    }
}

/// The thread: waits for posts, trains them in passes at most one
/// `PERIOD` apart, and ends once the queue is closed and empty.
fn run(s: &Shared) {
    // Linux applies a nice value to the calling thread only (who = 0).
    if let Err(e) = rustix::process::setpriority_process(None, NICE) {
        tracing::debug!(error = %e, "the trainer runs at normal priority");
    }
    loop {
        let batch: Vec<Sample> = {
            let mut q = s.queue.lock().unwrap_or_else(PoisonError::into_inner);
            while q.samples.is_empty() && !q.closed {
                q = s.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
            }
            if q.samples.is_empty() {
                return;
            }
            let take = q.samples.len().min(CHUNK);
            q.samples.drain(..take).collect()
        };
        let start = Instant::now();
        let n = batch.len();
        let posts: Vec<Post> = batch
            .into_iter()
            .map(|sample| {
                let post = Post::new(String::new(), sample.text, Timestamp::from_unix_millis(0));
                match sample.engagement {
                    Some(e) => post.with_engagement(e),
                    None => post,
                }
            })
            .collect();
        match s.model.train(&posts) {
            Ok(learned) => tracing::debug!(posts = n, learned, "generator model updated"),
            Err(e) => tracing::warn!(error = %e, posts = n, "training the generator model"),
        }
        drop(posts);
        let took = start.elapsed();
        s.trained.fetch_add(n as u64, Ordering::Relaxed);
        s.passes.fetch_add(1, Ordering::Relaxed);
        s.busy_micros.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        // Let the next batches gather (unless closing: then train the rest now).
        let until = start + PERIOD;
        let mut q = s.queue.lock().unwrap_or_else(PoisonError::into_inner);
        while !q.closed {
            let now = Instant::now();
            if now >= until {
                break;
            }
            q = s
                .wake
                .wait_timeout(q, until - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}
