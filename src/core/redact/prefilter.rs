//! The prefilter: decides from the raw line, with one or two multi-literal
//! scans and no regex, that a line cannot hold anything to redact, and tells
//! the slow path which rules are worth running on a given string.
//!
//! Soundness argument. Every rule with a value regex has literals such that
//! each of its matches contains one of them (hand-checked for the defaults,
//! extracted with `regex-syntax` for custom patterns). A literal in a decoded
//! JSON string appears verbatim in the raw line unless one of its characters
//! was written as an escape; so a raw line is sent to the slow path when it
//! contains a literal, or an escape that could stand for a character of some
//! literal (`\u0041`, `\/`, ...). JSON.stringify only escapes `"`, `\` and
//! control characters, none of which occur in the default literals, so the
//! escapes Claude Code writes (`\n`, `\"`, `\u001b`) do not defeat the scan.
//! Field rules are found by their key: the default sensitive-key rule by its
//! quoted names (ASCII case-insensitive, plus `ſ` and `K`, which Unicode case
//! folding maps to `s` and `k`), custom field rules by their extracted literals.
//! A rule without usable literals turns the line scan off (every line takes the
//! slow path) and is always run.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Input, MatchKind};
use regex_syntax::hir::literal::{ExtractKind, Extractor};

/// Non-ASCII characters that Unicode simple case folding maps onto ASCII
/// letters: LATIN SMALL LETTER LONG S (`s`) and KELVIN SIGN (`k`). A `(?i)` key
/// pattern matches them where an ASCII-case-insensitive scan would not look.
const FOLDS_TO_ASCII: [char; 2] = ['\u{17F}', '\u{212A}'];

/// Why a literal of the line scan is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lit {
    /// A literal of rule `n`'s value regex.
    Gate(usize),
    /// A literal of a field rule: only sends the line to the slow path.
    Trigger,
    /// `\u`: suspicious only when the escaped character is hideable.
    UnicodeEscape,
    /// A short escape (`\/`, `\"`, ...) of a hideable character.
    ShortEscape,
}

/// Collects literals while rules are compiled.
#[derive(Debug, Default)]
pub(crate) struct PrefilterBuilder {
    lits: Vec<(Vec<u8>, Lit)>,
    keys: Vec<String>,
    /// Some rule has no usable literal: no line may skip the slow path.
    scan_off: bool,
    /// Rules that run on every string (no literal gates them).
    ungated: Vec<usize>,
}

impl PrefilterBuilder {
    /// Literals of rule `rule`'s value regex (each match contains one).
    pub(crate) fn gate(&mut self, rule: usize, literals: &[&str]) {
        self.lits.extend(
            literals
                .iter()
                .map(|l| (l.as_bytes().to_vec(), Lit::Gate(rule))),
        );
    }

    /// Literals whose presence means a field rule may match.
    pub(crate) fn trigger(&mut self, literals: &[&str]) {
        self.lits.extend(
            literals
                .iter()
                .map(|l| (l.as_bytes().to_vec(), Lit::Trigger)),
        );
    }

    /// Exact JSON key names, matched ASCII case-insensitively.
    pub(crate) fn json_keys(&mut self, names: &[&str]) {
        self.keys.extend(names.iter().map(|n| (*n).to_owned()));
        let folds: Vec<String> = FOLDS_TO_ASCII.iter().map(char::to_string).collect();
        let folds: Vec<&str> = folds.iter().map(String::as_str).collect();
        self.trigger(&folds);
    }

    /// Rule `rule`'s value regex `pattern`: gates it by its extracted literals,
    /// or, when it has none, runs it everywhere and turns the line scan off.
    pub(crate) fn value_regex(&mut self, rule: usize, pattern: &str) {
        match extract_literals(pattern) {
            Some(lits) => self
                .lits
                .extend(lits.into_iter().map(|l| (l, Lit::Gate(rule)))),
            None => {
                self.ungated.push(rule);
                self.scan_off = true;
            }
        }
    }

    /// A custom field-only regex: its literals trigger the slow path.
    pub(crate) fn field_regex(&mut self, pattern: &str) {
        match extract_literals(pattern) {
            Some(lits) => self
                .lits
                .extend(lits.into_iter().map(|l| (l, Lit::Trigger))),
            None => self.scan_off = true,
        }
    }

