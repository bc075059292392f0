//! The default redaction patterns: confab's built-in list, one named constant
//! per regex, in the order they are applied (specific before general: the
//! Anthropic key before the OpenAI `sk-` key that would also match it).
//!
//! Each default also carries the literals the prefilter looks for: every match
//! of the pattern contains at least one of them, so a line holding none of them
//! cannot match and is passed through without running the regex. The unit tests
//! check these literals against the literals `regex-syntax` extracts. Patterns
//! of one family share a literal (`://` for every URL, `PRIVATE KEY-----` for
//! every PEM block, `sk-` for both `sk-` keys): each distinct literal costs
//! both line scans something (`prefilter.rs` says how the Twilio and MailChimp
//! families of 22 and 10 literals are looked for as one each), and a shared
//! literal only costs a regex run on the rare lines that hold it.
//!
//! The regexes use `[0-9]` rather than `\d`: Rust's `\d` is Unicode-aware and
//! would accept other scripts' digits, which confab's (Go) patterns do not.

use crate::core::config::RedactionPattern;

/// Sensitive JSON keys (whole key, case-insensitive): the whole value is redacted.
pub const SENSITIVE_FIELD_NAMES: &str = "(?i)^(password|passwd|secret|api_key|apikey|api_secret|token|auth_token|access_token|refresh_token|private_key|credential|credentials)$";
/// The key names of [`SENSITIVE_FIELD_NAMES`], as the prefilter looks for them.
pub const SENSITIVE_KEYS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "api_key",
    "apikey",
    "api_secret",
    "token",
    "auth_token",
    "access_token",
    "refresh_token",
    "private_key",
    "credential",
    "credentials",
];
/// Anthropic API keys (before [`OPENAI_API_KEY`], which would also match them).
pub const ANTHROPIC_API_KEY: &str = r"sk-ant-api[0-9]{2}-[A-Za-z0-9_-]{80,120}";
/// OpenAI API keys, including project keys.
///
/// Unlike confab's `sk-(?:proj-)?...`, the key must start a word (ASCII word
/// boundary): without it any identifier containing `sk-` followed by twenty
/// word characters is taken for a key, e.g. Claude Code's own
/// `"toolUseID":"task-output-waiting-1770847386522"` in the shipped fixtures.
/// A real key is preceded by a quote, a space, `=` or the like.
pub const OPENAI_API_KEY: &str = r"(?-u:\b)sk-(?:proj-)?[A-Za-z0-9_-]{20,200}";
/// AWS access key ids.
pub const AWS_ACCESS_KEY: &str = r"AKIA[0-9A-Z]{16}";
/// AWS secret keys in a credentials file; group 1 is the secret alone.
pub const AWS_SECRET_KEY_CONFIG: &str = r"aws_secret_access_key\s*=\s*([A-Za-z0-9/+=]{40})";
/// AWS secret keys in an environment assignment; group 1 is the secret alone.
pub const AWS_SECRET_KEY_ENV: &str =
    r#"AWS_SECRET_ACCESS_KEY\s*=\s*["']?([A-Za-z0-9/+=]{40})["']?"#;
/// GitHub personal access tokens (classic).
pub const GITHUB_PAT_CLASSIC: &str = r"ghp_[A-Za-z0-9]{36,255}";
/// GitHub OAuth tokens.
pub const GITHUB_OAUTH_TOKEN: &str = r"gho_[A-Za-z0-9]{36,255}";
/// GitHub App user-to-server and server-to-server tokens.
pub const GITHUB_APP_TOKEN: &str = r"(?:ghu|ghs)_[A-Za-z0-9]{36,255}";
/// GitHub refresh tokens.
pub const GITHUB_REFRESH_TOKEN: &str = r"ghr_[A-Za-z0-9]{36,255}";
/// GitHub fine-grained personal access tokens.
pub const GITHUB_PAT_FINE_GRAINED: &str = r"github_pat_[A-Za-z0-9]{22,255}";
/// JSON Web Tokens (header and payload both start with `{"`, base64url `eyJ`).
pub const JWT: &str = r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+";
/// PEM RSA private keys, across lines.
pub const RSA_PRIVATE_KEY: &str =
    r"(?s)-----BEGIN RSA PRIVATE KEY-----.*?-----END RSA PRIVATE KEY-----";
