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
//! before its literals are looked for. Literals are found by up to three
//! aho-corasick automata, by literal length (leftmost-first, so each runs its
//! SIMD searcher; see `native_scans`), or in the component, where
//! aho-corasick has no SIMD searcher, by Teddy (`teddy.rs`) together with the
//! keys and the escapes; elsewhere escapes by memchr. Literals that differ
//! only in their last byte are looked for as one family (see `stems`), and
//! a hit is turned into the literals there by comparing them, so both scans
//! report exactly where literals start. JSON.stringify only escapes `"`, `\` and
//! control characters, none of which occur in the default literals, so the
//! escapes Claude Code writes (`\n`, `\"`, `\u001b`) do not defeat the scan.
//! Field rules are found by their key: the default sensitive-key rule by its
//! quoted names (ASCII case-insensitive, plus `ſ` and `K`, which Unicode case
//! folding maps to `s` and `k`), custom field rules by their extracted literals.
//! A rule without usable literals turns the line scan off (every line takes the
//! slow path, every string is decoded) and is always run.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Input, MatchKind, PatternID};
use regex_syntax::hir::literal::{ExtractKind, Extractor};

use super::teddy::{self, Spec, Teddy};

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
        let gated: Vec<Candidates> = roles
            .iter()
            .map(|roles| {
                let mut set = Candidates(0);
                for role in roles {
                    if let Lit::Gate(rule) = role {
                        set.insert(*rule);
                    }
                }
                set
            })
            .collect();
        // Both scans look for stems (see [`stems`]): a family of literals that
        // differ only in their last byte, such as "SK0" to "SKF", is one stem.
        let stems = stems(&patterns);
        // The literals that can start where a stem's pattern does: those
        // prefix-related to it, each compared at the hit; only those whose
        // own stem is in the same automaton, which reports them once.
        let mut automaton_of = vec![0; patterns.len()];
        for stem in &stems {
            for &j in &stem.members {
                automaton_of[j] = length_class(&stem.bytes);
            }
        }
        let at_stem: Vec<Vec<usize>> = stems
            .iter()
            .map(|stem| {
                let s = &stem.bytes;
                (0..patterns.len())
                    .filter(|&j| s.starts_with(&patterns[j]) || patterns[j].starts_with(s))
                    .filter(|&j| automaton_of[j] == length_class(s))
                    .collect()
            })
            .collect();
        let scans = native_scans(&stems);
        let quoted: Vec<String> = self.keys.iter().map(|k| format!("\"{k}\"")).collect();
        let keys = build_ac(
            AhoCorasickBuilder::new().ascii_case_insensitive(true),
            &quoted,
        );
        // Without an automaton (these lists are never too big for one) nothing is skipped.
        let scan_off = self.scan_off
            || (scans.is_none() && !patterns.is_empty())
            || (keys.is_none() && !quoted.is_empty());
        let scans = scans.unwrap_or_default();
        let mut ungated = Candidates(0);
        for &rule in &self.ungated {
            ungated.insert(rule);
        }
        let escapes = !scans.is_empty() || keys.is_some();
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
                let keys = quoted.iter().map(|k| Spec {
                    bytes: k.as_bytes(),
                    finals: &[],
                    ascii_case_insensitive: true,
                });
                let needles: Vec<Spec<'_>> = stems
                    .iter()
                    .map(|s| Spec {
                        bytes: &s.bytes,
                        finals: &s.finals,
                        ascii_case_insensitive: false,
                    })
                    .chain(keys)
                    .chain(escape_needles.iter().map(|e| Spec::exact(e)))
                    .collect();
                Teddy::new(&needles)
            })
            .flatten()
            .map(|teddy| FastScan {
                teddy,
                escapes_from: stems.len() + quoted.len(),
            });
        Prefilter {
            scans,
            fast,
            stems,
            literals: patterns,
            gated,
            at_stem,
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

/// Families of at least this many literals that differ only in their last
/// byte are looked for by their common stem.
const STEM_FAMILY: usize = 4;

/// What the scans look for: a literal, or a family of literals.
#[derive(Debug, Clone)]
struct Stem {
    /// The literal, or the family's bytes but the last.
    bytes: Vec<u8>,
    /// The family's last bytes (empty for a single literal).
    finals: Vec<u8>,
    /// The literals it stands for (indices into the distinct literals).
    members: Vec<usize>,
}

/// The distinct `literals` as the scans look for them, in first-seen order:
/// each alone, except that [`STEM_FAMILY`] or more literals of 3 or more
/// bytes that agree but for their last byte make one family (the Twilio
/// rule's "SK" and a hex digit, the MailChimp rule's "-us" and a digit).
/// Teddy then compares one needle where it compared 22 and fingerprints the
/// family once; aho-corasick looks for the shared bytes. A hit of a stem is
/// turned into the literals there by comparing them, so either scan reports
/// exactly the places where a literal starts.
fn stems(literals: &[Vec<u8>]) -> Vec<Stem> {
    let mut out: Vec<Stem> = Vec::new();
    for (j, lit) in literals.iter().enumerate() {
        let family = lit
            .split_last()
            .filter(|_| lit.len() >= 3)
            .filter(|(_, head)| {
                let kin = literals
                    .iter()
                    .filter(|l| l.len() == lit.len() && l.starts_with(head));
                kin.count() >= STEM_FAMILY
            });
        match family {
            Some((&last, head)) => {
                let known = out
                    .iter_mut()
                    .find(|s| !s.finals.is_empty() && s.bytes == head);
                match known {
                    Some(stem) => {
                        stem.finals.push(last);
                        stem.members.push(j);
                    }
                    None => out.push(Stem {
                        bytes: head.to_vec(),
                        finals: vec![last],
                        members: vec![j],
                    }),
                }
            }
            None => out.push(Stem {
                bytes: lit.clone(),
                finals: Vec::new(),
                members: vec![j],
            }),
        }
    }
    out
}

/// Which native automaton looks for `bytes` (see [`native_scans`]).
fn length_class(bytes: &[u8]) -> usize {
    bytes.len().clamp(2, 4)
}

/// One automaton of the native line scan.
#[derive(Debug, Clone)]
struct Scan {
    automaton: AhoCorasick,
    /// Per automaton pattern: a stem with those bytes.
    stems: Vec<usize>,
}

/// The native line scan: the stems' bytes in up to three leftmost-first
/// automata (so that aho-corasick runs its SIMD Teddy searcher), by length:
/// under 3 bytes, 3 bytes, 4 or more. aho-corasick's Teddy fingerprints every
/// pattern by its first min(4, shortest pattern) bytes, so one 2-byte literal
/// (the `ſ` trigger, the Twilio stem `SK`) would make every fingerprint 2
/// bytes and let through 6 times more positions to compare (the defaults on
/// the fixtures: one automaton 390 MiB/s, the three 3,300 MiB/s together).
/// Each automaton also stays under aho-corasick's limit of 64 patterns for
/// Teddy. `None` when some automaton cannot be built.
fn native_scans(stems: &[Stem]) -> Option<Vec<Scan>> {
    let mut scans = Vec::new();
    for class in 2..=4 {
        let mut patterns: Vec<&[u8]> = Vec::new();
        let mut ids = Vec::new();
        for (k, stem) in stems.iter().enumerate() {
            if length_class(&stem.bytes) == class && !patterns.contains(&stem.bytes.as_slice()) {
                patterns.push(&stem.bytes);
                ids.push(k);
            }
        }
        if patterns.is_empty() {
            continue;
        }
        // Leftmost-first lets the automaton use its fastest (SIMD) searcher.
        let automaton = build_ac(
            AhoCorasickBuilder::new().match_kind(MatchKind::LeftmostFirst),
            &patterns,
        )?;
        scans.push(Scan {
            automaton,
            stems: ids,
        });
    }
    Some(scans)
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

/// Teddy over the distinct literals (needle `i` is literal `i`), then the
/// quoted keys, then the suspect escapes (`\u`, and `\` before each
/// short-escape letter that stands for a hideable character).
#[derive(Debug, Clone)]
struct FastScan {
    teddy: Teddy,
    /// Index of the first escape needle.
    escapes_from: usize,
}

/// The compiled prefilter. See the module docs.
#[derive(Debug, Clone)]
pub(crate) struct Prefilter {
    /// The stems' bytes, leftmost-first, by length (see [`native_scans`]).
    scans: Vec<Scan>,
    /// Stems, keys and escapes in one SIMD search, used by [`Prefilter::scan`]
    /// instead of `scans`, `keys` and memchr where it is built.
    fast: Option<FastScan>,
    stems: Vec<Stem>,
    /// The distinct literals, and per literal the rules it gates.
    literals: Vec<Vec<u8>>,
    gated: Vec<Candidates>,
    /// Per stem: the literals that may start where its bytes do.
    at_stem: Vec<Vec<usize>>,
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
                // Needle `i` below the keys is stem `i`, found with its last
                // byte when it is a family: its members decide the rules.
                if let Some(stem) = self.stems.get(needle) {
                    let rules = self.members_at(stem, line, start);
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
        } else {
            for scan in &self.scans {
                // Leftmost-first reports, from `at`, the first pattern starting
                // leftmost; resuming one byte after its start finds every start
                // position of every pattern (`at_stem` gives every literal
                // that can start there).
                let mut at = 0;
                while let Some(m) = scan.automaton.find(Input::new(line).range(at..)) {
                    if let Some(rules) = self.literals_at(scan, line, m.start(), m.pattern()) {
                        hits.push(Hit {
                            pos: m.start(),
                            rules: Some(rules),
                        });
                    }
                    at = m.start() + 1;
                }
            }
            if self.scans.len() > 1 && !hits.is_sorted_by_key(|h| h.pos) {
                hits.sort_by_key(|h| h.pos);
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
        for scan in &self.scans {
            let mut at = 0;
            while let Some(m) = scan.automaton.find(Input::new(text).range(at..)) {
                let found = self.literals_at(scan, text.as_bytes(), m.start(), m.pattern());
                set = set.union(found.unwrap_or(Candidates(0)));
                at = m.start() + 1;
            }
        }
        set
    }

    /// The rules gated by the literals that start at `pos` of `hay`, where
    /// `scan` found its pattern `pattern`; `None` when no literal does (a
    /// family's bytes without one of its last bytes).
    fn literals_at(
        &self,
        scan: &Scan,
        hay: &[u8],
        pos: usize,
        pattern: PatternID,
    ) -> Option<Candidates> {
        let rest = hay.get(pos..).unwrap_or(&[]);
        let stem = scan.stems.get(pattern.as_usize())?;
        let mut found = None;
        for &j in self.at_stem.get(*stem).map_or(&[][..], Vec::as_slice) {
            if self.literals.get(j).is_some_and(|l| rest.starts_with(l)) {
                let rules = self.gated.get(j).copied().unwrap_or(Candidates(0));
                found = Some(found.unwrap_or(Candidates(0)).union(rules));
            }
        }
        found
    }

    /// The rules gated by the members of `stem` at `pos` of `hay`, where
    /// Teddy found it (so some member is there).
    fn members_at(&self, stem: &Stem, hay: &[u8], pos: usize) -> Candidates {
        let rest = hay.get(pos..).unwrap_or(&[]);
        let mut rules = Candidates(0);
        for &j in &stem.members {
            if self.literals.get(j).is_some_and(|l| rest.starts_with(l)) {
                rules = rules.union(self.gated.get(j).copied().unwrap_or(Candidates(0)));
            }
        }
        rules
    }

    /// Tests: the pattern count of each native automaton, and how many
    /// needles Teddy searches for (`None` when it is not built).
    #[cfg(test)]
    pub(crate) fn sizes(&self) -> (Vec<usize>, Option<usize>) {
        let scans = self.scans.iter().map(|s| s.stems.len()).collect();
        (scans, self.fast.as_ref().map(|f| f.teddy.len()))
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
    fn families_and_short_literals_find_exactly_their_literals() {
        // Rule 0: a family ("SK" and a hex digit); rule 1: a literal sharing
        // its first bytes ("SKY_"); rule 2: a 2-byte literal, which natively
        // gets an automaton of its own; rule 3: a family of 4-byte literals.
        let hex: Vec<String> = "0123456789abcdef"
            .chars()
            .map(|c| format!("SK{c}"))
            .collect();
        let hex: Vec<&str> = hex.iter().map(String::as_str).collect();
        let us: Vec<String> = (0..10).map(|d| format!("-us{d}")).collect();
        let us: Vec<&str> = us.iter().map(String::as_str).collect();
        for p in prefilters(|b| {
            b.gate(0, &hex);
            b.gate(1, &["SKY_"]);
            b.gate(2, &["@@"]);
            b.gate(3, &us);
        }) {
            let hits_of = |line: &str| {
                let mut hits = Vec::new();
                let any = p.scan(line.as_bytes(), &mut hits);
                assert_eq!(any, !hits.is_empty(), "{line}");
                hits.into_iter()
                    .map(|h| {
                        let rules = h.rules.unwrap();
                        (
                            h.pos,
                            (0..4).filter(|&r| rules.contains(r)).collect::<Vec<_>>(),
                        )
                    })
                    .collect::<Vec<_>>()
            };
            // Stems without a member, and near misses, are no hit at all.
            for line in ["TASK DISK SKz SK", "--user -us -usa", "@ x", "SKY-"] {
                assert_eq!(hits_of(line), [], "{line}");
            }
            assert_eq!(hits_of("a SKd"), [(2, vec![0])]);
            assert_eq!(hits_of("SKY_ and SKF"), [(0, vec![1])]);
            assert_eq!(
                hits_of("SKa@@-us7"),
                [(0, vec![0]), (3, vec![2]), (5, vec![3])]
            );
            assert!(p.candidates("x-us0").contains(3));
            assert!(!p.candidates("x-us0").contains(0));
            assert!(!p.candidates("SKY SKz").contains(0) && !p.candidates("SKY SKz").contains(1));
            assert!(p.candidates("SKY_").contains(1));
        }
    }

    #[test]
    fn stems_group_families_of_last_bytes_only() {
        let lits: Vec<Vec<u8>> = ["ab1", "ab2", "ab3", "ab4", "xy1", "xy2", "abc5", "q"]
            .iter()
            .map(|l| l.as_bytes().to_vec())
            .collect();
        let stems = stems(&lits);
        let shown: Vec<(String, String, Vec<usize>)> = stems
            .iter()
            .map(|s| {
                let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                (text(&s.bytes), text(&s.finals), s.members.clone())
            })
            .collect();
        let expect = |b: &str, f: &str, m: &[usize]| (b.to_owned(), f.to_owned(), m.to_vec());
        assert_eq!(
            shown,
            [
                // Four that differ in their last byte: one family.
                expect("ab", "1234", &[0, 1, 2, 3]),
                // Two are too few to be worth a family.
                expect("xy1", "", &[4]),
                expect("xy2", "", &[5]),
                expect("abc5", "", &[6]),
                expect("q", "", &[7]),
            ]
        );
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
