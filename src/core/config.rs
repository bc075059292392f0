//! Configuration types shared by the engine, the WIT adapter and the CLI.
//! Only data and validation live here; nothing is read from disk.

/// One custom (or built-in) redaction rule, in confab's config-file shape.
/// Unknown fields are refused: a misspelt `pattern` must not leave a rule
/// that silently matches nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
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
/// Unknown fields are refused: `"enable": true` must not mean "off".
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
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

pub use super::api_key::validate_api_key;
use super::api_key::KeyGuard;
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
    /// `claude-code`, `codex` or `cursor`; `None`: told by the transcript's
    /// path and first line (see [`super::provider`]).
    pub provider: Option<String>,
}

impl SessionConfig {
    /// Refuse what the backend would refuse, before anything is sent.
    /// Messages never contain the key.
    pub fn validate(&self) -> Result<(), SyncError> {
        self.check()
            .map_err(|e| SyncError::config(KeyGuard::for_key(&self.api_key).hide_string(e.message)))
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
                "the transcript path must name a .jsonl file of a supported agent (claude-code, codex, cursor): {}",
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

/// Plain http is allowed only where the key cannot leave the machine: an
/// IP address in 127.0.0.0/8, `::1`, or exactly `localhost`. Decided on the
/// parsed host, never on a prefix: `127.attacker.example` is a name that
/// resolves wherever its owner wants.
fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if let Ok(v4) = host.parse::<std::net::Ipv4Addr>() {
        return v4.is_loopback();
    }
    host.parse::<std::net::Ipv6Addr>()
        .is_ok_and(|v6| v6.is_loopback())
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
    fn plain_http_only_for_a_host_that_is_loopback_once_parsed() {
        for url in [
            "http://127.0.0.1",
            "http://127.1.2.3:9/x",
            "http://[::1]",
            "http://[0:0:0:0:0:0:0:1]:8",
            "http://LOCALHOST:80",
        ] {
            assert!(validate_backend_url(url).is_ok(), "{url}");
        }
        for url in [
            "http://127.attacker.example",
            "http://127.0.0.1.attacker.example",
            "http://localhost.attacker.example",
            "http://127.0.0.1x",
            "http://128.0.0.1",
            "http://[::2]",
            "http://0x7f.0.0.1",
        ] {
            assert!(validate_backend_url(url).is_err(), "{url}");
        }
    }

    #[test]
    fn a_key_put_where_the_url_goes_is_not_in_the_refusal() {
        let key = "cfb_Zx3-q_Rk9LmN0pQr-StUv_WxYz0123456789Abcd";
        let config = SessionConfig {
            backend_url: key.to_string(),
            api_key: key.to_string(),
            external_id: "x".into(),
            transcript_path: "/t/x.jsonl".into(),
            ..SessionConfig::default()
        };
        let e = config.validate().unwrap_err();
        assert!(!e.message.contains(&key[4..12]), "{}", e.message);
        assert!(e.message.contains("[API key]"), "{}", e.message);
    }
}
