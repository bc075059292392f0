//! Teddy, the SIMD multi-literal search of Hyperscan (aho-corasick has it on
//! x86_64 and aarch64 only), on WebAssembly's 128-bit vectors: the
//! prefilter's literal scan in the component, where aho-corasick walks its
//! automaton byte by byte (the largest cost of redaction there).
//!
//! Each needle gets a 3-byte fingerprint (its window of the bytes rarest in
//! transcripts) and one of 16 buckets. For each fingerprint byte, 16-entry
//! tables indexed by the byte's low and high nibble give the buckets whose
//! fingerprints could hold it there (8 per table byte, so two sets); 16 haystack positions are tested at
//! once with byte shuffles, and only the positions where a bucket survives the
//! three bytes are compared with that bucket's needles. An ASCII
//! case-insensitive needle puts both cases of its letters in the tables, and
//! a needle whose last byte is one of a set (a family of literals such as
//! `SK0` to `SKF`) puts all of the set there. Buckets are filled greedily,
//! then refined by moving single needles while that lowers the share of
//! positions let through (by the byte frequencies of transcripts).
//!
//! Off wasm32 (unit tests, the native bench) the same code runs on plain
//! arrays; the prefilter uses it there only when a test asks for it.

use crate::core::byte_frequency::PER_65536;

/// Buckets: the bits of one table byte, in two sets of tables (the
/// default literals had some 40 distinct fingerprints when 8 buckets mixed
/// them into too many false candidates; they now have about 70).
const BUCKETS: usize = 16;
/// Fingerprint length: fewer bytes let more positions through to comparison.
const FINGERPRINT: usize = 3;
/// Past this many needles the buckets fill up and comparisons dominate.
pub(crate) const MAX_NEEDLES: usize = 128;
/// Whether this build has real vector instructions for the search.
pub(crate) const HAS_SIMD: bool = cfg!(all(target_arch = "wasm32", target_feature = "simd128"));

/// What [`Teddy::new`] searches for: `bytes`, or, when `finals` is not
/// empty, `bytes` followed by any one of `finals` (a family such as `SK0` to
/// `SKF` as one needle: one comparison where there would be 22, and one
/// fingerprint).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec<'a> {
    pub bytes: &'a [u8],
    pub finals: &'a [u8],
    pub ascii_case_insensitive: bool,
}

impl<'a> Spec<'a> {
    /// Exactly `bytes`.
    pub(crate) fn exact(bytes: &'a [u8]) -> Self {
        Spec {
            bytes,
            finals: &[],
            ascii_case_insensitive: false,
        }
    }
}

#[derive(Debug, Clone)]
struct Needle {
    /// The needle, or with `finals` all of it but its last byte.
    bytes: Box<[u8]>,
    /// The bytes its last one may be (`None`: `bytes` is the whole needle).
    finals: Option<Box<[bool; 256]>>,
    /// Where the fingerprint starts.
    anchor: usize,
    ascii_case_insensitive: bool,
}

impl Needle {
    fn new(spec: &Spec<'_>) -> Needle {
        let finals = (!spec.finals.is_empty()).then(|| {
            let mut set = Box::new([false; 256]);
            for &b in spec.finals {
                set[usize::from(b)] = true;
            }
            set
        });
        let mut needle = Needle {
            bytes: spec.bytes.into(),
            finals,
            anchor: 0,
            ascii_case_insensitive: spec.ascii_case_insensitive,
        };
        needle.anchor = quietest_window(&needle);
        needle
    }

    fn len(&self) -> usize {
        self.bytes.len() + usize::from(self.finals.is_some())
    }

    /// Whether `window` (of [`Needle::len`] bytes) is this needle.
    fn matches(&self, window: &[u8]) -> bool {
        let (head, last) = window.split_at(self.bytes.len().min(window.len()));
        if let Some(finals) = &self.finals {
            let last = last.first().map(|&b| {
                if self.ascii_case_insensitive {
                    finals[usize::from(b.to_ascii_lowercase())]
                        || finals[usize::from(b.to_ascii_uppercase())]
                } else {
                    finals[usize::from(b)]
                }
            });
            if last != Some(true) {
                return false;
            }
        }
        if self.ascii_case_insensitive {
            head.eq_ignore_ascii_case(&self.bytes)
        } else {
            *head == *self.bytes
        }
    }

