//! The API key: what the engine accepts as one, and [`KeyGuard`], the one
//! place that keeps keys out of every text a user can see (errors,
//! warnings, progress, `--json` reports, the WIT errors a host shows).
//!
//! The server mints `cfb_` + 40 characters of base64url, so a real key holds
//! letters, digits, `-` and `_`; confab accepts any key that starts with
//! `cfb_`, is at least 20 characters long and holds no whitespace. The guard
//! hides the configured keys wherever they land (a key put where the URL or
//! the transcript path goes, a server or proxy echoing the `Authorization`
//! header in an error body), and any other `cfb_` key too.

use super::error::SyncError;
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

/// Every Confab key starts with this.
pub const API_KEY_PREFIX: &str = "cfb_";
/// confab's own lower bound on a key's length (prefix included).
pub const API_KEY_MIN_CHARS: usize = 20;
/// What a hidden key becomes in a message.
pub const HIDDEN_KEY: &str = "[API key]";

/// A run of this many characters of a configured key, anywhere in a text,
/// hides the whole run: a key cut short (an error body capped at 256 bytes)
/// or stripped of its prefix must not print either.
const WINDOW: usize = 8;

/// Accepts what confab accepts: prefix `cfb_`, at least 20 characters, no
/// whitespace or control characters. The message never quotes the key.
pub fn validate_api_key(key: &str) -> Result<(), SyncError> {
    let problem = if !key.starts_with(API_KEY_PREFIX) {
        Some("it must start with `cfb_`")
    } else if key.chars().count() < API_KEY_MIN_CHARS {
        Some("it is shorter than 20 characters")
    } else if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("it holds spaces or control characters")
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(why) => Err(SyncError::config(format!(
            "the API key does not look like a Confab key: {why}"
        ))),
    }
}

/// Characters a minted key is made of (base64url).
fn is_key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Hides API keys in text meant for a user. Cheap to clone; its `Debug`
/// shows how many keys it knows, never the keys.
#[derive(Clone, Default)]
pub struct KeyGuard {
    /// The configured keys, longest first (one key may contain another).
    keys: Vec<String>,
    /// Every [`WINDOW`]-byte run of key characters of the configured keys.
    windows: HashSet<[u8; WINDOW]>,
}

impl fmt::Debug for KeyGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyGuard({} keys)", self.keys.len())
    }
}

impl KeyGuard {
    /// A guard that hides `cfb_` keys only, until keys are added.
    pub fn new() -> Self {
        Self::default()
    }

    /// A guard for one configured key.
    pub fn for_key(key: &str) -> Self {
        let mut guard = Self::new();
        guard.add(key);
        guard
    }

    /// Also hide `key` (ignored when shorter than 8 bytes: replacing such a
    /// string everywhere would garble messages and hide nothing secret).
    pub fn add(&mut self, key: &str) {
        let key = key.trim();
        if key.len() < WINDOW || self.keys.iter().any(|k| k == key) {
            return;
        }
        for run in key.as_bytes().split(|&b| !is_key_char(b)) {
            for w in run.windows(WINDOW) {
                self.windows
                    .insert(w.try_into().expect("window of WINDOW bytes"));
            }
        }
        self.keys.push(key.to_owned());
        self.keys.sort_by_key(|k| std::cmp::Reverse(k.len()));
    }