/// PEM EC private keys, across lines.
pub const EC_PRIVATE_KEY: &str =
    r"(?s)-----BEGIN EC PRIVATE KEY-----.*?-----END EC PRIVATE KEY-----";
/// OpenSSH private keys, across lines.
pub const OPENSSH_PRIVATE_KEY: &str =
    r"(?s)-----BEGIN OPENSSH PRIVATE KEY-----.*?-----END OPENSSH PRIVATE KEY-----";
/// PKCS#8 private keys, across lines.
pub const PKCS8_PRIVATE_KEY: &str = r"(?s)-----BEGIN PRIVATE KEY-----.*?-----END PRIVATE KEY-----";
/// PostgreSQL URLs; group 2 is the password alone.
pub const POSTGRES_URL_PASSWORD: &str = r"(postgres(?:ql)?://[^:]+:)([^@\s]+)(@[^\s]+)";
/// MySQL URLs; group 2 is the password alone.
pub const MYSQL_URL_PASSWORD: &str = r"(mysql://[^:]+:)([^@\s]+)(@[^\s]+)";
/// MongoDB URLs (also `mongodb+srv`); group 2 is the password alone.
pub const MONGODB_URL_PASSWORD: &str = r"(mongodb(?:\+srv)?://[^:]+:)([^@\s]+)(@[^\s]+)";
/// Redis URLs (the user may be empty); group 2 is the password alone.
pub const REDIS_URL_PASSWORD: &str = r"(redis://[^:/@\s]*:)([^@\s]+)(@[^\s]+)";
/// Any other `scheme://user:password@` URL; group 2 is the password alone.
pub const GENERIC_URL_PASSWORD: &str = r"(://[^:/@\s]+:)([^@\s]+)(@)";
/// Slack bot, app, user, refresh and legacy tokens.
pub const SLACK_TOKEN: &str = r"xox[baprs]-[0-9a-zA-Z-]{10,255}";
/// Slack rotating (refresh) tokens.
pub const SLACK_ROTATING_TOKEN: &str = r"xoxe(?:\.[a-zA-Z0-9-]+)?-[0-9a-zA-Z-]{10,255}";
/// Slack app-level tokens.
pub const SLACK_APP_TOKEN: &str = r"xapp-[0-9a-zA-Z-]{10,255}";
/// Stripe secret keys.
pub const STRIPE_SECRET_KEY: &str = r"sk_(?:live|test)_[0-9a-zA-Z]{24,}";
/// Stripe restricted keys.
pub const STRIPE_RESTRICTED_KEY: &str = r"rk_(?:live|test)_[0-9a-zA-Z]{24,}";
/// Google API keys.
pub const GOOGLE_API_KEY: &str = r"AIza[0-9A-Za-z_-]{35}";
/// Twilio API keys.
pub const TWILIO_API_KEY: &str = r"SK[0-9a-fA-F]{32}";
/// SendGrid API keys.
pub const SENDGRID_API_KEY: &str = r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}";
/// MailChimp API keys (the data-center suffix is part of the key).
pub const MAILCHIMP_API_KEY: &str = r"[0-9a-f]{32}-us[0-9]{1,2}";
/// npm access tokens.
pub const NPM_TOKEN: &str = r"npm_[A-Za-z0-9]{36}";
/// PyPI upload tokens (the fixed part is base64 of the token's `pypi.org` caveat).
pub const PYPI_TOKEN: &str = r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{70,}";
/// Confab API keys.
pub const CONFAB_API_KEY: &str = r"cfb_[A-Za-z0-9]{40}";

