//! Secret redaction of transcript lines before upload: the [`Redactor`] owns
//! the compiled rules (confab's defaults from [`patterns`], then the custom
//! ones), the prefilter (`prefilter.rs`) that passes most lines through
//! untouched without running a regex (its SIMD literal search in the
//! component: `teddy.rs`), and the per-type [`RedactionCounts`].
//!
//! A line that is JSON is redacted value by value through the byte-preserving
//! walker of `json.rs`: string values go through the value rules, and values of
//! keys that a field rule matches are replaced whole by the marker. A line that
//! is not JSON is redacted as text with the value rules only. A line with
//! nothing to redact comes back as the same `&str` (`Cow::Borrowed`); a line
//! the prefilter clears costs two multi-literal scans (values, then sensitive
//! keys; one in the component) and a memchr pass over its backslashes, and
//! allocates nothing. On the
//! other lines only the strings holding a literal are decoded, and only the
//! rules those literals stand for are run.
//!
//! Semantics, rule by rule in order (the defaults first):
//! - a value rule finds its matches in the original string (or the capture
//!   group's span) and each becomes `[REDACTED:<TYPE>]`; a match overlapping
//!   one found by an earlier rule is merged into it (the earlier marker stays),
//!   so everything any rule matched is gone and each marker counts once;
//! - a field rule without `pattern` replaces the value of a matching key:
//!   strings, numbers and objects become the marker string, arrays pass the key
//!   on to their elements, and `true`/`false`/`null` (which hold no secret) are
//!   kept; a string already equal to the marker is left alone, so redacting
//!   twice changes nothing; the first matching field rule wins;
//! - a field rule with `pattern` runs that regex on the strings under matching
//!   keys only;
//! - object keys themselves are never rewritten (as in confab).

mod json;
pub mod patterns;
mod prefilter;
mod teddy;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use regex::Regex;

use crate::core::config::{RedactionPattern, RedactionSettings};
use json::{Edit, Handler, Whole};
use patterns::{Literals, DEFAULT_PATTERNS};
use prefilter::{Candidates, Hit, Prefilter, PrefilterBuilder, StringHits};

/// A redaction pattern that cannot be used: it names the pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedactionConfigError {
    /// The pattern's `name`.
    pub pattern: String,
    /// What is wrong, one line, e.g. "does not compile: unclosed group".
    pub message: String,
}

impl fmt::Display for RedactionConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name: String = self
            .pattern
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        write!(f, "redaction pattern `{name}` {}", self.message)
    }
}

impl std::error::Error for RedactionConfigError {}

/// Redactions made, per marker type (upper-cased).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedactionCounts(pub BTreeMap<String, u64>);

impl RedactionCounts {
    /// Adds `n` redactions of type `kind` (upper-cased here if it is not already).
    pub fn add(&mut self, kind: &str, n: u64) {
        if n == 0 {
            return;
        }
        if let Some(count) = self.0.get_mut(kind) {
            *count = count.saturating_add(n);
        } else {
            let count = self.0.entry(kind.to_uppercase()).or_insert(0);
            *count = count.saturating_add(n);
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Self) {
        for (kind, &n) in &other.0 {
            self.add(kind, n);
        }
    }

    /// All redactions, of every type.
    pub fn total(&self) -> u64 {
        self.0.values().fold(0u64, |sum, &n| sum.saturating_add(n))
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(|&n| n == 0)
    }
}

/// Redacts secrets from lines. Cloning shares the compiled rules.
#[derive(Clone)]
pub struct Redactor {
    /// `None`: redaction is off and every line passes through.
    inner: Option<Arc<Inner>>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            None => f.write_str("Redactor(disabled)"),
            Some(inner) => f
                .debug_struct("Redactor")
                .field("rules", &inner.rules.len())
                .finish_non_exhaustive(),
        }
    }
}

struct Inner {
    rules: Vec<Rule>,
    prefilter: Prefilter,
    /// Indices of field rules without a value regex (whole-value replacement).
    whole_rules: Vec<usize>,
    /// Indices of field rules with a value regex (value regex under matching keys).
    scoped_rules: Vec<usize>,
}