    pub(crate) fn build(self) -> Prefilter {
        let mut hide = Hideable::default();
        for (lit, _) in &self.lits {
            hide.add_literal(lit);
        }
        for key in &self.keys {
            hide.add_literal(key.as_bytes());
            hide.add_literal(key.to_ascii_uppercase().as_bytes());
        }
        let mut lits = self.lits;
        if !lits.is_empty() || !self.keys.is_empty() {
            for (esc, c) in [
                ("\\\"", '"'),
                ("\\\\", '\\'),
                ("\\/", '/'),
                ("\\b", '\u{8}'),
                ("\\f", '\u{c}'),
                ("\\n", '\n'),
                ("\\r", '\r'),
                ("\\t", '\t'),
            ] {
                if hide.contains(c) {
                    lits.push((esc.as_bytes().to_vec(), Lit::ShortEscape));
                }
            }
            // Last: at equal starts, leftmost-first prefers any other literal.
            lits.push((b"\\u".to_vec(), Lit::UnicodeEscape));
        }
        // One automaton pattern per distinct literal, mapped to all its roles.
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut roles: Vec<Vec<Lit>> = Vec::new();
        for (lit, role) in lits {
            match patterns.iter().position(|p| *p == lit) {
                Some(i) => roles[i].push(role),
                None => {
                    patterns.push(lit);
                    roles.push(vec![role]);
                }
            }
        }
        // The line scan only needs the leftmost literal (see `may_match`), which
        // lets the automaton run its fast prefilter; finding every literal of a
        // string (`candidates`) needs overlapping search, so standard semantics.
        let scan = build_ac(
            AhoCorasickBuilder::new().match_kind(MatchKind::LeftmostFirst),
            &patterns,
        );
        let gates = build_ac(
            AhoCorasickBuilder::new().match_kind(MatchKind::Standard),
            &patterns,
        );
        let quoted: Vec<String> = self.keys.iter().map(|k| format!("\"{k}\"")).collect();
        let keys = build_ac(
            AhoCorasickBuilder::new().ascii_case_insensitive(true),
            &quoted,
        );
        // Without an automaton (the lists above are never too big for one) nothing is skipped.
        let scan_off = self.scan_off
            || (scan.is_none() && !patterns.is_empty())
            || (keys.is_none() && !quoted.is_empty());
        let mut ungated = self.ungated;
        if gates.is_none() {
            ungated.extend(roles.iter().flatten().filter_map(|r| match r {
                Lit::Gate(n) => Some(*n),
                _ => None,
            }));
        }
        Prefilter {
            scan,
            gates,
            roles,
            keys,
            scan_off,
            ungated,
            hide,
        }
    }
}

fn build_ac<P: AsRef<[u8]>>(builder: &AhoCorasickBuilder, patterns: &[P]) -> Option<AhoCorasick> {
    if patterns.is_empty() {
        return None;
    }
    builder.build(patterns).ok()
}

/// Literals such that every match of `pattern` starts (or else ends) with one
/// of them; `None` when there is no such finite, non-empty set.
pub(crate) fn extract_literals(pattern: &str) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    [ExtractKind::Prefix, ExtractKind::Suffix]
        .into_iter()
        .find_map(|kind| {
            let seq = Extractor::new().kind(kind).extract(&hir);
            let lits = seq.literals()?;
            // An empty set (matches nothing) or an empty literal (matches anywhere) gates nothing useful.
            if lits.is_empty() || lits.iter().any(|l| l.as_bytes().is_empty()) {
                return None;
            }
            Some(lits.iter().map(|l| l.as_bytes().to_vec()).collect())
        })
}

/// Characters occurring in some literal: an escape standing for one of them
/// could hide that literal from the raw scan.
#[derive(Debug, Clone)]
struct Hideable {
    ascii: [bool; 128],
    other: Vec<char>,
    /// A literal was not valid UTF-8 (a truncated extraction): every escape is suspect.
    all: bool,
}

impl Default for Hideable {
    fn default() -> Self {
        Self {
            ascii: [false; 128],
            other: Vec::new(),
            all: false,
        }
    }
}

impl Hideable {
    fn add_literal(&mut self, lit: &[u8]) {
        match std::str::from_utf8(lit) {
            Ok(s) => {
                for c in s.chars() {
                    match self.ascii.get_mut(c as usize) {
                        Some(slot) => *slot = true,
                        None => {
                            if !self.other.contains(&c) {
                                self.other.push(c);
                            }
                        }
                    }
                }
            }
            Err(_) => self.all = true,
        }
    }

    fn contains(&self, c: char) -> bool {
        self.all
            || self
                .ascii
                .get(c as usize)
                .copied()
                .unwrap_or_else(|| self.other.contains(&c))
    }
}

/// Which rules a string may match (by their literals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidates(u128);

impl Candidates {
    /// Whether rule `rule` is worth running. Rules past the bitset's width are always run.
    pub(crate) fn contains(self, rule: usize) -> bool {
        rule >= 128 || self.0 & (1u128 << rule) != 0
    }

    fn insert(&mut self, rule: usize) {
        if rule < 128 {
            self.0 |= 1u128 << rule;
        }
    }
}