/// What the prefilter looks for on a line to decide it may hold a match.
/// "SK" and the hex digit that must follow it: "SK" alone is in every
/// "TASK" and "DISK" and sent a line in ten to the slow path.
const TWILIO_LITERALS: &[&str] = &[
    "SK0", "SK1", "SK2", "SK3", "SK4", "SK5", "SK6", "SK7", "SK8", "SK9", "SKa", "SKb", "SKc",
    "SKd", "SKe", "SKf", "SKA", "SKB", "SKC", "SKD", "SKE", "SKF",
];
/// "-us" and the digit that must follow it: "-us" alone is in every
/// "--user" and "-use" (the fixtures: 31% of bytes on the slow path with
/// these two short literals, 13% without).
const MAILCHIMP_LITERALS: &[&str] = &[
    "-us0", "-us1", "-us2", "-us3", "-us4", "-us5", "-us6", "-us7", "-us8", "-us9",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Literals {
    /// Every match of the value pattern contains one of these (case-sensitive).
    Substrings(&'static [&'static str]),
    /// The field pattern matches exactly these JSON keys, ASCII case-insensitively
    /// (plus the two non-ASCII letters Unicode case folding maps to `k` and `s`).
    JsonKeys(&'static [&'static str]),
}

/// One built-in pattern, in the config's shape plus its prefilter literals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultPattern {
    pub name: &'static str,
    /// Marker type (`[REDACTED:<TYPE>]`, upper-cased).
    pub kind: &'static str,
    pub pattern: Option<&'static str>,
    pub field_pattern: Option<&'static str>,
    pub capture_group: Option<u32>,
    pub literals: Literals,
}

impl DefaultPattern {
    /// This pattern as a config entry (what `use_default_patterns` adds).
    pub fn to_config(&self) -> RedactionPattern {
        RedactionPattern {
            name: self.name.to_owned(),
            pattern: self.pattern.map(str::to_owned),
            kind: self.kind.to_owned(),
            capture_group: self.capture_group,
            field_pattern: self.field_pattern.map(str::to_owned),
        }
    }
}

const fn value(
    name: &'static str,
    kind: &'static str,
    pattern: &'static str,
    literals: &'static [&'static str],
) -> DefaultPattern {
    DefaultPattern {
        name,
        kind,
        pattern: Some(pattern),
        field_pattern: None,
        capture_group: None,
        literals: Literals::Substrings(literals),
    }
}

const fn group(
    name: &'static str,
    kind: &'static str,
    pattern: &'static str,
    group: u32,
    literals: &'static [&'static str],
) -> DefaultPattern {
    DefaultPattern {
        name,
        kind,
        pattern: Some(pattern),
        field_pattern: None,
        capture_group: Some(group),
        literals: Literals::Substrings(literals),
    }
}