    /// `text` with every configured key, every run of key characters that
    /// shares 8 characters with one, and every `cfb_...` key replaced by
    /// `[API key]`; borrowed when there was nothing to hide.
    pub fn hide<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut text = Cow::Borrowed(text);
        for key in &self.keys {
            if text.contains(key.as_str()) {
                text = Cow::Owned(text.replace(key.as_str(), HIDDEN_KEY));
            }
        }
        match self.hide_runs(&text) {
            Some(out) => Cow::Owned(out),
            None => text,
        }
    }

    /// Owned convenience for messages that are `String`s already.
    pub fn hide_string(&self, text: String) -> String {
        match self.hide(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(out) => out,
        }
    }

    /// Hides the runs of key characters that hold `cfb_` (from there on) or
    /// a window of a configured key (the whole run); `None` if there is none.
    fn hide_runs(&self, text: &str) -> Option<String> {
        let bytes = text.as_bytes();
        let mut out: Option<String> = None;
        let mut copied = 0;
        let mut i = 0;
        while i < bytes.len() {
            if !is_key_char(bytes[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && is_key_char(bytes[i]) {
                i += 1;
            }
            let run = &bytes[start..i];
            let hide_from = if run.windows(WINDOW).any(|w| self.windows.contains(w)) {
                Some(start)
            } else {
                find(run, API_KEY_PREFIX.as_bytes())
                    .filter(|&at| at + API_KEY_PREFIX.len() < run.len())
                    .map(|at| start + at)
            };
            if let Some(from) = hide_from {
                let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
                // Runs are ASCII and start after a non-key character: both
                // ends are character boundaries.
                out.push_str(&text[copied..from]);
                out.push_str(HIDDEN_KEY);
                copied = i;
            }
        }
        let mut out = out?;
        out.push_str(&text[copied..]);
        Some(out)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key as the server mints them, with `-` and `_` in it.
    const MINTED: &str = "cfb_Zx3-q_Rk9LmN0pQr-StUv_WxYz0123456789Abcd";

    #[test]
    fn keys_are_accepted_as_confab_accepts_them() {
        assert_eq!(MINTED.len(), 44);
        assert!(validate_api_key(MINTED).is_ok());
        assert!(validate_api_key("cfb_0123456789abcdef").is_ok(), "20 chars");
        assert!(validate_api_key("cfb_0123456789abcde").is_err(), "19 chars");
        assert!(validate_api_key(&format!("cfx_{}", &MINTED[4..])).is_err());
        assert!(validate_api_key("cfb_0123456789 abcdefgh").is_err());
        assert!(validate_api_key("cfb_0123456789\tabcdefgh").is_err());
        assert!(validate_api_key("cfb_0123456789\u{7}abcdefgh").is_err());
        let err = validate_api_key(&format!("cfx_{}", &MINTED[4..])).unwrap_err();
        assert!(!err.message.contains(&MINTED[4..12]), "{}", err.message);
    }

    #[test]
    fn the_configured_key_is_hidden_wherever_it_lands() {
        let guard = KeyGuard::for_key(MINTED);
        for text in [
            format!("the backend URL `{MINTED}` is not an http(s) URL"),
            format!("cannot open the transcript /tmp/{MINTED}.jsonl: no such file"),
            format!("/api/v1/sync/init: HTTP 500: bad header Authorization: Bearer {MINTED}"),
        ] {
            let out = guard.hide(&text);
            assert!(!out.contains(&MINTED[4..12]), "{out}");
            assert!(out.contains(HIDDEN_KEY), "{out}");
        }
    }

    #[test]
    fn a_key_cut_short_or_without_its_prefix_is_hidden() {
        let guard = KeyGuard::for_key(MINTED);
        let cut = &MINTED[..20];
        let bare = &MINTED[10..];
        for text in [format!("echo: {cut}"), format!("token={bare}!")] {
            let out = guard.hide(&text);
            for w in MINTED.as_bytes().windows(WINDOW) {
                assert!(!out.as_bytes().windows(WINDOW).any(|o| o == w), "{out}");
            }
        }
    }

    #[test]
    fn other_confab_keys_are_hidden_to_their_last_character() {
        let guard = KeyGuard::new();
        let other = "cfb_Ab-_cd0123456789-_xyzXYZ0123456789abcd";
        let out = guard.hide_string(format!("401 for {other}, try again"));
        assert_eq!(out, format!("401 for {HIDDEN_KEY}, try again"));
        // Nothing shaped like a key: the same text, borrowed.
        let plain = "the cfb_ prefix; cfb_ alone; 42 files";
        assert!(matches!(guard.hide(plain), Cow::Borrowed(_)));
    }

    #[test]
    fn text_around_keys_survives_multibyte_included() {
        let guard = KeyGuard::for_key(MINTED);
        let out = guard.hide_string(format!("é→{MINTED}←ü"));
        assert_eq!(out, format!("é→{HIDDEN_KEY}←ü"));
    }

    #[test]
    fn debug_never_shows_a_key() {
        let guard = KeyGuard::for_key(MINTED);
        assert!(!format!("{guard:?}").contains("cfb_"));
    }
}