    /// The nibbles of the bytes it accepts at position `i` (both cases;
    /// every nibble past its end).
    fn nibbles_at(&self, i: usize) -> Nibbles {
        let of = |b: u8| {
            if self.ascii_case_insensitive {
                Nibbles::of(b.to_ascii_lowercase()).union(Nibbles::of(b.to_ascii_uppercase()))
            } else {
                Nibbles::of(b)
            }
        };
        match (self.bytes.get(i), &self.finals) {
            (Some(&b), _) => of(b),
            (None, Some(finals)) if i == self.bytes.len() => (0..=255u8)
                .filter(|&b| finals[usize::from(b)])
                .fold(Nibbles::default(), |n, b| n.union(of(b))),
            _ => Nibbles::ANY,
        }
    }

    /// The nibbles it accepts at each fingerprint position.
    fn nibbles(&self) -> [Nibbles; FINGERPRINT] {
        std::array::from_fn(|j| self.nibbles_at(self.anchor + j))
    }
}

/// The low and the high nibbles a table position accepts: it lets through
/// every byte made of one of each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Nibbles {
    lo: u16,
    hi: u16,
}

impl Nibbles {
    const ANY: Nibbles = Nibbles {
        lo: u16::MAX,
        hi: u16::MAX,
    };

    fn of(b: u8) -> Nibbles {
        Nibbles {
            lo: 1 << (b & 0xF),
            hi: 1 << (b >> 4),
        }
    }

    fn union(self, other: Nibbles) -> Nibbles {
        Nibbles {
            lo: self.lo | other.lo,
            hi: self.hi | other.hi,
        }
    }

    /// The share of transcript bytes it lets through.
    fn share(self) -> f64 {
        let mut passing = 0u32;
        for hi in (0..16).filter(|hi| self.hi & (1 << hi) != 0) {
            for lo in (0..16).filter(|lo| self.lo & (1 << lo) != 0) {
                passing += u32::from(PER_65536[hi << 4 | lo]);
            }
        }
        f64::from(passing) / 65536.0
    }
}

/// The share of positions a bucket accepting `nibbles` lets through to
/// comparison (its bytes taken as independent).
fn pass_rate(nibbles: &[Nibbles; FINGERPRINT]) -> f64 {
    nibbles.iter().map(|n| n.share()).product()
}

/// What a bucket holding `members` accepts.
fn accepted_by(wanted: &[[Nibbles; FINGERPRINT]], members: &[usize]) -> [Nibbles; FINGERPRINT] {
    members
        .iter()
        .fold([Nibbles::default(); FINGERPRINT], |acc, &n| {
            std::array::from_fn(|j| acc[j].union(wanted[n][j]))
        })
}

/// Improves the greedy assignment: moves single needles to the bucket where
/// they cost least while that lowers the total pass rate (a needle placed
/// early can sit badly once later ones have shaped the buckets). With the
/// defaults' 77 needles this lets about 30% fewer positions through to
/// comparison on the fixtures.
fn refine(
    wanted: &[[Nibbles; FINGERPRINT]],
    buckets: &mut [Vec<usize>; BUCKETS],
    accepted: &mut [[Nibbles; FINGERPRINT]; BUCKETS],
) {
    let rate = |a: &[Nibbles; FINGERPRINT], members: usize| {
        if members == 0 {
            0.0
        } else {
            pass_rate(a)
        }
    };
    // Each move lowers the total, so this ends; the bound only caps the work.
    for _ in 0..64 {
        let mut moved = false;
        for from in 0..BUCKETS {
            let mut i = 0;
            while let Some(&n) = buckets[from].get(i) {
                let rest: Vec<usize> = buckets[from].iter().copied().filter(|&m| m != n).collect();
                let without = accepted_by(wanted, &rest);
                let gain = rate(&accepted[from], rest.len() + 1) - rate(&without, rest.len());
                let with = |to: usize| -> [Nibbles; FINGERPRINT] {
                    std::array::from_fn(|j| accepted[to][j].union(wanted[n][j]))
                };
                let best = (0..BUCKETS)
                    .filter(|&to| to != from)
                    .map(|to| {
                        let cost = rate(&with(to), 1) - rate(&accepted[to], buckets[to].len());
                        (to, gain - cost)
                    })
                    .max_by(|a, b| a.1.total_cmp(&b.1));
                match best {
                    Some((to, net)) if net > 1e-12 => {
                        accepted[to] = with(to);
                        buckets[to].push(n);
                        buckets[from].remove(i);
                        accepted[from] = without;
                        moved = true;
                    }
                    _ => i += 1,
                }
            }
        }
        if !moved {
            break;
        }
    }
}

