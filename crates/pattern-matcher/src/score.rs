//! The relevance score: how the hits of a text become a number from 0 to
//! 100, with the signals that explain it.
//
// The score is a sum of signals, clamped to 0..=100:
//
//   + weight of each distinct entity mentioned
//   + for each distinct keyword, its best occurrence:
//       weight + proximity boost (nearest entity, decaying with token
//       distance within the window), times the negation factor when a
//       negation word stands within `negation_window` tokens before it
//   + boost of each distinct context term, only if an entity or a keyword
//     matched (context alone says nothing about the entities watched)
//   - penalty of each distinct exclusion
//   veto: any vetoing exclusion makes the score 0.
//
// Every step is a signal, so the signals always add up to the score. Each
// term is non-decreasing in every keyword weight and the clamp is monotone,
// so the score is monotone in keyword weight (a property test checks it).

use std::sync::Arc;

use serde::Serialize;

use crate::scan::{Compiled, Hit, Target, TermCache};
use crate::token::{Span, Token, TokenKind};

/// An entity found in a text.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct EntityMatch {
    /// The entity's id.
    pub entity: Arc<str>,
    /// Where the alias is, in the original text.
    pub span: Span,
    /// The index of the token it starts in.
    pub token: usize,
    #[serde(skip)]
    pub(crate) index: u32,
}

/// A keyword found in a text.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct KeywordMatch {
    /// The keyword (its term, or its regex source).
    pub keyword: Arc<str>,
    /// Its category, if it has one.
    pub category: Option<Arc<str>>,
    /// Its weight.
    pub weight: f64,
    /// Where it is.
    pub span: Span,
    /// The index of the token it starts in.
    pub token: usize,
    /// Whether a negation word stands within the negation window before it.
    pub negated: bool,
    #[serde(skip)]
    pub(crate) index: u32,
}

/// A context term, exclusion or negation word found in a text.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TermMatch {
    /// The term (or regex source) from the dictionary.
    pub term: Arc<str>,
    /// Where it is.
    pub span: Span,
    /// The index of the token it starts in.
    pub token: usize,
    #[serde(skip)]
    pub(crate) index: u32,
}

/// The rule behind a [`Signal`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rule {
    /// An entity was mentioned: its weight.
    Entity,
    /// A keyword matched: its weight.
    Keyword,
    /// A keyword stood near an entity: the proximity boost.
    Proximity,
    /// A negation word stood before a keyword: the part taken away.
    Negation,
    /// A context term matched: its boost.
    Context,
    /// An exclusion matched: its penalty.
    Exclusion,
    /// A vetoing exclusion matched: whatever was left.
    Veto,
    /// The sum went over 100 (or under 0): the part clamped away.
    Clamp,
}

/// One step of the score: which rule added or removed how many points.
///
/// The points of a [`Relevance`]'s signals always add up to its score.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Signal {
    /// The rule.
    pub rule: Rule,
    /// What it is about: an entity id, a keyword, a term (empty for
    /// [`Rule::Clamp`]).
    pub subject: Arc<str>,
    /// For [`Rule::Proximity`], the entity the keyword stood near.
    pub other: Option<Arc<str>>,
    /// Points added (positive) or removed (negative).
    pub points: f64,
}

/// The relevance of one text: the score, the flag, the matches and the
/// signals.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Relevance {
    /// From 0 to 100.
    pub score: f64,
    /// `score >= threshold` and not vetoed.
    pub relevant: bool,
    /// Whether a vetoing exclusion matched.
    pub vetoed: bool,
    /// Whether early termination stopped the scan once the score could no
    /// longer change; the match lists then stop there too.
    pub stopped_early: bool,
    /// Entities, in text order.
    pub entities: Vec<EntityMatch>,
    /// Keywords, in text order.
    pub keywords: Vec<KeywordMatch>,
    /// Context terms, in text order.
    pub context: Vec<TermMatch>,
    /// Exclusions, in text order.
    pub exclusions: Vec<TermMatch>,
    /// Negation words, in text order.
    pub negations: Vec<TermMatch>,
    /// How the score was built.
    pub signals: Vec<Signal>,
}

impl Relevance {
    pub(crate) fn empty() -> Self {
        Self {
            score: 0.0,
            relevant: false,
            vetoed: false,
            stopped_early: false,
            entities: Vec::new(),
            keywords: Vec::new(),
            context: Vec::new(),
            exclusions: Vec::new(),
            negations: Vec::new(),
            signals: Vec::new(),
        }
    }
}

/// The scoring options (validated by the builder).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScoreOptions {
    pub(crate) threshold: f64,
    pub(crate) window: usize,
    pub(crate) proximity_boost: f64,
    pub(crate) negation_window: usize,
    pub(crate) negation_factor: f64,
}

