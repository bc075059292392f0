//! Configuration types shared by the engine, the WIT adapter and the CLI.
//! Only data and validation live here; nothing is read from disk.

/// One custom (or built-in) redaction rule, in confab's config-file shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct RedactionPattern {
    /// Human name, used in error messages ("pattern `my-token` does not compile").
    pub name: String,
    /// Regex matched against string values (and whole non-JSON lines).
    #[serde(default)]
    pub pattern: Option<String>,
    /// Marker type: the match becomes `[REDACTED:<TYPE>]` with this upper-cased.
    #[serde(rename = "type")]
    pub kind: String,
    /// When set, only this capture group of `pattern` is replaced.
    #[serde(default)]
    pub capture_group: Option<u32>,
    /// Regex matched against JSON object keys: the whole value of a matching key is redacted.
    #[serde(default)]
    pub field_pattern: Option<String>,
}

/// Redaction settings, in confab's config-file shape (`"redaction": {...}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct RedactionSettings {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default = "default_true")]
    pub use_default_patterns: bool,
    #[serde(default)]
    pub patterns: Vec<RedactionPattern>,
}

fn default_true() -> bool {
    true
}

impl Default for RedactionSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            use_default_patterns: true,
            patterns: Vec::new(),
        }
    }
}

use super::error::SyncError;
use super::limits::{MAX_EXTERNAL_ID_BYTES, MAX_HOST_USER_BYTES, MAX_PATH_BYTES};

/// Everything one sync session needs (the WIT `session-config`).
#[derive(Debug, Clone, Default)]
pub struct SessionConfig {
    pub backend_url: String,
    pub api_key: String,
    pub external_id: String,
    pub transcript_path: String,
    pub cwd: String,
    pub hostname: Option<String>,
    pub username: Option<String>,
    pub redaction: RedactionSettings,
    /// A folder the engine may write its checkpoint in (see [`super::checkpoint`]).
    pub state_dir: Option<String>,
}

impl SessionConfig {
    /// Refuse what the backend would refuse, before anything is sent.
    /// Messages never contain the key.
    pub fn validate(&self) -> Result<(), SyncError> {
        self.check()
            .map_err(|e| SyncError::config(hide_keys(&e.message, &self.api_key)))
    }

    fn check(&self) -> Result<(), SyncError> {
        validate_backend_url(&self.backend_url)?;
        validate_api_key(&self.api_key)?;
        let id = &self.external_id;
        if id.is_empty() || id.len() > MAX_EXTERNAL_ID_BYTES {
            return Err(SyncError::config(format!(
                "the external id must be 1 to {MAX_EXTERNAL_ID_BYTES} bytes (it is {})",
                id.len()
            )));
        }
        if !self.transcript_path.ends_with(".jsonl") {
            return Err(SyncError::config(format!(
                "the transcript path must name a .jsonl file: {}",
                self.transcript_path
            )));
        }
        for (what, value, max) in [
            (
                "transcript path",
                Some(&self.transcript_path),
                MAX_PATH_BYTES,
            ),
            ("cwd", Some(&self.cwd), MAX_PATH_BYTES),
            ("hostname", self.hostname.as_ref(), MAX_HOST_USER_BYTES),
            ("username", self.username.as_ref(), MAX_HOST_USER_BYTES),
        ] {
            if let Some(v) = value.filter(|v| v.len() > max) {
                return Err(SyncError::config(format!(
                    "the {what} is {} bytes, over the backend's limit of {max}",
                    v.len()
                )));
            }
        }
        Ok(())
    }
}

/// `message` without the API key nor anything shaped like one: a key put
/// where the URL or a path goes (swapped flags, a key pasted into the URL)
/// must not reach a log through the message that refuses it.
fn hide_keys(message: &str, api_key: &str) -> String {
    let message = if api_key.len() >= 8 {
        message.replace(api_key, "[API key]")
    } else {
        message.to_string()
    };
    let mut out = String::with_capacity(message.len());
    let mut rest = message.as_str();
    while let Some(i) = rest.find("cfb_") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 4..];
        let n = tail.bytes().take_while(u8::is_ascii_alphanumeric).count();
        out.push_str(if n > 0 { "[API key]" } else { "cfb_" });
        rest = &tail[n..];
    }
    out.push_str(rest);
    out
}

/// `http(s)://host[:port][/path]`; plain `http` only for loopback hosts.
pub fn validate_backend_url(url: &str) -> Result<(), SyncError> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        SyncError::config(format!("the backend URL `{url}` is not an http(s) URL"))
    })?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host_of(authority);
    if host.is_empty() || authority.contains('@') || url.contains(char::is_whitespace) {
        return Err(SyncError::config(format!(
            "the backend URL `{url}` has no valid host"
        )));
    }
    match scheme {
        "https" => Ok(()),
        "http" if is_loopback(host) => Ok(()),
        "http" => Err(SyncError::config(format!(
            "the backend URL `{url}` uses plain http, allowed only for loopback hosts: use https"
        ))),
        _ => Err(SyncError::config(format!(
            "the backend URL `{url}` is not an http(s) URL"
        ))),
    }
}

/// Host of an authority `host[:port]` or `[v6][:port]`.
fn host_of(authority: &str) -> &str {
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    authority.split(':').next().unwrap_or("")
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

/// `cfb_` followed by 40 ASCII letters and digits.
pub fn validate_api_key(key: &str) -> Result<(), SyncError> {
    let ok = key.len() == 44
        && key.starts_with("cfb_")
        && key[4..].bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(SyncError::config(
            "the API key does not look like a Confab key (`cfb_` followed by 40 letters and digits)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(validate_backend_url("https://confab.example.com").is_ok());
        assert!(validate_backend_url("http://127.0.0.1:8080").is_ok());
        assert!(validate_backend_url("http://localhost/x").is_ok());
        assert!(validate_backend_url("http://[::1]:9").is_ok());
        assert!(validate_backend_url("http://confab.example.com").is_err());
        assert!(validate_backend_url("ftp://x").is_err());
        assert!(validate_backend_url("confab.example.com").is_err());
        assert!(validate_backend_url("https://").is_err());
        assert!(validate_backend_url("https://user:pw@host").is_err());
    }

    #[test]
    fn keys_are_checked_and_never_echoed() {
        let good = format!("cfb_{}", "a1".repeat(20));
        assert!(validate_api_key(&good).is_ok());
        let bad = format!("cfx_{}", "a1".repeat(20));
        let err = validate_api_key(&bad).unwrap_err();
        assert!(!err.message.contains(&bad[4..]));
        assert!(validate_api_key(&format!("cfb_{}", "a".repeat(39))).is_err());
        assert!(validate_api_key(&format!("cfb_{}-", "a".repeat(39))).is_err());
    }
}