/// The compiled search. See the module docs.
#[derive(Debug, Clone)]
pub(crate) struct Teddy {
    /// For fingerprint byte `j`: bucket bits by low nibble at `2 * j`, by
    /// high nibble at `2 * j + 1`; buckets 0 to 7 in the first set, 8 to 15
    /// in the second.
    masks: [[[u8; 16]; 2 * FINGERPRINT]; 2],
    buckets: [Vec<usize>; BUCKETS],
    needles: Vec<Needle>,
}

impl Teddy {
    /// A search for `needles`; `None` when there is none, too many, or an
    /// empty one.
    pub(crate) fn new(needles: &[Spec<'_>]) -> Option<Teddy> {
        if needles.is_empty()
            || needles.len() > MAX_NEEDLES
            || needles.iter().any(|n| n.bytes.is_empty())
        {
            return None;
        }
        let needles: Vec<Needle> = needles.iter().map(Needle::new).collect();
        // Widest fingerprints first, each into the bucket whose pass rate it
        // raises least (equal fingerprints share one for free).
        let wanted: Vec<[Nibbles; FINGERPRINT]> = needles.iter().map(Needle::nibbles).collect();
        let mut order: Vec<usize> = (0..needles.len()).collect();
        // Needles shorter than the fingerprint (any byte after them) first:
        // they spoil any bucket they join, so they get the empty ones.
        let open = |n: usize| wanted[n].iter().filter(|&&w| w == Nibbles::ANY).count();
        order.sort_by(|&a, &b| {
            (open(b), pass_rate(&wanted[b]))
                .partial_cmp(&(open(a), pass_rate(&wanted[a])))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let mut accepted = [[Nibbles::default(); FINGERPRINT]; BUCKETS];
        let mut buckets: [Vec<usize>; BUCKETS] = Default::default();
        for n in order {
            let widened = |b: usize| -> [Nibbles; FINGERPRINT] {
                std::array::from_fn(|j| accepted[b][j].union(wanted[n][j]))
            };
            let cost = |b: usize| pass_rate(&widened(b)) - pass_rate(&accepted[b]);
            let bucket = (0..BUCKETS)
                .map(|b| (b, cost(b)))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map_or(0, |(b, _)| b);
            accepted[bucket] = widened(bucket);
            buckets[bucket].push(n);
        }
        refine(&wanted, &mut buckets, &mut accepted);
        // Table row `2 * j` is by low nibble, `2 * j + 1` by high nibble.
        let masks = std::array::from_fn(|set| {
            std::array::from_fn(|row| {
                std::array::from_fn(|nib| {
                    (0..8).fold(0u8, |mask, bit| {
                        let n = accepted[set * 8 + bit][row / 2];
                        let nibbles = if row % 2 == 0 { n.lo } else { n.hi };
                        mask | u8::from(nibbles & (1 << nib) != 0) << bit
                    })
                })
            })
        });
        Some(Teddy {
            masks,
            buckets,
            needles,
        })
    }

    /// How many needles it searches for.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.needles.len()
    }

    /// Calls `found(start, needle)` for every occurrence of every needle
    /// (overlapping ones too), `needle` being its index in [`Teddy::new`]'s
    /// list. Occurrences come by fingerprint position, not always by start.
    pub(crate) fn for_each_match(&self, hay: &[u8], found: &mut dyn FnMut(usize, usize)) {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        self.search::<simd128::Bytes16>(hay, found);
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        self.search::<portable::Bytes16>(hay, found);
    }

    #[inline(always)]
    fn search<V: Vector>(&self, hay: &[u8], found: &mut dyn FnMut(usize, usize)) {
        let [a, b] = self.masks.map(|set| set.map(V::from_array));
        // Buckets 0-7 and 8-15 at 16 positions from `bytes` (18 bytes read).
        let block = |bytes: &[u8]| -> (V, V) {
            let (l0, h0) = V::load(bytes).nibbles();
            let (l1, h1) = V::load(&bytes[1..]).nibbles();
            let (l2, h2) = V::load(&bytes[2..]).nibbles();
            let set = |t: &[V; 2 * FINGERPRINT]| {
                t[0].lookup(l0)
                    .and(t[1].lookup(h0))
                    .and(t[2].lookup(l1))
                    .and(t[3].lookup(h1))
                    .and(t[4].lookup(l2))
                    .and(t[5].lookup(h2))
            };
            (set(&a), set(&b))
        };
        let mut at = 0;
        while at + 16 + FINGERPRINT - 1 <= hay.len() {
            let (low, high) = block(&hay[at..]);
            if !low.or(high).is_zero() {
                self.verify(hay, at, low.to_array(), high.to_array(), 16, found);
            }
            at += 16;
        }
        // The last positions, zero-padded: a needle's real bytes lie inside
        // the haystack, and padding only meets the "any byte" of short ones.
        let rest = &hay[at..];
        if !rest.is_empty() {
            let mut padded = [0u8; 32 + FINGERPRINT - 1];
            padded[..rest.len()].copy_from_slice(rest);
            for base in (0..rest.len()).step_by(16) {
                let (low, high) = block(&padded[base..]);
                if !low.or(high).is_zero() {
                    let limit = rest.len() - base;
                    self.verify(
                        hay,
                        at + base,
                        low.to_array(),
                        high.to_array(),
                        limit,
                        found,
                    );
                }
            }
        }
    }

    /// Compares the needles of the buckets left in the lanes (position
    /// `at + i` for lane `i`, the first `limit` lanes only; buckets 0-7 in
    /// `low`, 8-15 in `high`).
    #[cold]
    fn verify(
        &self,
        hay: &[u8],
        at: usize,
        low: [u8; 16],
        high: [u8; 16],
        limit: usize,
        found: &mut dyn FnMut(usize, usize),
    ) {
        // Only the lanes where some bucket survived (a few of the 16, most
        // often one): their bytes are the non-zero ones of the two sets.
        let mut lanes = u128::from_le_bytes(low) | u128::from_le_bytes(high);
        if limit < 16 {
            lanes &= (1u128 << (8 * limit)) - 1;
        }
        while lanes != 0 {
            let lane = (lanes.trailing_zeros() / 8) as usize;
            lanes &= !(0xFFu128 << (8 * lane));
            let mut bits = u16::from(low[lane]) | u16::from(high[lane]) << 8;
            while bits != 0 {
                let bucket = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                for &n in &self.buckets[bucket] {
                    let needle = &self.needles[n];
                    let Some(start) = (at + lane).checked_sub(needle.anchor) else {
                        continue;
                    };
                    let window = hay.get(start..start + needle.len());
                    if window.is_some_and(|w| needle.matches(w)) {
                        found(start, n);
                    }
                }
            }
        }
    }
}

/// The start of the 3-byte window of `needle` rarest in transcripts (the
/// first on ties; 0 when the needle is no longer).
fn quietest_window(needle: &Needle) -> usize {
    if needle.len() <= FINGERPRINT {
        return 0;
    }
    (0..=needle.len() - FINGERPRINT)
        .map(|anchor| {
            let rate = pass_rate(&std::array::from_fn(|j| needle.nibbles_at(anchor + j)));
            (anchor, rate)
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(0, |(anchor, _)| anchor)
}

/// The vector operations Teddy needs.
trait Vector: Copy {
    /// The first 16 bytes of `bytes` (which holds at least 16).
    fn load(bytes: &[u8]) -> Self;
    fn from_array(bytes: [u8; 16]) -> Self;
    /// Per byte: its low nibble, and its high nibble.
    fn nibbles(self) -> (Self, Self);
    /// Per byte `i` of `indices` (each below 16): `self[indices[i]]`.
    fn lookup(self, indices: Self) -> Self;
    fn and(self, other: Self) -> Self;
    fn or(self, other: Self) -> Self;
    fn is_zero(self) -> bool;
    fn to_array(self) -> [u8; 16];
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod portable {
    /// 16 bytes in a plain array: the reference the SIMD version follows.
    #[derive(Clone, Copy)]
    pub(super) struct Bytes16([u8; 16]);

    impl super::Vector for Bytes16 {
        fn load(bytes: &[u8]) -> Self {
            Bytes16(std::array::from_fn(|i| bytes[i]))
        }
        fn from_array(bytes: [u8; 16]) -> Self {
            Bytes16(bytes)
        }
        fn nibbles(self) -> (Self, Self) {
            (
                Bytes16(self.0.map(|x| x & 0xF)),
                Bytes16(self.0.map(|x| x >> 4)),
            )
        }
        fn lookup(self, indices: Self) -> Self {
            Bytes16(indices.0.map(|i| self.0[usize::from(i)]))
        }
        fn and(self, other: Self) -> Self {
            Bytes16(std::array::from_fn(|i| self.0[i] & other.0[i]))
        }
        fn or(self, other: Self) -> Self {
            Bytes16(std::array::from_fn(|i| self.0[i] | other.0[i]))
        }
        fn is_zero(self) -> bool {
            self.0 == [0; 16]
        }
        fn to_array(self) -> [u8; 16] {
            self.0
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128 {
    use core::arch::wasm32::{
        i8x16_swizzle, u8x16_shr, u8x16_splat, v128, v128_and, v128_any_true, v128_load, v128_or,
        v128_store,
    };

    #[derive(Clone, Copy)]
    pub(super) struct Bytes16(v128);

    impl super::Vector for Bytes16 {
        #[inline(always)]
        fn load(bytes: &[u8]) -> Self {
            let bytes: &[u8; 16] = bytes[..16].try_into().expect("16 bytes");
            // SAFETY: `bytes` is 16 readable bytes; `v128.load` needs no alignment.
            Bytes16(unsafe { v128_load(bytes.as_ptr().cast()) })
        }
        #[inline(always)]
        fn from_array(bytes: [u8; 16]) -> Self {
            Self::load(&bytes)
        }
        #[inline(always)]
        fn nibbles(self) -> (Self, Self) {
            (
                Bytes16(v128_and(self.0, u8x16_splat(0x0F))),
                Bytes16(u8x16_shr(self.0, 4)),
            )
        }
        #[inline(always)]
        fn lookup(self, indices: Self) -> Self {
            // Indices stay below 16, where `swizzle` and x86's `pshufb` agree.
            Bytes16(i8x16_swizzle(self.0, indices.0))
        }
        #[inline(always)]
        fn and(self, other: Self) -> Self {
            Bytes16(v128_and(self.0, other.0))
        }
        #[inline(always)]
        fn or(self, other: Self) -> Self {
            Bytes16(v128_or(self.0, other.0))
        }
        #[inline(always)]
        fn is_zero(self) -> bool {
            !v128_any_true(self.0)
        }
        #[inline(always)]
        fn to_array(self) -> [u8; 16] {
            let mut out = [0u8; 16];
            // SAFETY: `out` is 16 writable bytes; `v128.store` needs no alignment.
            unsafe { v128_store(out.as_mut_ptr().cast(), self.0) };
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A needle as the tests write it: bytes, final bytes, case-insensitive.
    type Written<'a> = (&'a [u8], &'a [u8], bool);

    fn specs<'a>(needles: &[Written<'a>]) -> Vec<Spec<'a>> {
        needles
            .iter()
            .map(|&(bytes, finals, ci)| Spec {
                bytes,
                finals,
                ascii_case_insensitive: ci,
            })
            .collect()
    }

    /// Every (start, needle) the naive way, sorted.
    fn naive(needles: &[Written<'_>], hay: &[u8]) -> Vec<(usize, usize)> {
        let eq = |a: &[u8], b: &[u8], ci: bool| {
            if ci {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        let mut out = Vec::new();
        for start in 0..hay.len() {
            for (n, &(bytes, finals, ci)) in needles.iter().enumerate() {
                let Some(w) = hay.get(start..start + bytes.len()) else {
                    continue;
                };
                let last = hay.get(start + bytes.len());
                let tail = finals.is_empty()
                    || last.is_some_and(|&l| finals.iter().any(|&f| eq(&[l], &[f], ci)));
                if eq(w, bytes, ci) && tail {
                    out.push((start, n));
                }
            }
        }
        out
    }

    fn teddy(needles: &[Written<'_>], hay: &[u8]) -> Vec<(usize, usize)> {
        let t = Teddy::new(&specs(needles)).expect("a search");
        let mut out = Vec::new();
        t.for_each_match(hay, &mut |s, n| out.push((s, n)));
        out.sort_unstable();
        out
    }

    #[test]
    fn finds_every_occurrence_of_short_long_and_caseless_needles() {
        let needles: &[Written<'_>] = &[
            (b"sk-", b"", false),
            (b"://", b"", false),
            (b"\"password\"", b"", true),
            (b"x", b"", false),
            ("\u{17F}".as_bytes(), b"", false),
            (b"PRIVATE KEY-----", b"", false),
            (b"sk-ant", b"", false),
            // A family: "SK" and a hex digit.
            (b"SK", b"0123456789abcdefABCDEF", false),
        ];
        let hay = "{\"PassWord\":\"sk-ant-x\",\"u\":\"http://h\",\"\u{17F}\":1} TASK SKa SKz SK ends in x";
        let found = teddy(needles, hay.as_bytes());
        assert_eq!(found, naive(needles, hay.as_bytes()));
        assert!(found.contains(&(1, 2)), "{found:?}");
        assert!(found.iter().any(|&(_, n)| n == 6));
        // The family matches "SKa" only.
        let at = hay.find("SKa").unwrap();
        assert_eq!(
            found.iter().filter(|&&(_, n)| n == 7).collect::<Vec<_>>(),
            [&(at, 7)]
        );
        // Every tail length, every position of the needle near the end.
        for len in 0..40 {
            for at in 0..len {
                for needle in [&b"sk-"[..], b"SK9"] {
                    let mut hay = vec![b'.'; len];
                    if at + needle.len() <= len {
                        hay[at..at + needle.len()].copy_from_slice(needle);
                    }
                    hay[len - 1] = b'x';
                    assert_eq!(teddy(needles, &hay), naive(needles, &hay), "{len} {at}");
                }
            }
        }
    }

    #[test]
    fn refuses_what_it_cannot_search() {
        assert!(Teddy::new(&[]).is_none());
        assert!(Teddy::new(&[Spec::exact(b"")]).is_none());
        let many: Vec<Vec<u8>> = (0..=MAX_NEEDLES)
            .map(|i| format!("n{i}").into_bytes())
            .collect();
        let many: Vec<Spec<'_>> = many.iter().map(|n| Spec::exact(n)).collect();
        assert!(Teddy::new(&many).is_none());
        assert!(Teddy::new(&many[..MAX_NEEDLES]).is_some());
    }

    #[test]
    fn fingerprints_avoid_frequent_bytes() {
        let window = |bytes: &[u8], finals: &[u8], ci: bool| {
            quietest_window(&Needle::new(&Spec {
                bytes,
                finals,
                ascii_case_insensitive: ci,
            }))
        };
        // Not the quotes, which are everywhere in JSON.
        let k = window(b"\"password\"", b"", true);
        assert!((1..=6).contains(&k), "{k}");
        // Not the "---" of Markdown rules.
        let pem = b"PRIVATE KEY-----";
        let k = window(pem, b"", false);
        assert!(!pem[k..k + FINGERPRINT].contains(&b'-'), "{k}");
        assert_eq!(window(b"sk-", b"", false), 0);
        assert_eq!(window(b"ab", b"", false), 0);
        // A family's final byte counts as all the bytes it may be: "-us1"
        // alone is fingerprinted on "us1", but "-us" and any digit on
        // "-us", as "us<digit>" would let ten bytes through.
        assert_eq!(window(b"-us1", b"", false), 1);
        assert_eq!(window(b"-us", b"0123456789", false), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn agrees_with_the_naive_search(
            needles in proptest::collection::vec(("[a-cA-C\"_:é-]{1,6}", "[a-cA-C_-]{0,3}", any::<bool>()), 1..20),
            hay in "[a-cA-C\"_:é -]{0,200}",
        ) {
            let needles: Vec<Written<'_>> =
                needles.iter().map(|(n, f, ci)| (n.as_bytes(), f.as_bytes(), *ci)).collect();
            prop_assert_eq!(teddy(&needles, hay.as_bytes()), naive(&needles, hay.as_bytes()));
        }
    }
}
