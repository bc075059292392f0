//! Configuration, first match wins: flags; `CONFAB_BACKEND_URL` /
//! `CONFAB_API_KEY`; the config file named by `CONFAB_CONFIG_PATH`, else
//! `$HOME/.confab/config.json`, in confab's shape, so an existing confab
//! user's setup just works. `CONFAB_REDACTION` (a JSON object of the
//! `redaction` shape) is how a host passes redaction settings it resolved.
//! Files and environment arrive as functions: no I/O here.

use super::args::CommonArgs;
use crate::core::config::{validate_api_key, validate_backend_url, RedactionSettings};
use serde::Deserialize;

/// A config file is a few hundred bytes; anything over this is refused.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// `~/.confab/config.json`: the fields confab's own config has are
/// accepted (those this engine does not use are ignored); any other field is
/// refused, so that a typo (`"enable": true` in `redaction`) cannot quietly
/// turn redaction off.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    backend_url: Option<String>,
    api_key: Option<String>,
    redaction: Option<RedactionSettings>,
    /// confab's own: its log level, self-update switch and per-provider
    /// backends. Accepted, not used here.
    #[serde(default, rename = "log_level")]
    _log_level: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "auto_update")]
    _auto_update: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "bindings")]
    _bindings: Option<serde::de::IgnoredAny>,
}

/// Resolved settings; `None` means "not configured anywhere".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub backend_url: Option<String>,
    pub api_key: Option<String>,
    pub redaction: RedactionSettings,
    /// The config file that was read, if any.
    pub config_path: Option<String>,
    /// `CONFAB_STATE_DIR`: a writable folder for the engine's checkpoint.
    pub state_dir: Option<String>,
    /// `--hostname`, else `HOSTNAME` (under `wasmtime run`, only when the
    /// user passes it: `--env HOSTNAME=$(hostname)`).
    pub hostname: Option<String>,
    /// `--username`, else `USER` (`--env USER`).
    pub username: Option<String>,
}

/// Reads a whole file: `Ok(None)` when it does not exist.
pub type ReadFile<'a> = &'a dyn Fn(&str, usize) -> Result<Option<Vec<u8>>, String>;

pub fn resolve(
    flags: &CommonArgs,
    env: &dyn Fn(&str) -> Option<String>,
    read_file: ReadFile<'_>,
) -> Result<Settings, String> {
    let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let explicit = nonempty(env("CONFAB_CONFIG_PATH"));
    let path = explicit.clone().or_else(|| {
        nonempty(env("HOME")).map(|h| format!("{}/.confab/config.json", h.trim_end_matches('/')))
    });
    let mut file = ConfigFile::default();
    let mut used = None;
    if let Some(path) = path {
        match read_file(&path, MAX_CONFIG_BYTES + 1) {
            Ok(Some(bytes)) => {
                if bytes.len() > MAX_CONFIG_BYTES {
                    return Err(format!(
                        "the config file {path} is over 1 MiB: that is not a config file"
                    ));
                }
                file = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("the config file {path} is not valid: {e}"))?;
                used = Some(path);
            }
            Ok(None) if explicit.is_some() => {
                return Err(format!(
                    "the config file {path} (CONFAB_CONFIG_PATH) does not exist"
                ))
            }
            Ok(None) => {}
            Err(e) if explicit.is_some() => {
                return Err(format!("cannot read the config file {path}: {e}"))
            }
            // An unreadable default config (e.g. not granted to the sandbox) is as if absent.
            Err(_) => {}
        }
    }
    let redaction = match nonempty(env("CONFAB_REDACTION")) {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| format!("CONFAB_REDACTION is not a valid redaction object: {e}"))?,
        None => file.redaction.unwrap_or_default(),
    };
    Ok(Settings {
        backend_url: nonempty(flags.backend_url.clone())
            .or_else(|| nonempty(env("CONFAB_BACKEND_URL")))
            .or(nonempty(file.backend_url)),
        api_key: nonempty(flags.api_key.clone())
            .or_else(|| nonempty(env("CONFAB_API_KEY")))
            .or(nonempty(file.api_key)),
        redaction,
        config_path: used,
        state_dir: nonempty(env("CONFAB_STATE_DIR")),
        hostname: nonempty(flags.hostname.clone()).or_else(|| nonempty(env("HOSTNAME"))),
        username: nonempty(flags.username.clone()).or_else(|| nonempty(env("USER"))),
    })
}