struct Rule {
    /// Upper-cased type, the counter's key.
    kind: String,
    /// `[REDACTED:<KIND>]`.
    marker: String,
    /// The marker as a JSON string token.
    marker_json: String,
    value: Option<Regex>,
    field: Option<Regex>,
    /// 0: the whole match.
    group: usize,
}

/// Where a value sits, for the field rules.
#[derive(Debug, Clone, Default)]
struct FieldCtx {
    /// The first whole-value field rule matching the key.
    whole: Option<usize>,
    /// The key, kept only when some scoped field rule matches it.
    key: Option<Box<str>>,
}

impl Redactor {
    /// Compiles `settings` (defaults first unless `use_default_patterns` is off,
    /// then the custom patterns). With `enabled` false the custom patterns are
    /// still checked, and the redactor passes lines through.
    pub fn new(settings: &RedactionSettings) -> Result<Redactor, RedactionConfigError> {
        Self::with_prefilter(settings, PrefilterBuilder::default())
    }

    /// Tests: [`Redactor::new`] with the component's (Teddy) line scan.
    #[cfg(test)]
    fn with_teddy(settings: &RedactionSettings) -> Result<Redactor, RedactionConfigError> {
        let mut pre = PrefilterBuilder::default();
        pre.force_teddy();
        Self::with_prefilter(settings, pre)
    }

    fn with_prefilter(
        settings: &RedactionSettings,
        mut pre: PrefilterBuilder,
    ) -> Result<Redactor, RedactionConfigError> {
        if !settings.enabled {
            for p in &settings.patterns {
                compile_rule(p)?;
            }
            return Ok(Redactor::disabled());
        }
        let mut rules = Vec::new();
        if settings.use_default_patterns {
            for d in DEFAULT_PATTERNS {
                let index = rules.len();
                rules.push(compile_rule(&d.to_config())?);
                match d.literals {
                    Literals::Substrings(lits) => pre.gate(index, lits),
                    Literals::JsonKeys(keys) => pre.json_keys(keys),
                }
            }
        }
        for p in &settings.patterns {
            let index = rules.len();
            let rule = compile_rule(p)?;
            match (&rule.value, &rule.field) {
                (Some(value), _) => pre.value_regex(index, value.as_str()),
                (None, Some(field)) => pre.field_regex(field.as_str()),
                (None, None) => {}
            }
            rules.push(rule);
        }
        let whole_rules = (0..rules.len())
            .filter(|&i| rules[i].field.is_some() && rules[i].value.is_none())
            .collect();
        let scoped_rules = (0..rules.len())
            .filter(|&i| rules[i].field.is_some() && rules[i].value.is_some())
            .collect();
        let inner = Inner {
            rules,
            prefilter: pre.build(),
            whole_rules,
            scoped_rules,
        };
        Ok(Redactor {
            inner: Some(Arc::new(inner)),
        })
    }

    /// A redactor that passes every line through.
    pub fn disabled() -> Redactor {
        Redactor { inner: None }
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// `line` with its secrets replaced by markers, counting each in `counts`;
    /// the very same `line` (borrowed) when there is nothing to redact.
    pub fn redact_line<'a>(&self, line: &'a str, counts: &mut RedactionCounts) -> Cow<'a, str> {
        let Some(inner) = &self.inner else {
            return Cow::Borrowed(line);
        };
        // No allocation unless the scan finds something.
        let mut hits = Vec::new();
        if !inner.prefilter.scan(line.as_bytes(), &mut hits) {
            return Cow::Borrowed(line);
        }
        inner.redact(line, &hits, counts)
    }
}

