//! Where `confab-host` gets its settings, first match wins: flags; the
//! `CONFAB_BACKEND_URL` / `CONFAB_API_KEY` environment; the config file named
//! by `CONFAB_CONFIG_PATH`, else `~/.confab/config.json` (confab's shape, so
//! an existing confab user's setup just works). Nothing here validates the
//! key or URL: the component does, with the same messages everywhere.

use crate::sandbox::{RedactionPattern, RedactionSettings};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Config files larger than this are refused (a config is a few hundred bytes).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    backend_url: Option<String>,
    api_key: Option<String>,
    redaction: Option<RedactionFile>,
}

#[derive(Debug, Deserialize)]
struct RedactionFile {
    #[serde(default)]
    enabled: bool,
    #[serde(default = "yes")]
    use_default_patterns: bool,
    #[serde(default)]
    patterns: Vec<PatternFile>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
struct PatternFile {
    name: String,
    pattern: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    capture_group: Option<u32>,
    field_pattern: Option<String>,
}

/// Settings as resolved; `backend_url: None` means "use the embedded local backend".
#[derive(Debug, Clone)]
pub struct Settings {
    pub backend_url: Option<String>,
    pub api_key: Option<String>,
    pub redaction: RedactionSettings,
    /// Which file was read, if any (shown by `--help` and errors).
    pub config_path: Option<PathBuf>,
}

/// Resolve settings from flags, an environment lookup and the config file.
pub fn resolve(
    flag_url: Option<String>,
    flag_key: Option<String>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Settings, String> {
    let config_path = env("CONFAB_CONFIG_PATH")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".confab").join("config.json")));
    let explicit = env("CONFAB_CONFIG_PATH").is_some();
    let file = match &config_path {
        Some(path) if path.exists() || explicit => Some(read_config(path)?),
        _ => None,
    };
    let used_path = file.as_ref().and(config_path);
    let file = file.unwrap_or_default();
    let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    Ok(Settings {
        backend_url: nonempty(flag_url)
            .or_else(|| nonempty(env("CONFAB_BACKEND_URL")))
            .or(nonempty(file.backend_url)),
        api_key: nonempty(flag_key)
            .or_else(|| nonempty(env("CONFAB_API_KEY")))
            .or(nonempty(file.api_key)),
        redaction: file
            .redaction
            .map(redaction_settings)
            .unwrap_or(RedactionSettings {
                enabled: false,
                use_default_patterns: true,
                patterns: Vec::new(),
            }),
        config_path: used_path,
    })
}

fn read_config(path: &Path) -> Result<ConfigFile, String> {
    let shown = path.display();
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read the config file {shown}: {e}"))?;
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(format!(
            "the config file {shown} is {} bytes, too large for a config (limit 1 MiB)",
            meta.len()
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the config file {shown}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("the config file {shown} is not valid: {e}"))
}

fn redaction_settings(r: RedactionFile) -> RedactionSettings {
    RedactionSettings {
        enabled: r.enabled,
        use_default_patterns: r.use_default_patterns,
        patterns: r
            .patterns
            .into_iter()
            .map(|p| RedactionPattern {
                name: p.name,
                pattern: p.pattern,
                kind: p.kind,
                capture_group: p.capture_group,
                field_pattern: p.field_pattern,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn flags_beat_env_and_env_beats_file() {
        let dir = std::env::temp_dir().join(format!("confab-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        std::fs::write(
            &path,
            r#"{"backend_url":"https://file.example","api_key":"cfb_file","redaction":{"enabled":true,"patterns":[{"name":"x","pattern":"y","type":"z"}]}}"#,
        )
        .unwrap();
        let p = path.display().to_string();
        let s = resolve(None, None, env_of(&[("CONFAB_CONFIG_PATH", p.clone())])).unwrap();
        assert_eq!(s.backend_url.as_deref(), Some("https://file.example"));
        assert_eq!(s.api_key.as_deref(), Some("cfb_file"));
        assert!(s.redaction.enabled && s.redaction.use_default_patterns);
        assert_eq!(s.redaction.patterns[0].kind, "z");
        let env = env_of(&[
            ("CONFAB_CONFIG_PATH", p.clone()),
            ("CONFAB_BACKEND_URL", "https://env.example".into()),
        ]);
        let s = resolve(None, None, env).unwrap();
        assert_eq!(s.backend_url.as_deref(), Some("https://env.example"));
        assert_eq!(s.api_key.as_deref(), Some("cfb_file"));
        let env = env_of(&[
            ("CONFAB_CONFIG_PATH", p),
            ("CONFAB_BACKEND_URL", "https://env.example".into()),
        ]);
        let s = resolve(Some("https://flag.example".into()), None, env).unwrap();
        assert_eq!(s.backend_url.as_deref(), Some("https://flag.example"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_config_anywhere_means_the_local_backend() {
        let s = resolve(None, None, env_of(&[("HOME", "/nonexistent-home".into())])).unwrap();
        assert!(s.backend_url.is_none() && s.api_key.is_none() && s.config_path.is_none());
    }

    #[test]
    fn a_named_config_that_is_missing_or_broken_is_one_line() {
        let e = resolve(
            None,
            None,
            env_of(&[("CONFAB_CONFIG_PATH", "/nonexistent/c.json".into())]),
        )
        .unwrap_err();
        assert!(
            e.starts_with("cannot read the config file /nonexistent/c.json") && !e.contains('\n')
        );
    }
}