impl Settings {
    /// The backend URL and key, checked before anything is sent.
    pub fn require(&self) -> Result<(String, String), String> {
        let url = self.backend_url.clone().ok_or(
            "no backend configured: pass --backend-url, set CONFAB_BACKEND_URL, or put backend_url in ~/.confab/config.json",
        )?;
        let key = self.api_key.clone().ok_or("no API key: pass --api-key, set CONFAB_API_KEY, or put api_key in ~/.confab/config.json")?;
        validate_backend_url(&url).map_err(|e| e.message)?;
        validate_api_key(&key).map_err(|e| e.message)?;
        Ok((url, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn files(pairs: &[(&str, &str)]) -> impl Fn(&str, usize) -> Result<Option<Vec<u8>>, String> {
        let map: HashMap<String, Vec<u8>> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect();
        move |p, _| Ok(map.get(p).cloned())
    }
    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }
    const FILE: &str = r#"{"backend_url":"https://file.example","api_key":"cfb_file","redaction":{"enabled":true,"patterns":[{"name":"x","pattern":"y","type":"z"}]}}"#;

    #[test]
    fn flags_beat_env_and_env_beats_the_file() {
        let fs = files(&[("/h/.confab/config.json", FILE)]);
        let s = resolve(&CommonArgs::default(), &env(&[("HOME", "/h")]), &fs).unwrap();
        assert_eq!(s.backend_url.as_deref(), Some("https://file.example"));
        assert!(
            s.redaction.enabled
                && s.redaction.use_default_patterns
                && s.redaction.patterns[0].kind == "z"
        );
        assert_eq!(s.config_path.as_deref(), Some("/h/.confab/config.json"));
        let e = env(&[
            ("HOME", "/h"),
            ("CONFAB_BACKEND_URL", "https://env.example"),
        ]);
        let s = resolve(&CommonArgs::default(), &e, &fs).unwrap();
        assert_eq!(
            (s.backend_url.as_deref(), s.api_key.as_deref()),
            (Some("https://env.example"), Some("cfb_file"))
        );
        let flags = CommonArgs {
            backend_url: Some("https://flag.example".into()),
            ..Default::default()
        };
        assert_eq!(
            resolve(&flags, &e, &fs).unwrap().backend_url.as_deref(),
            Some("https://flag.example")
        );
    }

    #[test]
    fn config_path_env_names_the_file_and_must_exist() {
        let fs = files(&[("/etc/c.json", FILE)]);
        let s = resolve(
            &CommonArgs::default(),
            &env(&[("CONFAB_CONFIG_PATH", "/etc/c.json")]),
            &fs,
        )
        .unwrap();
        assert_eq!(s.api_key.as_deref(), Some("cfb_file"));
        let e = resolve(
            &CommonArgs::default(),
            &env(&[("CONFAB_CONFIG_PATH", "/nope.json")]),
            &fs,
        )
        .unwrap_err();
        assert!(e.contains("/nope.json") && !e.contains('\n'));
    }

    #[test]
    fn broken_or_huge_files_are_one_line_errors() {
        let fs = files(&[("/h/.confab/config.json", "{not json")]);
        assert!(
            resolve(&CommonArgs::default(), &env(&[("HOME", "/h")]), &fs)
                .unwrap_err()
                .starts_with("the config file /h/.confab/config.json is not valid")
        );
        let big = format!("{{\"x\":\"{}\"}}", "a".repeat(MAX_CONFIG_BYTES + 10));
        let fs = files(&[("/h/.confab/config.json", &big)]);
        assert!(
            resolve(&CommonArgs::default(), &env(&[("HOME", "/h")]), &fs)
                .unwrap_err()
                .contains("over 1 MiB")
        );
    }

    #[test]
    fn require_checks_url_and_key_without_echoing_the_key() {
        let s = Settings {
            backend_url: Some("https://x.example".into()),
            api_key: Some("cfb_short".into()),
            ..Default::default()
        };
        let e = s.require().unwrap_err();
        assert!(!e.contains("cfb_short"));
        let s = Settings::default();
        assert!(s
            .require()
            .unwrap_err()
            .starts_with("no backend configured"));
    }

    #[test]
    fn confabs_own_fields_are_accepted_and_typos_are_refused() {
        let ok = r#"{"backend_url":"https://x.example","api_key":"cfb_file","log_level":"debug","auto_update":false,"bindings":{"codex":{"/d":{"backend_url":"https://y","api_key":"cfb_y"}}},"redaction":{"enabled":true,"use_default_patterns":true,"patterns":[{"name":"n","pattern":"p","type":"t","capture_group":0,"field_pattern":"f"}]}}"#;
        let fs = files(&[("/h/.confab/config.json", ok)]);
        let s = resolve(&CommonArgs::default(), &env(&[("HOME", "/h")]), &fs).unwrap();
        assert!(s.redaction.enabled);
        for (typo, field) in [
            (r#"{"redaction":{"enable":true}}"#, "enable"),
            (
                r#"{"redaction":{"enabled":true,"patterns":[{"name":"n","patern":"p","type":"t"}]}}"#,
                "patern",
            ),
            (r#"{"backendurl":"https://x.example"}"#, "backendurl"),
        ] {
            let fs = files(&[("/h/.confab/config.json", typo)]);
            let e = resolve(&CommonArgs::default(), &env(&[("HOME", "/h")]), &fs).unwrap_err();
            assert!(e.contains(&format!("`{field}`")), "{e}");
            assert!(
                e.contains("/h/.confab/config.json") && !e.contains('\n'),
                "{e}"
            );
        }
        let e = env(&[("CONFAB_REDACTION", r#"{"enable":true}"#)]);
        assert!(resolve(&CommonArgs::default(), &e, &files(&[]))
            .unwrap_err()
            .contains("`enable`"));
    }

    #[test]
    fn a_host_passes_redaction_as_json() {
        let e = env(&[(
            "CONFAB_REDACTION",
            r#"{"enabled":true,"use_default_patterns":false}"#,
        )]);
        let s = resolve(&CommonArgs::default(), &e, &files(&[])).unwrap();
        assert!(s.redaction.enabled && !s.redaction.use_default_patterns);
    }
}