impl Inner {
    fn redact<'a>(
        &self,
        line: &'a str,
        hits: &[Hit],
        counts: &mut RedactionCounts,
    ) -> Cow<'a, str> {
        let mut handler = JsonRedaction {
            inner: self,
            hits,
            cursor: 0,
            scratch: String::new(),
            made: Vec::new(),
        };
        match json::walk(line, &mut handler) {
            Ok(None) => Cow::Borrowed(line),
            Ok(Some(out)) => {
                self.count(&handler.made, counts);
                Cow::Owned(out)
            }
            Err(json::Invalid) => {
                let candidates = self.prefilter.candidates(line);
                let edits = self.find_edits(line, None, candidates);
                if edits.is_empty() {
                    return Cow::Borrowed(line);
                }
                let mut out = String::with_capacity(line.len() + 24 * edits.len());
                let mut at = 0;
                for e in &edits {
                    out.push_str(line.get(at..e.start).unwrap_or(""));
                    out.push_str(&self.rules[e.rule].marker);
                    at = e.end;
                }
                out.push_str(line.get(at..).unwrap_or(""));
                let made: Vec<usize> = edits.iter().map(|e| e.rule).collect();
                self.count(&made, counts);
                Cow::Owned(out)
            }
        }
    }

    fn count(&self, made: &[usize], counts: &mut RedactionCounts) {
        for &rule in made {
            counts.add(&self.rules[rule].kind, 1);
        }
    }

    /// The spans of `text` to redact with the value rules, sorted and disjoint.
    /// `key` is `None` for plain text (field rules are skipped), else the
    /// value's field context; only the `candidates` rules are run.
    fn find_edits(&self, text: &str, key: Option<&FieldCtx>, candidates: Candidates) -> Vec<Edit> {
        let mut edits: Vec<Edit> = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            let Some(value) = &rule.value else { continue };
            if !candidates.contains(index) {
                continue;
            }
            if let Some(field) = &rule.field {
                // Scoped rule: only under a key it matches, never in plain text.
                match key.and_then(|k| k.key.as_deref()) {
                    Some(k) if field.is_match(k) => {}
                    _ => continue,
                }
            }
            if rule.group == 0 {
                for m in value.find_iter(text) {
                    add_edit(&mut edits, m.start(), m.end(), index);
                }
            } else {
                for caps in value.captures_iter(text) {
                    if let Some(m) = caps.get(rule.group) {
                        add_edit(&mut edits, m.start(), m.end(), index);
                    }
                }
            }
        }
        edits
    }
}

/// Adds the span `start..end` for `rule`, merging it into the spans it overlaps
/// (which came from earlier rules, whose marker is kept).
fn add_edit(edits: &mut Vec<Edit>, start: usize, end: usize, rule: usize) {
    if start >= end {
        // An empty match hides nothing; a marker there would only add noise.
        return;
    }
    // First span ending after `start`: the first that may overlap.
    let first = edits.partition_point(|e| e.end <= start);
    let last = first + edits[first..].iter().take_while(|e| e.start < end).count();
    if first == last {
        edits.insert(first, Edit { start, end, rule });
        return;
    }
    let merged = Edit {
        start: start.min(edits[first].start),
        end: end.max(edits[last - 1].end),
        rule: edits[first].rule,
    };
    edits.splice(first..last, [merged]);
}

/// The walker's handler: applies the rules to one JSON line, remembering which
/// rules fired (counted only once the line turns out to be JSON).
struct JsonRedaction<'r> {
    inner: &'r Inner,
    /// The prefilter's hits on the line, and how far the strings have got in them.
    hits: &'r [Hit],
    cursor: usize,
    /// Decoding buffer, reused across the line's strings.
    scratch: String,
    made: Vec<usize>,
}

