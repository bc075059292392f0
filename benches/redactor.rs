//! Redactor throughput over the shipped Claude Code fixtures, repeated to about
//! 64 MiB: redaction on (no secrets), on (secrets planted in ~1% of the lines)
//! and off, against a "Go-style" baseline that does what confab's Go redactor
//! does (parse every line into a value, run every pattern over every string,
//! serialize again). Plain `main` (harness = false): prints a Markdown table.
//!
//! Run: `cargo bench -p confab-sync --bench redactor`

use std::borrow::Cow;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use confab_sync::core::config::{RedactionPattern, RedactionSettings};
use confab_sync::core::redact::patterns::DEFAULT_PATTERNS;
use confab_sync::core::redact::{RedactionCounts, Redactor};
use regex::{Captures, Regex};
use serde_json::Value;

#[path = "support/fixtures.rs"]
mod fixtures;

const TARGET_BYTES: usize = 64 << 20;
const RUNS: usize = 3;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/claude-code");
    let fixture: Vec<String> = fixtures::fixture_lines(&root)
        .into_iter()
        .map(|l| String::from_utf8(l).expect("the fixtures are UTF-8"))
        .collect();
    let fixture_bytes: usize = fixture.iter().map(|l| l.len() + 1).sum();
    let mut clean = Vec::new();
    let mut bytes = 0;
    while bytes < TARGET_BYTES {
        for line in &fixture {
            bytes += line.len() + 1;
            clean.push(line.clone());
        }
    }
    // Every 100th line gets secrets at the start of its first string value.
    let secret = format!("AKIAIOSFODNN7EXAMPLE ghp_{} ", "a1B2c3D4e5".repeat(4));
    let planted: Vec<String> = clean
        .iter()
        .enumerate()
        .map(|(i, line)| match line.find("\":\"") {
            Some(at) if i % 100 == 0 => format!("{}{secret}{}", &line[..at + 3], &line[at + 3..]),
            _ => line.clone(),
        })
        .collect();
    let planted_count = clean.iter().zip(&planted).filter(|(a, b)| a != b).count();

    let settings = RedactionSettings {
        enabled: true,
        ..RedactionSettings::default()
    };
    let started = Instant::now();
    let on = Redactor::new(&settings).expect("defaults compile");
    let compile = started.elapsed();
    let off = Redactor::disabled();
    // A custom pattern with no literal to look for turns the line scan off:
    // every line is walked and every string decoded and searched.
    let mut unscanned = settings.clone();
    unscanned.patterns.push(RedactionPattern {
        name: "40-hex token".to_owned(),
        pattern: Some(r"\b[0-9a-f]{40}\b".to_owned()),
        kind: "hex_token".to_owned(),
        capture_group: None,
        field_pattern: None,
    });
    let unscanned = Redactor::new(&unscanned).expect("compiles");
    let go = GoStyle::new();

    println!(
        "fixtures: {} lines, {:.2} MiB; corpus: {} lines, {:.1} MiB ({} copies); planted: {} lines",
        fixture.len(),
        mib(fixture_bytes),
        clean.len(),
        mib(bytes),
        clean.len() / fixture.len(),
        planted_count
    );
    println!(
        "Redactor::new (defaults): {:.1} ms",
        compile.as_secs_f64() * 1e3
    );
    println!();
    println!("| case | MiB/s | lines/s | redactions |");
    println!("| --- | ---: | ---: | ---: |");
    let ours = |r: &Redactor, lines: &[String]| {
        let mut counts = RedactionCounts::default();
        let mut out = 0usize;
        for line in lines {
            out += black_box(r.redact_line(line, &mut counts)).len();
        }
        black_box(out);
        counts.total()
    };
    let goes = |lines: &[String]| {
        let mut n = 0u64;
        for line in lines {
            let (out, made) = go.redact_line(line);
            black_box(out);
            n += made;
        }
        n
    };
    let cases: [Case<'_>; 6] = [
        ("redaction off (pass-through)", &clean, &|| {
            ours(&off, &clean)
        }),
        ("redaction on, no secrets", &clean, &|| ours(&on, &clean)),
        ("redaction on, 1% of lines with secrets", &planted, &|| {
            ours(&on, &planted)
        }),
        (
            "redaction on + a custom pattern without literal",
            &clean,
            &|| ours(&unscanned, &clean),
        ),
        ("Go-style baseline, no secrets", &clean, &|| goes(&clean)),
        (
            "Go-style baseline, 1% of lines with secrets",
            &planted,
            &|| goes(&planted),
        ),
    ];
    for (name, lines, f) in cases {
        row(name, lines, bytes, f);
    }
}

