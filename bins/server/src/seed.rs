//! The demo: a dictionary and ~1,000 posts the server writes into an empty
//! database on its first start, so the dashboard and the API show real
//! activity at once.
//
// The posts come from templates with slots (a company, a product, a number,
// a feeling), filled by a seeded random generator: the same corpus on every
// machine, with the mix a monitor sees (most posts irrelevant, some about
// the watched companies, a few giveaways and parodies the dictionary
// excludes), spread over the last seven days.

use brisk_core::{Engagement, Post, Timestamp};

/// The demo dictionary: fictional companies, finance and product keywords.
pub(crate) const DEMO_DICTIONARY: &str = r##"# brisk demo dictionary: edit it, or PUT a new one to /api/dictionary.
[[entities]]
id = "acme"
aliases = ["Acme Corp", "Acme", "$ACME", "@acme", "#acme"]

[[entities]]
id = "globex"
aliases = ["Globex", "Globex Corporation", "$GLBX", "@globex", "#globex"]

[[entities]]
id = "initech"
aliases = ["Initech", "$INIT", "@initech", "#initech"]

[[entities]]
id = "umbrella"
aliases = ["Umbrella Labs", "Umbrella", "$UMBL", "@umbrellalabs"]

[[keywords]]
term = "earnings"
weight = 30
category = "finance"

[[keywords]]
term = "guidance"
weight = 25
category = "finance"

[[keywords]]
term = "acquisition"
weight = 35
category = "deals"

[[keywords]]
term = "merger"
weight = 35
category = "deals"

[[keywords]]
term = "outage"
weight = 30
category = "incident"

[[keywords]]
term = "breach"
weight = 40
category = "incident"

[[keywords]]
term = "recall"
weight = 35
category = "incident"

[[keywords]]
term = "launch"
weight = 20
category = "product"

[[keywords]]
term = "layoffs"
weight = 30
category = "people"

[[context]]
term = "nasdaq"

[[context]]
term = "analysts"

[[context]]
term = "quarter"

[[exclusions]]
term = "parody"
penalty = 40

[[exclusions]]
term = "giveaway"
veto = true
"##;

const COMPANIES: &[&str] = &[
    "Acme",
    "$ACME",
    "Globex",
    "$GLBX",
    "Initech",
    "@initech",
    "Umbrella Labs",
    "$UMBL",
];
const OTHERS: &[&str] = &[
    "my cat",
    "the weather",
    "this coffee",
    "the new album",
    "my commute",
    "the game last night",
];
const PRODUCTS: &[&str] = &["phone", "cloud platform", "battery", "API", "smart fridge", "app"];
const FEELINGS: &[&str] = &[
    "love",
    "hate",
    "can't stop thinking about",
    "am impressed by",
    "am done with",
];
const AUTHORS: &[&str] = &[
    "@marketwatcher",
    "@newsdesk",
    "@techdaily",
    "@jane_doe",
    "@quantqueen",
    "@opsguy",
    "@retailfan",
    "@analyst_amy",
];

/// `{c}` company, `{o}` other topic, `{p}` product, `{f}` feeling, `{n}` number, `{s}` a small percentage, `{r}` a rating out of 10.
const TEMPLATES: &[&str] = &[
    "{c} earnings beat estimates, analysts raise targets to ${n}",
    "{c} cuts guidance for the quarter, shares down {s}%",
    "Breaking: {c} announces acquisition of a {p} startup for ${n}M",
    "Merger talks between {c} and a rival confirmed by two sources",
    "{c} {p} outage enters hour {n}, status page still green",
    "Reports of a data breach at {c}; {n}k accounts affected",
    "{c} issues a recall of {n} thousand units of its {p}",
    "{c} did not report earnings today, despite the rumours",
    "The {c} {p} launch event starts in {n} minutes 🚀",
    "{c} layoffs: {n} people let go this quarter",
    "Huge {c} giveaway!!! RT to win a {p} 🎁",
    "Parody account: {c} earnings are made of cheese",
    "I {f} {o}. {r}/10",
    "Thread 🧵 1/{n}: why I {f} {o}",
    "Is it just me or is {o} worse every day?",
    "Hot take: {o} is overrated. Change my mind.",
    "Day {n} of learning Rust: lifetimes finally make sense",
    "Just tried the new {p} from a small shop, I {f} it",
    "{c} on the Nasdaq today: up {s}% before lunch",
    "Anyone else see {c} trending? #{n}",
];

/// `count` posts from the templates, spread over the week before `now`,
/// the same for the same `seed`.
pub(crate) fn demo_posts(count: usize, seed: u64, now: Timestamp) -> Vec<Post> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let week_ms: i64 = 7 * 24 * 3600 * 1000;
    let mut posts = Vec::with_capacity(count);
    for i in 0..count {
        let template = TEMPLATES[rng.usize(..TEMPLATES.len())];
        let mut text = String::with_capacity(template.len() + 32);
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            text.push_str(&rest[..start]);
            let slot = &rest[start..start + 3];
            match slot {
                "{c}" => text.push_str(COMPANIES[rng.usize(..COMPANIES.len())]),
                "{o}" => text.push_str(OTHERS[rng.usize(..OTHERS.len())]),
                "{p}" => text.push_str(PRODUCTS[rng.usize(..PRODUCTS.len())]),
                "{f}" => text.push_str(FEELINGS[rng.usize(..FEELINGS.len())]),
                "{s}" => text.push_str(&rng.u32(2..40).to_string()),
                "{r}" => text.push_str(&rng.u32(1..=10).to_string()),
                _ => text.push_str(&rng.u32(2..500).to_string()),
            }
            rest = &rest[start + 3..];
        }
        text.push_str(rest);
        let at = now.as_unix_millis() - rng.i64(0..week_ms);
        let engagement = Engagement::new(
            rng.u64(0..2_000),
            rng.u64(0..400),
            rng.u64(0..150),
            rng.u64(100..90_000),
        );
        posts.push(
            Post::new(format!("demo-{i:05}"), text, Timestamp::from_unix_millis(at))
                .with_author(AUTHORS[rng.usize(..AUTHORS.len())])
                .with_source("demo")
                .with_language("en")
                .with_engagement(engagement),
        );
    }
    posts
}

#[cfg(test)]
mod tests {
    use brisk_pattern_matcher::{Dictionary, Matcher};

    use super::*;

    #[test]
    fn the_demo_is_deterministic_and_mixed() {
        let now = Timestamp::from_unix_millis(1_800_000_000_000);
        let a = demo_posts(1_000, 7, now);
        assert_eq!(a, demo_posts(1_000, 7, now));
        assert!(a.iter().all(|p| !p.text.contains('{')));
        let matcher = Matcher::builder(Dictionary::from_toml_str(DEMO_DICTIONARY).unwrap())
            .build()
            .unwrap();
        let relevant = a.iter().filter(|p| matcher.score(&p.text).relevant).count();
        // Some but not most posts are about the watched companies.
        assert!((100..700).contains(&relevant), "{relevant} relevant");
    }
}