/// The compiled prefilter. See the module docs.
#[derive(Debug, Clone)]
pub(crate) struct Prefilter {
    /// All literals, leftmost-first: the line scan.
    scan: Option<AhoCorasick>,
    /// The same literals with standard semantics: every occurrence, for `candidates`.
    gates: Option<AhoCorasick>,
    roles: Vec<Vec<Lit>>,
    keys: Option<AhoCorasick>,
    scan_off: bool,
    ungated: Vec<usize>,
    hide: Hideable,
}

impl Prefilter {
    /// False when `line` (raw, JSON or not) certainly holds nothing to redact.
    pub(crate) fn may_match(&self, line: &[u8]) -> bool {
        if self.scan_off {
            return true;
        }
        if let Some(scan) = &self.scan {
            // Leftmost-first: no literal starts before the match, and a literal
            // starting where an innocent `\u` does would have been preferred to
            // it (escapes come last), so resuming one byte after the `\u`
            // misses nothing.
            let mut at = 0;
            while let Some(m) = scan.find(Input::new(line).range(at..)) {
                let roles = self.roles.get(m.pattern().as_usize());
                if roles
                    .into_iter()
                    .flatten()
                    .any(|r| *r != Lit::UnicodeEscape)
                {
                    return true;
                }
                let (_, c) = super::json::escape_at(line, m.start());
                if self.hide.contains(c) {
                    return true;
                }
                at = m.start() + 1;
            }
        }
        self.keys.as_ref().is_some_and(|keys| keys.is_match(line))
    }

    /// The rules whose literals occur in `text` (decoded), plus the ungated ones.
    pub(crate) fn candidates(&self, text: &str) -> Candidates {
        let mut set = Candidates(0);
        for &rule in &self.ungated {
            set.insert(rule);
        }
        // Most strings of a line sent here hold no literal: one leftmost scan
        // says so before the overlapping search that lists them all.
        let any = self.scan.as_ref().is_none_or(|scan| scan.is_match(text));
        if let Some(gates) = self.gates.as_ref().filter(|_| any) {
            for m in gates.find_overlapping_iter(text) {
                for role in self.roles.get(m.pattern().as_usize()).into_iter().flatten() {
                    if let Lit::Gate(rule) = role {
                        set.insert(*rule);
                    }
                }
            }
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_prefixes_then_suffixes() {
        let lits = extract_literals("foo[0-9]+").unwrap();
        assert_eq!(lits.len(), 10);
        assert!(lits.iter().all(|l| l.starts_with(b"foo")));
        assert_eq!(
            extract_literals("(?:bar|baz)[a-z]+").unwrap(),
            vec![b"bar".to_vec(), b"baz".to_vec()]
        );
        // No finite prefix set: falls back to the suffix.
        let lits = extract_literals("[a-z]+_secret").unwrap();
        assert_eq!(lits, vec![b"_secret".to_vec()]);
        assert_eq!(extract_literals("[a-z]+"), None);
        assert_eq!(extract_literals("a*"), None);
        assert_eq!(extract_literals("("), None);
    }

    fn prefilter(f: impl FnOnce(&mut PrefilterBuilder)) -> Prefilter {
        let mut b = PrefilterBuilder::default();
        f(&mut b);
        b.build()
    }

    #[test]
    fn escapes_that_could_hide_a_literal_are_suspect() {
        let p = prefilter(|b| b.gate(0, &["sk-", "://"]));
        assert!(!p.may_match(br#"{"a":"plain \u001b[0m \n \" \u2014 text"}"#));
        assert!(p.may_match(br#"{"a":"\u0073k-abc"}"#));
        assert!(p.may_match(br#"{"a":"postgres:\/\/u:p@h"}"#));
        assert!(p.may_match(br#"{"a":"sk-abc"}"#));
    }

    #[test]
    fn json_keys_are_quoted_and_case_insensitive() {
        let p = prefilter(|b| b.json_keys(&["token"]));
        assert!(p.may_match(br#"{"Token":1}"#));
        assert!(p.may_match(br#"{"TOKEN":1}"#));
        assert!(!p.may_match(br#"{"input_tokens":1,"token_count":2}"#));
        assert!(p.may_match("{\"to\u{212A}en\":1}".as_bytes()));
        assert!(p.may_match(br#"{"tok\u0065n":1}"#));
        assert!(p.may_match(br#"{"to\u212Aen":1}"#));
    }

    #[test]
    fn a_rule_without_literals_turns_the_scan_off() {
        let p = prefilter(|b| {
            b.gate(0, &["sk-"]);
            b.value_regex(1, "[a-z]{40}");
        });
        assert!(p.may_match(b"anything"));
        assert!(p.candidates("nothing").contains(1));
        assert!(!p.candidates("nothing").contains(0));
        assert!(p.candidates("an sk- here").contains(0));
    }
}
