//! How often each byte occurs in Claude Code transcripts (counted over the
//! shipped fixture sessions): which bytes of a needle are rare enough to
//! search for. Generic tables are made for prose, where `"` is rare; in
//! JSON lines it is one byte in 18.

use memchr::arch::all::packedpair::HeuristicFrequencyRank;

/// Per byte: how many of 65,536 transcript bytes it is (at least 1).
#[rustfmt::skip]
pub(crate) const PER_65536: [u16; 256] = [
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 39, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    7403, 13, 3739, 59, 22, 70, 36, 27, 211, 212, 63, 33, 1153, 1179, 612, 491,
    809, 819, 711, 483, 535, 395, 454, 374, 473, 421, 1450, 87, 81, 215, 178, 13,
    23, 124, 99, 133, 139, 207, 61, 96, 55, 166, 37, 36, 126, 75, 108, 71,
    133, 35, 158, 238, 301, 292, 54, 50, 36, 48, 76, 152, 1541, 89, 16, 769,
    105, 2205, 603, 1402, 1550, 4546, 689, 735, 772, 2188, 140, 382, 1383, 1017, 3091, 2645,
    1345, 132, 2157, 3021, 3197, 1126, 300, 334, 335, 376, 49, 277, 51, 277, 49, 1,
    35, 1, 29, 1, 1, 1, 136, 1, 1, 1, 1, 2, 1, 1, 1, 4,
    1, 1, 135, 2, 80, 1, 1, 6, 1, 1, 1, 1, 2, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 3, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 216, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
];

/// [`PER_65536`] as memchr's frequency rank (0 rarest, 255 the space), so
/// that `memmem` finders look for the needle bytes rarest in transcripts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TranscriptRank;

impl HeuristicFrequencyRank for TranscriptRank {
    fn rank(&self, byte: u8) -> u8 {
        let most = u32::from(PER_65536[usize::from(b' ')]);
        let rank = u32::from(PER_65536[usize::from(byte)]) * 255 / most;
        u8::try_from(rank).unwrap_or(u8::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_rank_frequent_and_capitals_rare() {
        let r = TranscriptRank;
        assert_eq!(r.rank(b' '), 255);
        assert!(r.rank(b'"') > 100);
        assert!(r.rank(b'I') * 10 < r.rank(b'"'));
        assert!((0..=255u8).all(|b| PER_65536[usize::from(b)] >= 1));
    }
}