/// Places each hit on the token it starts in, as the tokens stream by:
/// the first token that ends after the hit's start, or [`IN_URL`] when that
/// token is a URL the hit lies in (entity names in links do not count).
/// Hits come sorted by start, so one forward walk places them all.
pub(crate) struct Placer<'a> {
    hits: &'a [Hit],
    out: &'a mut Vec<u32>,
}

/// The token of a hit inside a URL: dropped.
pub(crate) const IN_URL: u32 = u32::MAX;

impl<'a> Placer<'a> {
    pub(crate) fn new(hits: &'a [Hit], out: &'a mut Vec<u32>) -> Self {
        out.clear();
        Self { hits, out }
    }

    /// Whether every hit has its token.
    pub(crate) fn done(&self) -> bool {
        self.out.len() == self.hits.len()
    }

    /// Token `index` is `token`.
    #[inline]
    pub(crate) fn token(&mut self, index: usize, token: Token) {
        while let Some(hit) = self.hits.get(self.out.len()) {
            if hit.span.start >= token.span.end {
                break;
            }
            let in_url = token.kind == TokenKind::Url && token.span.start <= hit.span.start;
            self.out.push(if in_url { IN_URL } else { to_u32(index) });
        }
    }

    /// The text had `count` tokens: hits after the last one get `count`.
    pub(crate) fn finish(self, count: usize) {
        while self.out.len() < self.hits.len() {
            self.out.push(to_u32(count));
        }
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(IN_URL - 1)
}

/// [`score_inline`] into `out`, not inlined (for `Matcher::score`, where
/// inlining it measured slower).
#[inline(never)]
#[allow(clippy::too_many_arguments)] // the scoring inputs, all needed
pub(crate) fn score(
    out: &mut Relevance,
    compiled: &Compiled,
    opts: &ScoreOptions,
    hits: &[Hit],
    hit_tokens: &[u32],
    scanned: &[u8],
    terms: &mut TermCache,
    stopped_early: bool,
) {
    score_inline(
        out,
        compiled,
        opts,
        hits,
        hit_tokens,
        scanned,
        terms,
        stopped_early,
    );
}

/// The relevance of a text from its hits and their tokens, into `out`
/// (as [`Relevance::empty`] left it): filled in place, so that no result
/// is built elsewhere and copied. Always inlined into `Matcher::analyze`.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // the scoring inputs, all needed
pub(crate) fn score_inline(
    r: &mut Relevance,
    compiled: &Compiled,
    opts: &ScoreOptions,
    hits: &[Hit],
    hit_tokens: &[u32],
    scanned: &[u8],
    terms: &mut TermCache,
    stopped_early: bool,
) {
    debug_assert_eq!(hits.len(), hit_tokens.len());
    r.stopped_early = stopped_early;
    // Size every list once: no list grows while it is filled.
    let mut counts = [0usize; 5];
    for (hit, &token) in hits.iter().zip(hit_tokens) {
        if token != IN_URL {
            counts[match hit.target {
                Target::Entity(_) => 0,
                Target::Keyword(_) => 1,
                Target::Context(_) => 2,
                Target::Exclusion(_) => 3,
                Target::Negation(_) => 4,
            }] += 1;
        }
    }
    r.entities.reserve_exact(counts[0]);
    r.keywords.reserve_exact(counts[1]);
    r.context.reserve_exact(counts[2]);
    r.exclusions.reserve_exact(counts[3]);
    r.negations.reserve_exact(counts[4]);
    for (hit, &token) in hits.iter().zip(hit_tokens) {
        if token == IN_URL {
            continue;
        }
        let token = token as usize;
        let span = hit.span;
        match hit.target {
            Target::Entity(index) => r.entities.push(EntityMatch {
                entity: compiled.entities[index as usize].id.clone(),
                span,
                token,
                index,
            }),
            Target::Keyword(index) => {
                let matched = scanned
                    .get(hit.lit.0 as usize..hit.lit.1 as usize)
                    .unwrap_or_default();
                r.keywords.push(KeywordMatch {
                    keyword: compiled.keyword_term(index, matched, terms),
                    category: compiled.keyword_category(index).cloned(),
                    weight: compiled.keyword_weight(index),
                    span,
                    token,
                    negated: false,
                    index,
                });
            }
            Target::Context(index) => r.context.push(TermMatch {
                term: compiled.context[index as usize].term.clone(),
                span,
                token,
                index,
            }),
            Target::Exclusion(index) => r.exclusions.push(TermMatch {
                term: compiled.exclusions[index as usize].term.clone(),
                span,
                token,
                index,
            }),
            Target::Negation(index) => r.negations.push(TermMatch {
                term: compiled.negations[index as usize].clone(),
                span,
                token,
                index,
            }),
        }
    }
    // At most: one per entity, three per keyword (weight, proximity,
    // negation), one per context term and exclusion, a clamp and a veto;
    // none (and no allocation) when only negation words matched.
    let terms_found = counts[0] + 3 * counts[1] + counts[2] + counts[3];
    let mut sig = Signals {
        list: Vec::with_capacity(if terms_found == 0 { 0 } else { terms_found + 2 }),
        total: 0.0,
    };

    for (n, e) in r.entities.iter().enumerate() {
        if first_of(&r.entities[..n], e.index, |m| m.index) {
            sig.push(
                Rule::Entity,
                &e.entity,
                None,
                compiled.entities[e.index as usize].weight,
            );
        }
    }

    // Negation marks, then each distinct keyword's best occurrence.
    for k in &mut r.keywords {
        k.negated = r
            .negations
            .iter()
            .any(|n| n.token < k.token && k.token - n.token <= opts.negation_window);
    }
    for (n, first) in r.keywords.iter().enumerate() {
        if !first_of(&r.keywords[..n], first.index, |m| m.index) {
            continue;
        }
        // value, boost, nearest entity
        let mut best: Option<(f64, f64, Option<usize>)> = None;
        for k in r.keywords[n..].iter().filter(|k| k.index == first.index) {
            let (boost, entity) = proximity(opts, k.token, &r.entities);
            let factor = if k.negated { opts.negation_factor } else { 1.0 };
            let value = (k.weight + boost) * factor;
            if best.is_none_or(|b| value > b.0) {
                best = Some((value, boost, entity));
            }
        }
        let Some((value, boost, entity)) = best else {
            continue;
        };
        let weight = first.weight;
        sig.push(Rule::Keyword, &first.keyword, None, weight);
        if boost > 0.0 {
            let other = entity.map(|e| r.entities[e].entity.clone());
            sig.push(Rule::Proximity, &first.keyword, other, boost);
        }
        let lost = value - (weight + boost);
        if lost < 0.0 {
            sig.push(Rule::Negation, &first.keyword, None, lost);
        }
    }
    if sig.total > 0.0 {
        for (n, c) in r.context.iter().enumerate() {
            if first_of(&r.context[..n], c.index, |m| m.index) {
                sig.push(
                    Rule::Context,
                    &c.term,
                    None,
                    compiled.context[c.index as usize].points,
                );
            }
        }
    }
    let mut veto: Option<&Arc<str>> = None;
    for (n, x) in r.exclusions.iter().enumerate() {
        if !first_of(&r.exclusions[..n], x.index, |m| m.index) {
            continue;
        }
        let info = &compiled.exclusions[x.index as usize];
        if info.veto {
            veto.get_or_insert(&x.term);
        } else {
            sig.push(Rule::Exclusion, &x.term, None, -info.points);
        }
    }
    let sum = sig.total;
    let clamped = sum.clamp(0.0, 100.0);
    if clamped != sum {
        sig.push(Rule::Clamp, &compiled.empty, None, clamped - sum);
    }
    let mut score = clamped;
    if let Some(subject) = veto {
        sig.push(Rule::Veto, subject, None, -clamped);
        score = 0.0;
        r.vetoed = true;
    }
    r.signals = sig.list;
    r.score = score;
    r.relevant = !r.vetoed && score >= opts.threshold;
}

struct Signals {
    list: Vec<Signal>,
    total: f64,
}

impl Signals {
    fn push(&mut self, rule: Rule, subject: &Arc<str>, other: Option<Arc<str>>, points: f64) {
        self.total += points;
        self.list.push(Signal {
            rule,
            subject: subject.clone(),
            other,
            points,
        });
    }
}

/// Whether no item of `before` has `index`.
fn first_of<T>(before: &[T], index: u32, key: impl Fn(&T) -> u32) -> bool {
    !before.iter().any(|m| key(m) == index)
}

/// The proximity boost of a keyword at `token`, from its nearest entity.
#[allow(clippy::cast_precision_loss)] // token distances are far below 2^52
fn proximity(opts: &ScoreOptions, token: usize, entities: &[EntityMatch]) -> (f64, Option<usize>) {
    let nearest = entities
        .iter()
        .enumerate()
        .map(|(i, e)| (e.token.abs_diff(token).max(1), i))
        .min_by_key(|&(d, _)| d);
    match nearest {
        Some((d, e)) if d <= opts.window && opts.window > 0 => {
            let boost = opts.proximity_boost * (opts.window + 1 - d) as f64 / opts.window as f64;
            (boost, Some(e))
        }
        _ => (0.0, None),
    }
}