/// A table row: its name, the lines it runs over, the run (returns the redactions made).
type Case<'a> = (&'a str, &'a [String], &'a dyn Fn() -> u64);

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Times `f` (best of [`RUNS`]) and prints one table row.
fn row(name: &str, lines: &[String], bytes: usize, f: &dyn Fn() -> u64) {
    let mut best = Duration::MAX;
    let mut made = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        made = f();
        best = best.min(started.elapsed());
    }
    let secs = best.as_secs_f64();
    println!(
        "| {name} | {:.0} | {:.0} | {made} |",
        mib(bytes) / secs,
        lines.len() as f64 / secs
    );
}

/// confab's Go redactor, transcribed: every line parsed into a value, every
/// string through every pattern in turn (`ReplaceAllString`), field patterns
/// checked against every key, the value serialized again (keys sorted, as Go's
/// `json.Marshal` of a map does); text fallback for lines that do not parse.
struct GoStyle {
    rules: Vec<GoRule>,
}

struct GoRule {
    value: Option<Regex>,
    field: Option<Regex>,
    group: usize,
    marker: String,
}

impl GoStyle {
    fn new() -> Self {
        let rules = DEFAULT_PATTERNS
            .iter()
            .map(|d| GoRule {
                value: d.pattern.map(|p| Regex::new(p).expect("compiles")),
                field: d.field_pattern.map(|p| Regex::new(p).expect("compiles")),
                group: d.capture_group.unwrap_or(0) as usize,
                marker: format!("[REDACTED:{}]", d.kind.to_uppercase()),
            })
            .collect();
        GoStyle { rules }
    }

    fn redact_line(&self, line: &str) -> (String, u64) {
        let mut made = 0;
        match serde_json::from_str::<Value>(line) {
            Ok(v) => {
                let v = self.walk(v, "", &mut made);
                (serde_json::to_string(&v).expect("serializes"), made)
            }
            Err(_) => {
                let mut s = line.to_owned();
                for rule in self.rules.iter().filter(|r| r.field.is_none()) {
                    s = self.apply(rule, s, &mut made);
                }
                (s, made)
            }
        }
    }

    fn walk(&self, v: Value, field: &str, made: &mut u64) -> Value {
        match v {
            Value::String(s) => Value::String(self.string(s, field, made)),
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| {
                        let v = self.walk(v, &k, made);
                        (k, v)
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .map(|v| self.walk(v, field, made))
                    .collect(),
            ),
            other => other,
        }
    }

    fn string(&self, mut s: String, field: &str, made: &mut u64) -> String {
        for rule in &self.rules {
            match &rule.field {
                Some(f) => {
                    if field.is_empty() || !f.is_match(field) {
                        continue;
                    }
                    if rule.value.is_some() {
                        s = self.apply(rule, s, made);
                    } else {
                        *made += 1;
                        s = rule.marker.clone();
                    }
                }
                None => s = self.apply(rule, s, made),
            }
        }
        s
    }

    fn apply(&self, rule: &GoRule, s: String, made: &mut u64) -> String {
        let Some(re) = &rule.value else { return s };
        let replaced = re.replace_all(&s, |caps: &Captures| {
            *made += 1;
            let whole = caps.get(0).expect("group 0");
            match caps.get(rule.group).filter(|_| rule.group > 0) {
                Some(g) => {
                    let m = whole.as_str();
                    let (a, b) = (g.start() - whole.start(), g.end() - whole.start());
                    format!("{}{}{}", &m[..a], rule.marker, &m[b..])
                }
                None => rule.marker.clone(),
            }
        });
        // Like Go, a string without a match is not copied.
        let changed = match replaced {
            Cow::Owned(o) => Some(o),
            Cow::Borrowed(_) => None,
        };
        changed.unwrap_or(s)
    }
}
