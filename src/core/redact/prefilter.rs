//! The prefilter: decides from the raw line, with one or two multi-literal
//! scans and no regex, that a line cannot hold anything to redact; for the
//! other lines it lists where the literals are, so the slow path only decodes
//! and runs rules on the strings that hold one, and only the rules they gate.
//!
//! Soundness argument. Every rule with a value regex has literals such that
//! each of its matches contains one of them (hand-checked for the defaults,
//! extracted with `regex-syntax` for custom patterns). A literal in a decoded
//! JSON string appears verbatim in the raw string unless one of its characters
//! was written as an escape; so a raw line is sent to the slow path when it
//! contains a literal, or an escape that could stand for a character of some
//! literal (`\u0041`, `\/`, ...), and a string with such an escape is decoded
//! before its literals are looked for. Literals are found by one aho-corasick
//! automaton (leftmost-first, so it runs its SIMD searcher), or in the
//! component, where aho-corasick has no SIMD searcher, by Teddy (`teddy.rs`)
//! together with the keys and the escapes; elsewhere escapes by memchr. JSON.stringify only escapes `"`, `\` and
//! control characters, none of which occur in the default literals, so the
//! escapes Claude Code writes (`\n`, `\"`, `\u001b`) do not defeat the scan.
//! Field rules are found by their key: the default sensitive-key rule by its
//! quoted names (ASCII case-insensitive, plus `ſ` and `K`, which Unicode case
//! folding maps to `s` and `k`), custom field rules by their extracted literals.
//! A rule without usable literals turns the line scan off (every line takes the
//! slow path, every string is decoded) and is always run.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Input, MatchKind};
use regex_syntax::hir::literal::{ExtractKind, Extractor};

use super::teddy::{self, Teddy};

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
    /// Tests: search with Teddy even where it has no vector instructions.
    force_teddy: bool,
}

impl PrefilterBuilder {
    /// Literals of rule `rule`'s value regex (each match contains one).
    pub(crate) fn gate(&mut self, rule: usize, literals: &[&str]) {
        let lits = literals
            .iter()
            .map(|l| (l.as_bytes().to_vec(), Lit::Gate(rule)));
        self.lits.extend(lits);
    }