/// The defaults, in application order.
pub const DEFAULT_PATTERNS: &[DefaultPattern] = &[
    DefaultPattern {
        name: "Sensitive Field Names",
        kind: "sensitive_field",
        pattern: None,
        field_pattern: Some(SENSITIVE_FIELD_NAMES),
        capture_group: None,
        literals: Literals::JsonKeys(SENSITIVE_KEYS),
    },
    value("Anthropic API Key", "api_key", ANTHROPIC_API_KEY, &["sk-"]),
    value("OpenAI API Key", "api_key", OPENAI_API_KEY, &["sk-"]),
    value("AWS Access Key", "aws_key", AWS_ACCESS_KEY, &["AKIA"]),
    group(
        "AWS Secret Key (config file)",
        "aws_secret",
        AWS_SECRET_KEY_CONFIG,
        1,
        &["aws_secret_access_key"],
    ),
    group(
        "AWS Secret Key (env var style)",
        "aws_secret",
        AWS_SECRET_KEY_ENV,
        1,
        &["AWS_SECRET_ACCESS_KEY"],
    ),
    value(
        "GitHub Personal Access Token (Classic)",
        "github_token",
        GITHUB_PAT_CLASSIC,
        &["ghp_"],
    ),
    value(
        "GitHub OAuth Token",
        "github_token",
        GITHUB_OAUTH_TOKEN,
        &["gho_"],
    ),
    value(
        "GitHub App Token",
        "github_token",
        GITHUB_APP_TOKEN,
        &["ghu_", "ghs_"],
    ),
    value(
        "GitHub Refresh Token",
        "github_token",
        GITHUB_REFRESH_TOKEN,
        &["ghr_"],
    ),
    value(
        "GitHub Personal Access Token (Fine-grained)",
        "github_token",
        GITHUB_PAT_FINE_GRAINED,
        &["github_pat_"],
    ),
    value("JWT Token", "jwt", JWT, &["eyJ"]),
    value(
        "RSA Private Key",
        "private_key",
        RSA_PRIVATE_KEY,
        &["PRIVATE KEY-----"],
    ),
    value(
        "EC Private Key",
        "private_key",
        EC_PRIVATE_KEY,
        &["PRIVATE KEY-----"],
    ),
    value(
        "OpenSSH Private Key",
        "private_key",
        OPENSSH_PRIVATE_KEY,
        &["PRIVATE KEY-----"],
    ),
    value(
        "Generic Private Key (PKCS#8)",
        "private_key",
        PKCS8_PRIVATE_KEY,
        &["PRIVATE KEY-----"],
    ),
    group(
        "PostgreSQL Connection String Password",
        "password",
        POSTGRES_URL_PASSWORD,
        2,
        &["://"],
    ),
    group(
        "MySQL Connection String Password",
        "password",
        MYSQL_URL_PASSWORD,
        2,
        &["://"],
    ),
    group(
        "MongoDB Connection String Password",
        "password",
        MONGODB_URL_PASSWORD,
        2,
        &["://"],
    ),
    group(
        "Redis Connection String Password",
        "password",
        REDIS_URL_PASSWORD,
        2,
        &["://"],
    ),
    group(
        "Generic URL Password",
        "password",
        GENERIC_URL_PASSWORD,
        2,
        &["://"],
    ),
    value("Slack Token", "slack_token", SLACK_TOKEN, &["xox"]),
    value(
        "Slack Rotating Token",
        "slack_token",
        SLACK_ROTATING_TOKEN,
        &["xox"],
    ),
    value(
        "Slack App-Level Token",
        "slack_token",
        SLACK_APP_TOKEN,
        &["xapp-"],
    ),
    value(
        "Stripe Secret API Key",
        "stripe_key",
        STRIPE_SECRET_KEY,
        &["sk_live_", "sk_test_"],
    ),
    value(
        "Stripe Restricted API Key",
        "stripe_key",
        STRIPE_RESTRICTED_KEY,
        &["rk_live_", "rk_test_"],
    ),
    value(
        "Google API Key",
        "google_api_key",
        GOOGLE_API_KEY,
        &["AIza"],
    ),
    value(
        "Twilio API Key",
        "twilio_key",
        TWILIO_API_KEY,
        TWILIO_LITERALS,
    ),
    value(
        "SendGrid API Key",
        "sendgrid_key",
        SENDGRID_API_KEY,
        &["SG."],
    ),
    value(
        "MailChimp API Key",
        "mailchimp_key",
        MAILCHIMP_API_KEY,
        MAILCHIMP_LITERALS,
    ),
    value("npm Access Token", "npm_token", NPM_TOKEN, &["npm_"]),
    value(
        "PyPI Token",
        "pypi_token",
        PYPI_TOKEN,
        &["pypi-AgEIcHlwaS5vcmc"],
    ),
    value("Confab API Key", "confab_key", CONFAB_API_KEY, &["cfb_"]),
];

/// The defaults in the config's shape, in application order.
pub fn default_patterns() -> Vec<RedactionPattern> {
    DEFAULT_PATTERNS
        .iter()
        .map(DefaultPattern::to_config)
        .collect()
}