impl Handler for JsonRedaction<'_> {
    type Ctx = FieldCtx;

    fn wants_keys(&self) -> bool {
        !self.inner.whole_rules.is_empty() || !self.inner.scoped_rules.is_empty()
    }

    fn root(&self) -> FieldCtx {
        FieldCtx::default()
    }

    fn key(&mut self, key: &str) -> FieldCtx {
        let rules = &self.inner.rules;
        let matches = |i: &usize| rules[*i].field.as_ref().is_some_and(|f| f.is_match(key));
        let whole = self.inner.whole_rules.iter().copied().find(|i| matches(i));
        let scoped = self.inner.scoped_rules.iter().any(matches);
        FieldCtx {
            whole,
            key: scoped.then(|| key.into()),
        }
    }

    fn string(&mut self, ctx: &FieldCtx, at: usize, raw: &str, escaped: bool) -> Option<String> {
        if let Some(rule) = ctx.whole {
            let rule = &self.inner.rules[rule];
            if !escaped && raw == rule.marker {
                return None;
            }
            let mut decoded = std::mem::take(&mut self.scratch);
            decoded.clear();
            json::decode_into(raw, &mut decoded);
            let already = decoded == rule.marker;
            self.scratch = decoded;
            if already {
                return None;
            }
            self.made.push(ctx.whole?);
            return Some(rule.marker_json.clone());
        }
        let prefilter = &self.inner.prefilter;
        let known = if prefilter.scans_everything() {
            None
        } else {
            match prefilter.string_hits(self.hits, &mut self.cursor, at, at + raw.len()) {
                StringHits::Nothing => return None,
                StringHits::Rules(rules) => Some(rules),
                StringHits::Decode => None,
            }
        };
        let decoded: &str = if escaped {
            self.scratch.clear();
            json::decode_into(raw, &mut self.scratch);
            &self.scratch
        } else {
            raw
        };
        let candidates = known.unwrap_or_else(|| prefilter.candidates(decoded));
        let edits = self.inner.find_edits(decoded, Some(ctx), candidates);
        if edits.is_empty() {
            return None;
        }
        self.made.extend(edits.iter().map(|e| e.rule));
        let rules = &self.inner.rules;
        Some(json::reencode(raw, &edits, |rule| {
            rules[rule].marker.as_str()
        }))
    }

    fn whole(&mut self, ctx: &FieldCtx, _kind: Whole) -> Option<String> {
        let rule = ctx.whole?;
        self.made.push(rule);
        Some(self.inner.rules[rule].marker_json.clone())
    }
}

/// Compiles one pattern, refusing it (by name) when it has no regex, when a
/// regex does not compile, or when its capture group does not exist.
fn compile_rule(p: &RedactionPattern) -> Result<Rule, RedactionConfigError> {
    let error = |message: String| RedactionConfigError {
        pattern: p.name.clone(),
        message,
    };
    // An empty regex string counts as absent, as in confab's config.
    let value_src = p.pattern.as_deref().filter(|s| !s.is_empty());
    let field_src = p.field_pattern.as_deref().filter(|s| !s.is_empty());
    if value_src.is_none() && field_src.is_none() {
        return Err(error(
            "has neither `pattern` nor `field_pattern`".to_owned(),
        ));
    }
    let value = value_src
        .map(Regex::new)
        .transpose()
        .map_err(|e| error(format!("does not compile: {}", regex_error_line(&e))))?;
    let field = field_src.map(Regex::new).transpose().map_err(|e| {
        error(format!(
            "field_pattern does not compile: {}",
            regex_error_line(&e)
        ))
    })?;
    let group = match (&value, p.capture_group) {
        (Some(re), Some(g)) => {
            let g = g as usize;
            let groups = re.captures_len() - 1;
            if g > groups {
                return Err(error(format!(
                    "has capture_group {g}, but its pattern has {groups} group(s)"
                )));
            }
            g
        }
        _ => 0,
    };
    let kind = p.kind.to_uppercase();
    let marker = format!("[REDACTED:{kind}]");
    let marker_json = json::quote(&marker);
    Ok(Rule {
        kind,
        marker,
        marker_json,
        value,
        field,
        group,
    })
}

/// The one line of a regex error that says what is wrong (its `error:` line
/// for a syntax error; the first line otherwise).
fn regex_error_line(e: &regex::Error) -> String {
    let text = e.to_string();
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("error:"))
        .or_else(|| text.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("invalid regex");
    let line = line.trim();
    if line.starts_with("Unicode") {
        // The component carries only the tables of \w, \d, \s, \b and (?i)
        // (see Cargo.toml): say so rather than "not found".
        return format!("{line} (only \\w, \\d, \\s, \\b and case folding know Unicode here; use explicit ranges such as [\\x{{370}}-\\x{{3FF}}])");
    }
    line.to_owned()
}

#[cfg(test)]
mod tests;