    /// Exact JSON key names, matched ASCII case-insensitively.
    pub(crate) fn json_keys(&mut self, names: &[&str]) {
        self.keys.extend(names.iter().map(|n| (*n).to_owned()));
        for c in FOLDS_TO_ASCII {
            self.lits.push((c.to_string().into_bytes(), Lit::Trigger));
        }
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

    /// Tests: search the raw lines with Teddy on any target.
    #[cfg(test)]
    pub(crate) fn force_teddy(&mut self) {
        self.force_teddy = true;
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
        // Escapes are found with memchr rather than by the automaton: `\`
        // is frequent in transcripts (every `\n`) and would slow its SIMD search.
        let mut short_suspect = [false; 256];
        for (byte, c) in [
            (b'"', '"'),
            (b'\\', '\\'),
            (b'/', '/'),
            (b'b', '\u{8}'),
            (b'f', '\u{c}'),
            (b'n', '\n'),
            (b'r', '\r'),
            (b't', '\t'),
        ] {
            short_suspect[usize::from(byte)] = hide.contains(c);
        }
        let lits = self.lits;
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
        // The scan reports one literal per start position (the first in
        // pattern order): the rules it stands for are those of every literal
        // that is a prefix of it or that it is a prefix of, the only other
        // literals that can start at the same place.
        let gated = |i: usize| {
            let mut set = Candidates(0);
            for role in &roles[i] {
                if let Lit::Gate(rule) = role {
                    set.insert(*rule);
                }
            }
            set
        };
        let closure: Vec<Candidates> = (0..patterns.len())
            .map(|i| {
                let related = (0..patterns.len()).filter(|&j| {
                    patterns[i].starts_with(&patterns[j]) || patterns[j].starts_with(&patterns[i])
                });
                related.fold(Candidates(0), |set, j| set.union(gated(j)))
            })
            .collect();
        // Leftmost-first lets the automaton use its fastest (SIMD) searcher.
        let scan = build_ac(
            AhoCorasickBuilder::new().match_kind(MatchKind::LeftmostFirst),
            &patterns,
        );
        let quoted: Vec<String> = self.keys.iter().map(|k| format!("\"{k}\"")).collect();
        let keys = build_ac(
            AhoCorasickBuilder::new().ascii_case_insensitive(true),
            &quoted,
        );
        // Without an automaton (these lists are never too big for one) nothing is skipped.
        let scan_off = self.scan_off
            || (scan.is_none() && !patterns.is_empty())
            || (keys.is_none() && !quoted.is_empty());
        let mut ungated = Candidates(0);
        for &rule in &self.ungated {
            ungated.insert(rule);
        }
        let escapes = scan.is_some() || keys.is_some();
        // One SIMD pass for literals, keys and suspect escapes where
        // aho-corasick has no SIMD searcher.
        let escape_needles: Vec<[u8; 2]> = if escapes {
            let short = (0..=255u8).filter(|&b| short_suspect[usize::from(b)]);
            std::iter::once(b'u')
                .chain(short)
                .map(|b| [b'\\', b])
                .collect()
        } else {
            Vec::new()
        };
        let fast = (teddy::HAS_SIMD || self.force_teddy)
            .then(|| {
                let needles: Vec<(&[u8], bool)> = patterns
                    .iter()
                    .map(|p| (p.as_slice(), false))
                    .chain(quoted.iter().map(|k| (k.as_bytes(), true)))
                    .chain(escape_needles.iter().map(|e| (e.as_slice(), false)))
                    .collect();
                Teddy::new(&needles)
            })
            .flatten()
            .map(|teddy| FastScan {
                teddy,
                gated: (0..patterns.len()).map(gated).collect(),
                escapes_from: patterns.len() + quoted.len(),
            });
        Prefilter {
            scan,
            fast,
            closure,
            escapes,
            short_suspect,
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
            // An empty set (matches nothing) or an empty literal (matches
            // anywhere) gates nothing useful.
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
        let Ok(s) = std::str::from_utf8(lit) else {
            self.all = true;
            return;
        };
        for c in s.chars() {
            match self.ascii.get_mut(c as usize) {
                Some(slot) => *slot = true,
                None if !self.other.contains(&c) => self.other.push(c),
                None => {}
            }
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

/// Which rules a string may match (by their literals), as a bitset.
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

    fn union(self, other: Self) -> Self {
        Candidates(self.0 | other.0)
    }
}

/// Where the raw line holds something the slow path must look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hit {
    /// Byte offset of the literal or escape in the line.
    pub pos: usize,
    /// `None`: an escape that could hide a literal (decode and look again);
    /// otherwise the rules the literal there gates.
    rules: Option<Candidates>,
}

/// What the hits inside one string say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StringHits {
    /// No literal: no value rule can match it.
    Nothing,
    /// Only these rules can match it.
    Rules(Candidates),
    /// It has a suspect escape: decode it and look for literals there.
    Decode,
}

/// Teddy over the scan's literals (needle `i` is literal `i`), then the
/// quoted keys, then the suspect escapes (`\u`, and `\` before each
/// short-escape letter that stands for a hideable character).
#[derive(Debug, Clone)]
struct FastScan {
    teddy: Teddy,
    /// Per literal: the rules it gates (each literal found at a position is
    /// reported, so no closure is needed).
    gated: Vec<Candidates>,
    /// Index of the first escape needle.
    escapes_from: usize,
}

/// The compiled prefilter. See the module docs.
#[derive(Debug, Clone)]
pub(crate) struct Prefilter {
    /// All literals, leftmost-first.
    scan: Option<AhoCorasick>,
    /// Literals and keys in one SIMD search, used by [`Prefilter::scan`]
    /// instead of `scan` and `keys` where it is built.
    fast: Option<FastScan>,
    /// Per scan pattern: the rules it gates (prefix-related literals included).
    closure: Vec<Candidates>,
    /// Whether to look for escapes at all (there is some literal to hide).
    escapes: bool,
    /// Per byte after a backslash: that short escape stands for a hideable character.
    short_suspect: [bool; 256],
    keys: Option<AhoCorasick>,
    scan_off: bool,
    ungated: Candidates,
    hide: Hideable,
}

impl Prefilter {
    /// Every string must be decoded and looked at (some rule has no literal).
    pub(crate) fn scans_everything(&self) -> bool {
        self.scan_off
    }

    /// False when the raw `line` (JSON or not) certainly holds nothing to
    /// redact. When true, `hits` lists (by position) every literal and suspect
    /// escape of the line, unless [`Self::scans_everything`]. Allocates only
    /// when there is a hit.
    pub(crate) fn scan(&self, line: &[u8], hits: &mut Vec<Hit>) -> bool {
        if self.scan_off {
            return true;
        }
        let mut key = false;
        if let Some(fast) = &self.fast {
            fast.teddy.for_each_match(line, &mut |start, needle| {
                if let Some(&rules) = fast.gated.get(needle) {
                    hits.push(Hit {
                        pos: start,
                        rules: Some(rules),
                    });
                } else if needle < fast.escapes_from {
                    key = true;
                } else if line.get(start + 1) != Some(&b'u')
                    || self.hide.contains(super::json::escape_at(line, start).1)
                {
                    hits.push(Hit {
                        pos: start,
                        rules: None,
                    });
                }
            });
            if !hits.is_sorted_by_key(|h| h.pos) {
                hits.sort_unstable_by_key(|h| h.pos);
            }
        } else if let Some(scan) = &self.scan {
            // Leftmost-first reports, from `at`, the first literal starting
            // leftmost; resuming one byte after its start finds every start
            // position of every literal (see `closure` for several at one place).
            let mut at = 0;
            while let Some(m) = scan.find(Input::new(line).range(at..)) {
                let rules = self.closure.get(m.pattern().as_usize()).copied();
                hits.push(Hit {
                    pos: m.start(),
                    rules,
                });
                at = m.start() + 1;
            }
        }
        if self.escapes && self.fast.is_none() {
            let literal_hits = hits.len();
            for pos in memchr::memchr_iter(b'\\', line) {
                let suspect = match line.get(pos + 1) {
                    Some(b'u') => self.hide.contains(super::json::escape_at(line, pos).1),
                    Some(&next) => self.short_suspect[usize::from(next)],
                    None => false,
                };
                if suspect {
                    hits.push(Hit { pos, rules: None });
                }
            }
            if literal_hits > 0 && hits.len() > literal_hits {
                hits.sort_unstable_by_key(|h| h.pos);
            }
        }
        !hits.is_empty()
            || key
            || (self.fast.is_none() && self.keys.as_ref().is_some_and(|keys| keys.is_match(line)))
    }

    /// What the hits (from [`Self::scan`]) between `start` and `end` of the
    /// line say about the string there. `cursor` walks `hits` forward and
    /// must only be used with strings in line order.
    pub(crate) fn string_hits(
        &self,
        hits: &[Hit],
        cursor: &mut usize,
        start: usize,
        end: usize,
    ) -> StringHits {
        while hits.get(*cursor).is_some_and(|h| h.pos < start) {
            *cursor += 1;
        }
        let mut rules = Candidates(0);
        let mut any = false;
        for hit in hits
            .get(*cursor..)
            .unwrap_or(&[])
            .iter()
            .take_while(|h| h.pos < end)
        {
            match hit.rules {
                None => return StringHits::Decode,
                Some(r) => {
                    rules = rules.union(r);
                    any = true;
                }
            }
        }
        if any {
            StringHits::Rules(rules.union(self.ungated))
        } else {
            StringHits::Nothing
        }
    }

    /// The rules whose literals occur in `text` (decoded), plus the ungated ones.
    pub(crate) fn candidates(&self, text: &str) -> Candidates {
        let mut set = self.ungated;
        if let Some(scan) = &self.scan {
            let mut at = 0;
            while let Some(m) = scan.find(Input::new(text).range(at..)) {
                set = set.union(
                    self.closure
                        .get(m.pattern().as_usize())
                        .copied()
                        .unwrap_or(Candidates(0)),
                );
                at = m.start() + 1;
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
        let lits = extract_literals("(?:bar|baz)[a-z]+").unwrap();
        assert_eq!(lits, vec![b"bar".to_vec(), b"baz".to_vec()]);
        // No finite prefix set: falls back to the suffix.
        let lits = extract_literals("[a-z]+_secret").unwrap();
        assert_eq!(lits, vec![b"_secret".to_vec()]);
        assert_eq!(extract_literals("[a-z]+"), None);
        assert_eq!(extract_literals("a*"), None);
        assert_eq!(extract_literals("("), None);
    }

    /// The prefilter `f` describes, with the automata and with Teddy.
    fn prefilters(f: impl Fn(&mut PrefilterBuilder)) -> [Prefilter; 2] {
        let mut automata = PrefilterBuilder::default();
        f(&mut automata);
        let mut teddy = PrefilterBuilder::default();
        teddy.force_teddy();
        f(&mut teddy);
        [automata.build(), teddy.build()]
    }

    fn may_match(p: &Prefilter, line: &[u8]) -> bool {
        p.scan(line, &mut Vec::new())
    }

    #[test]
    fn escapes_that_could_hide_a_literal_are_suspect() {
        for p in prefilters(|b| b.gate(0, &["sk-", "://"])) {
            assert!(!may_match(
                &p,
                br#"{"a":"plain \u001b[0m \n \" \u2014 text"}"#
            ));
            assert!(may_match(&p, br#"{"a":"\u0073k-abc"}"#));
            assert!(may_match(&p, br#"{"a":"postgres:\/\/u:p@h"}"#));
            assert!(may_match(&p, br#"{"a":"sk-abc"}"#));
        }
    }

    #[test]
    fn json_keys_are_quoted_and_case_insensitive() {
        for p in prefilters(|b| b.json_keys(&["token"])) {
            assert!(may_match(&p, br#"{"Token":1}"#));
            assert!(may_match(&p, br#"{"TOKEN":1}"#));
            assert!(!may_match(&p, br#"{"input_tokens":1,"token_count":2}"#));
            assert!(may_match(&p, "{\"to\u{212A}en\":1}".as_bytes()));
            assert!(may_match(&p, br#"{"tok\u0065n":1}"#));
            assert!(may_match(&p, br#"{"to\u212Aen":1}"#));
        }
    }

    #[test]
    fn hits_locate_literals_and_the_rules_they_gate() {
        // Rule 0: "sk-"; rule 1: "sk-ant" (prefix-related: both run); rule 2: "AKIA".
        for p in prefilters(|b| {
            b.gate(0, &["sk-"]);
            b.gate(1, &["sk-ant"]);
            b.gate(2, &["AKIA"]);
        }) {
            let line = br#"{"a":"x sk-ant-1","b":"plain","c":"\u0041KIA","d":"AKIA"}"#;
            let mut hits = Vec::new();
            assert!(p.scan(line, &mut hits));
            let span = |key: &str| {
                let at = line
                    .windows(key.len())
                    .position(|w| w == key.as_bytes())
                    .unwrap()
                    + key.len();
                let end = at + line[at..].iter().position(|&c| c == b'"').unwrap();
                (at, end)
            };
            let mut cursor = 0;
            let (s, e) = span(r#""a":""#);
            let StringHits::Rules(rules) = p.string_hits(&hits, &mut cursor, s, e) else {
                panic!()
            };
            assert!(rules.contains(0) && rules.contains(1) && !rules.contains(2));
            let (s, e) = span(r#""b":""#);
            assert_eq!(p.string_hits(&hits, &mut cursor, s, e), StringHits::Nothing);
            let (s, e) = span(r#""c":""#);
            assert_eq!(p.string_hits(&hits, &mut cursor, s, e), StringHits::Decode);
            let (s, e) = span(r#""d":""#);
            let StringHits::Rules(rules) = p.string_hits(&hits, &mut cursor, s, e) else {
                panic!()
            };
            assert!(!rules.contains(0) && rules.contains(2));
            assert!(p.candidates("AKIA sk-").contains(0));
            assert!(!p.candidates("AKIA").contains(0));
        }
    }

    #[test]
    fn a_rule_without_literals_turns_the_scan_off() {
        for p in prefilters(|b| {
            b.gate(0, &["sk-"]);
            b.value_regex(1, "[a-z]{40}");
        }) {
            assert!(p.scans_everything());
            assert!(may_match(&p, b"anything"));
            assert!(p.candidates("nothing").contains(1));
            assert!(!p.candidates("nothing").contains(0));
            assert!(p.candidates("an sk- here").contains(0));
        }
    }
}
