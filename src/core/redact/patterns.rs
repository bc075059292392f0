//! The default redaction patterns: confab's built-in list (v0.17.3), then
//! the keys, tokens and credentials a reviewer of AI coding transcripts
//! expects to see gone; one named constant per regex, in the order they are
//! applied (specific before general: the Anthropic keys before the OpenAI
//! `sk-` key that would also match them; the rules that know a secret by its
//! context, such as a `Bearer` header, last).
//!
//! Each default also carries the literals the prefilter looks for: every match
//! of the pattern contains at least one of them, so a line holding none of them
//! cannot match and is passed through without running the regex. The unit tests
//! check these literals against the literals `regex-syntax` extracts. Each
//! distinct literal costs both line scans something, so:
//! - patterns of one family share a literal (`://` for every URL, `PRIVATE
//!   KEY` for every PEM block, `sk-` for every `sk-` key, `eyJ` for every
//!   base64 JSON payload): a shared literal only costs a regex run on the
//!   rare lines that hold it;
//! - a literal should not occur in ordinary text or code (4 bytes or more,
//!   or 3 rare ones): a line holding one goes down the slow path (decoded,
//!   its strings searched with the rules the literal gates);
//! - literals that differ only in their last byte (Twilio's `SK` and a hex
//!   digit) form one family, which both scans look for as one (see
//!   `prefilter.rs`).
//!
//! Limits, checked by a unit test: natively the literals go into up to three
//! aho-corasick automata by length, each of at most 64 patterns (past that
//! aho-corasick drops its SIMD searcher); the component's Teddy takes at most
//! 128 needles (families, quoted sensitive keys and escapes together); rules
//! past the 128 bits of the prefilter's candidate set run on every string.
//!
//! The regexes use `[0-9]` rather than `\d`: Rust's `\d` is Unicode-aware and
//! would accept other scripts' digits, which confab's (Go) patterns do not.
//! `(?-u:\b)` (an ASCII word boundary) starts the patterns whose prefix could
//! end an identifier (`hf_`, `dapi`...).

use crate::core::config::RedactionPattern;

/// Sensitive JSON keys (whole key, case-insensitive): the whole value is redacted.
///
/// confab's list, plus keys whose value is a credential whatever its shape:
/// `client_secret` and `private_key_id` (OAuth client and GCP service-account
/// JSON), and the `authorization` and `cookie` headers when a tool call
/// carries its headers as a JSON object (`{"Authorization": "Basic ..."}`,
/// where the value alone no longer says it is a header).
pub const SENSITIVE_FIELD_NAMES: &str = "(?i)^(password|passwd|secret|api_key|apikey|api_secret|token|auth_token|access_token|refresh_token|private_key|credential|credentials|client_secret|private_key_id|authorization|cookie)$";
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
    "client_secret",
    "private_key_id",
    "authorization",
    "cookie",
];
/// Anthropic API keys (before [`OPENAI_API_KEY`], which would also match them).
pub const ANTHROPIC_API_KEY: &str = r"sk-ant-api[0-9]{2}-[A-Za-z0-9_-]{80,120}";
/// Anthropic Admin API keys (organization management: they can mint API
/// keys), `sk-ant-admin01-` and a body as long as an API key's. Before
/// [`OPENAI_API_KEY`], which would otherwise take them for an OpenAI key.
pub const ANTHROPIC_ADMIN_KEY: &str = r"sk-ant-admin[0-9]{2}-[A-Za-z0-9_-]{80,120}";
/// Anthropic OAuth access and refresh tokens (`sk-ant-oat01-`,
/// `sk-ant-ort01-`): what a Claude subscription login stores, and so what
/// an agent may print when it reads its own credentials file.
pub const ANTHROPIC_OAUTH_TOKEN: &str = r"sk-ant-o[ar]t[0-9]{2}-[A-Za-z0-9_-]{40,200}";
/// OpenRouter API keys: `sk-or-v1-` and 64 hex digits.
pub const OPENROUTER_API_KEY: &str = r"(?-u:\b)sk-or-v1-[0-9a-f]{64}";
/// Langfuse secret keys: `sk-lf-` and a UUID (the `pk-lf-` public key is not secret).
pub const LANGFUSE_SECRET_KEY: &str =
    r"(?-u:\b)sk-lf-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
/// OpenAI API keys: legacy `sk-`, project `sk-proj-`, service-account
/// `sk-svcacct-` and admin `sk-admin-` keys (the body's class takes the
/// `svcacct-` and `admin-` parts); also any other `sk-` key of that shape.
///
/// Unlike confab's `sk-(?:proj-)?...`, the key must start a word (ASCII word
/// boundary): without it any identifier containing `sk-` followed by twenty
/// word characters is taken for a key, e.g. Claude Code's own
/// `"toolUseID":"task-output-waiting-1770847386522"` in the shipped fixtures.
/// A real key is preceded by a quote, a space, `=` or the like.
pub const OPENAI_API_KEY: &str = r"(?-u:\b)sk-(?:proj-)?[A-Za-z0-9_-]{20,200}";
/// xAI (Grok) API keys: `xai-` and some 80 letters and digits.
pub const XAI_API_KEY: &str = r"(?-u:\b)xai-[A-Za-z0-9]{60,120}";
/// Groq API keys: `gsk_` and some 52 letters and digits.
pub const GROQ_API_KEY: &str = r"(?-u:\b)gsk_[A-Za-z0-9]{48,64}";
/// Hugging Face user access tokens: `hf_` and 34 or more letters and digits.
/// The run of at least 34 without `_` keeps it off identifiers such as
/// `hf_hub_download` or `hf_token_path`.
pub const HUGGINGFACE_TOKEN: &str = r"(?-u:\b)hf_[A-Za-z0-9]{34,}";
/// LangSmith API keys: `lsv2_pt_` (personal) or `lsv2_sk_` (service), 32
/// hex digits, `_`, 10 hex digits.
pub const LANGSMITH_API_KEY: &str = r"(?-u:\b)lsv2_(?:pt|sk)_[0-9a-f]{32}_[0-9a-f]{10}";
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
/// GitHub fine-grained personal access tokens: `github_pat_`, 22
/// characters, `_`, 59 characters. The class takes `_`: confab's
/// `[A-Za-z0-9]` stopped at that underscore and let the token's second, longer
/// half through.
pub const GITHUB_PAT_FINE_GRAINED: &str = r"github_pat_[A-Za-z0-9_]{22,255}";
/// GitLab personal access tokens: `glpat-` and 20 or more base64url
/// characters (newer ones carry a `.`-separated routing suffix).
pub const GITLAB_PAT: &str = r"(?-u:\b)glpat-[A-Za-z0-9_.-]{20,}";
/// GitLab pipeline trigger (`glptt-`), deploy (`gldt-`) and runner
/// authentication (`glrt-`) tokens, the ones pasted into CI set-up commands.
pub const GITLAB_OTHER_TOKEN: &str = r"(?-u:\b)gl(?:ptt|dt|rt)-[A-Za-z0-9_.-]{20,}";
/// JSON Web Tokens (header and payload both start with `{"`, base64url `eyJ`).
pub const JWT: &str = r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+";
/// Mapbox secret tokens: `sk.` and a base64url JSON payload (`eyJ`), `.`, a
/// signature. Only two segments, so [`JWT`] does not take them; the `pk.`
/// public tokens are meant to be published.
pub const MAPBOX_SECRET_TOKEN: &str = r"(?-u:\b)sk\.eyJ[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}";
/// 1Password service-account tokens: `ops_` and base64 JSON (`eyJ`).
pub const ONEPASSWORD_SERVICE_TOKEN: &str = r"(?-u:\b)ops_eyJ[A-Za-z0-9+/=_-]{100,}";
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
/// Every other PEM-armoured private key, across lines: `ENCRYPTED PRIVATE
/// KEY` (PKCS#8), `DSA PRIVATE KEY`, `PGP PRIVATE KEY BLOCK` and any other
/// upper-case label ending in `PRIVATE KEY`. Both armour lines are required,
/// so a lone `-----BEGIN ... PRIVATE KEY-----` quoted in prose is left
/// alone; the label is one line of `[A-Z0-9 ]`, and the lazy body stops at
/// the first end line (a mismatched end label can only widen the span).
pub const OTHER_PRIVATE_KEY: &str = r"(?s)-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----.*?-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----";
/// The `private_key_id` of a GCP service-account key in JSON text, e.g. a
/// `cat key.json` inside a tool result (the JSON key itself is a sensitive
/// field when the line's own JSON holds it). The quotes may be escaped, as
/// in JSON held in a JSON string; group 1 is the 40 hex digits alone.
pub const GCP_PRIVATE_KEY_ID: &str =
    r#"private_key_id\\*["']?\s*[:=]\s*\\*["']?([0-9a-f]{40})(?-u:\b)"#;
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
/// Slack incoming-webhook and workflow URLs: anyone holding the path can
/// post to the channel. Group 2 is the path after the kind, so the host
/// stays readable.
pub const SLACK_WEBHOOK_URL: &str =
    r"(https://hooks\.slack\.com/(?:services|workflows|triggers)/)([A-Za-z0-9_/-]{20,})";
/// Discord webhook URLs; group 2 is the webhook's token (after its numeric id).
pub const DISCORD_WEBHOOK_URL: &str =
    r"(https://(?:[a-z]+\.)?discord(?:app)?\.com/api/webhooks/[0-9]{15,22}/)([A-Za-z0-9_-]{60,})";
/// Stripe secret keys.
pub const STRIPE_SECRET_KEY: &str = r"sk_(?:live|test)_[0-9a-zA-Z]{24,}";
/// Stripe restricted keys.
pub const STRIPE_RESTRICTED_KEY: &str = r"rk_(?:live|test)_[0-9a-zA-Z]{24,}";
/// Webhook signing secrets of Stripe and of the Standard Webhooks services
/// (Svix, Clerk, Resend...): `whsec_` and base64.
pub const WEBHOOK_SIGNING_SECRET: &str = r"(?-u:\b)whsec_[A-Za-z0-9+/=]{24,}";
/// Google API keys.
pub const GOOGLE_API_KEY: &str = r"AIza[0-9A-Za-z_-]{35}";
/// Google OAuth client secrets: `GOCSPX-` and 28 base64url characters.
pub const GOOGLE_OAUTH_CLIENT_SECRET: &str = r"GOCSPX-[A-Za-z0-9_-]{28}";
/// Google OAuth access tokens: `ya29.` and a long base64url body; the
/// `ya29.` prefix is specific to Google's token service.
pub const GOOGLE_OAUTH_ACCESS_TOKEN: &str = r"(?-u:\b)ya29\.[A-Za-z0-9_-]{30,}";
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
/// Confab API keys: `cfb_` and 40 base64url characters (`-` and `_`
/// included: confab's `[A-Za-z0-9]{40}` let a key holding one through).
pub const CONFAB_API_KEY: &str = r"cfb_[A-Za-z0-9_-]{40}";
/// Azure storage account keys in a connection string (`AccountKey=`, 64
/// bytes of base64: 86 characters and `==`); group 1 is the key alone.
pub const AZURE_STORAGE_ACCOUNT_KEY: &str = r"AccountKey=([A-Za-z0-9+/]{86}==)";
/// DigitalOcean personal access (`dop_v1_`), OAuth (`doo_v1_`) and refresh
/// (`dor_v1_`) tokens: 64 hex digits.
pub const DIGITALOCEAN_TOKEN: &str = r"(?-u:\b)do[por]_v1_[0-9a-f]{64}";
/// Databricks personal access tokens: `dapi` and 32 hex digits (some carry a
/// `-<n>` suffix). The word boundary keeps it off `rapidapi...`.
pub const DATABRICKS_TOKEN: &str = r"(?-u:\b)dapi[0-9a-f]{32}(?:-[0-9]+)?";
/// Shopify admin API access (`shpat_`), custom-app (`shpca_`), private-app
/// (`shppa_`) tokens and shared secrets (`shpss_`): 32 hex digits.
pub const SHOPIFY_TOKEN: &str = r"(?-u:\b)shp(?:at|ca|pa|ss)_[0-9a-fA-F]{32}";
/// Square access tokens (`sq0atp-`) and OAuth secrets (`sq0csp-`).
pub const SQUARE_TOKEN: &str = r"(?-u:\b)sq0(?:atp|csp)-[0-9A-Za-z_-]{22,60}";
/// Atlassian (Jira, Confluence, Bitbucket) API tokens: `ATATT3` and some
/// 180 base64url characters.
pub const ATLASSIAN_API_TOKEN: &str = r"(?-u:\b)ATATT3[A-Za-z0-9_=-]{100,}";
/// Linear API keys: `lin_api_` and 40 letters and digits.
pub const LINEAR_API_KEY: &str = r"(?-u:\b)lin_api_[A-Za-z0-9]{40}";
/// Postman API keys: `PMAK-`, 24 hex digits, `-`, 34 hex digits.
pub const POSTMAN_API_KEY: &str = r"(?-u:\b)PMAK-[0-9a-f]{24}-[0-9a-f]{34}";
/// Sentry organization auth tokens (`sntrys_` and base64 JSON, so the JWT
/// literal `eyJ` gates them) and user auth tokens (`sntryu_` and 64 hex
/// digits).
pub const SENTRY_TOKEN: &str = r"(?-u:\b)sntry(?:s_eyJ[A-Za-z0-9+/=_-]{60,}|u_[0-9a-f]{64})";
/// Grafana service-account tokens (`glsa_`, 32 letters and digits, `_`, 8
/// hex digits), Grafana Cloud access-policy tokens (`glc_` and base64) and
/// legacy API keys (base64 of `{"k":"`, so `eyJrIjoi`).
pub const GRAFANA_TOKEN: &str = r"(?-u:\b)(?:glsa_[A-Za-z0-9]{32}_[0-9a-fA-F]{8}|glc_[A-Za-z0-9+/]{32,}={0,2}|eyJrIjoi[A-Za-z0-9+/]{40,}={0,2})";
/// Doppler service, personal, CLI, service-account, SCIM and audit tokens:
/// `dp.<kind>.` (a service token may name its config), 40 or more letters
/// and digits.
pub const DOPPLER_TOKEN: &str =
    r"(?-u:\b)dp\.(?:st|pt|ct|sa|scim|audit)\.(?:[A-Za-z0-9_-]{2,35}\.)?[A-Za-z0-9]{40,}";
/// HashiCorp Vault service tokens (`hvs.` and base64url; batch tokens are
/// `hvb.`, much rarer and left to the Bearer and field rules).
pub const VAULT_TOKEN: &str = r"(?-u:\b)hvs\.[A-Za-z0-9_-]{24,}";
/// Supabase personal access tokens: `sbp_` and 40 hex digits.
pub const SUPABASE_TOKEN: &str = r"(?-u:\b)sbp_[0-9a-f]{40}";
/// A password given to a MySQL client on its command line (`mysql`,
/// `mysqldump`, `mysqladmin`...): `-p<password>` glued to the flag, or
/// `--password=<password>`, within the same command (no `|`, `;` or `&` in
/// between). Group 1 is the password, quotes included; a bare `-p` (the
/// client prompts) and `-p$VAR` (no secret in the text) are left alone.
pub const MYSQL_CLI_PASSWORD: &str = r#"(?-u:\b)mysql[a-z]*[^\r\n|;&]*?[ \t](?:-p|--password=)("[^"$\r\n][^"\r\n]*"|'[^'\r\n]*'|[^\s"'|;&$][^\s"'|;&]*)"#;
/// `PGPASSWORD=<password>`, the usual way to hand psql a password in one
/// command; group 1 is the password (`$VAR` references are left alone).
pub const PGPASSWORD_ASSIGNMENT: &str =
    r#"(?-u:\b)PGPASSWORD=("[^"$\r\n][^"\r\n]*"|'[^'\r\n]*'|[^\s"'|;&$][^\s"'|;&]*)"#;
/// Bearer tokens (confab v0.17.3's shape): `Bearer`, whitespace, 20 or more
/// token characters. Group 1 is the token, so `Bearer` stays readable, and a
/// token that an earlier rule recognised keeps that rule's type (rules
/// earlier in the list win an overlap).
pub const BEARER_TOKEN: &str = r"Bearer\s+([A-Za-z0-9_.~+/=-]{20,})";
/// HTTP Basic credentials in an `Authorization` header, whether written as
/// a header (`Authorization: Basic ...`) or as a quoted key and value
/// (`"Authorization": "Basic ..."`). Group 1 is the base64 `user:password`;
/// it must have an upper-case letter, digit, `+` or `/` after its first
/// character, which base64 of text always has and English words do not
/// (`Authorization: Basic authentication` is left alone).
pub const BASIC_AUTH_HEADER: &str = r#"[Aa]uthorization\\*["']?\s*[:=]\s*\\*["']?(?:Basic|basic|BASIC)\s+([A-Za-z0-9+/][a-z]*[A-Z0-9+/][A-Za-z0-9+/]{6,}={0,2})"#;
/// `Cookie:` and `Set-Cookie:` header values (also `"Cookie": "..."` in
/// JSON text). Group 2 is the value, which must start with `name=` (a
/// cookie-name token: not `$`, `{` or a quote, so `cookie: ${c}` and
/// `cookie: req.headers.cookie` in code are left alone); it runs to the end
/// of the line or to a quote, so a header quoted in a shell command ends
/// where the command's quote does.
pub const COOKIE_HEADER: &str = r#"(?-u:\b)((?:[Ss]et-)?[Cc]ookie\\*["']?[ \t]*:[ \t]*\\*["']?)([A-Za-z0-9_.!#%&*+^|~-]+=[^\r\n"'`\\]+)"#;

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
    pub fn to_config(self) -> RedactionPattern {
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

/// The defaults, in application order: the field rule, then the keys and
/// tokens known by their own prefix (each family's specific shapes before
/// its general one), then the rules that know a secret by its context (a
/// command-line flag, a header), last so that a token they hold which an
/// earlier rule recognises keeps that rule's type.
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
    value(
        "Anthropic Admin API Key",
        "anthropic_admin_key",
        ANTHROPIC_ADMIN_KEY,
        &["sk-"],
    ),
    value(
        "Anthropic OAuth Token",
        "anthropic_oauth_token",
        ANTHROPIC_OAUTH_TOKEN,
        &["sk-"],
    ),
    value(
        "OpenRouter API Key",
        "openrouter_key",
        OPENROUTER_API_KEY,
        &["sk-"],
    ),
    value(
        "Langfuse Secret Key",
        "langfuse_key",
        LANGFUSE_SECRET_KEY,
        &["sk-"],
    ),
    value("OpenAI API Key", "api_key", OPENAI_API_KEY, &["sk-"]),
    value("xAI API Key", "xai_key", XAI_API_KEY, &["xai-"]),
    value("Groq API Key", "groq_key", GROQ_API_KEY, &["gsk_"]),
    value(
        "Hugging Face Token",
        "huggingface_token",
        HUGGINGFACE_TOKEN,
        &["hf_"],
    ),
    value(
        "LangSmith API Key",
        "langsmith_key",
        LANGSMITH_API_KEY,
        &["lsv2_"],
    ),
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
    value(
        "GitLab Personal Access Token",
        "gitlab_token",
        GITLAB_PAT,
        &["glp"],
    ),
    value(
        "GitLab Trigger, Deploy or Runner Token",
        "gitlab_token",
        GITLAB_OTHER_TOKEN,
        &["glp", "gldt-", "glrt-"],
    ),
    value("JWT Token", "jwt", JWT, &["eyJ"]),
    value(
        "Mapbox Secret Token",
        "mapbox_token",
        MAPBOX_SECRET_TOKEN,
        &["eyJ"],
    ),
    value(
        "1Password Service Account Token",
        "onepassword_token",
        ONEPASSWORD_SERVICE_TOKEN,
        &["eyJ"],
    ),
    value(
        "RSA Private Key",
        "private_key",
        RSA_PRIVATE_KEY,
        &["PRIVATE KEY"],
    ),
    value(
        "EC Private Key",
        "private_key",
        EC_PRIVATE_KEY,
        &["PRIVATE KEY"],
    ),
    value(
        "OpenSSH Private Key",
        "private_key",
        OPENSSH_PRIVATE_KEY,
        &["PRIVATE KEY"],
    ),
    value(
        "Generic Private Key (PKCS#8)",
        "private_key",
        PKCS8_PRIVATE_KEY,
        &["PRIVATE KEY"],
    ),
    value(
        "Other Private Key Block",
        "private_key",
        OTHER_PRIVATE_KEY,
        &["PRIVATE KEY"],
    ),
    group(
        "GCP Service Account Key Id",
        "gcp_key_id",
        GCP_PRIVATE_KEY_ID,
        1,
        &["private_key_id"],
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
    group(
        "Slack Webhook URL",
        "slack_webhook",
        SLACK_WEBHOOK_URL,
        2,
        &["://"],
    ),
    group(
        "Discord Webhook URL",
        "discord_webhook",
        DISCORD_WEBHOOK_URL,
        2,
        &["://"],
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
        "Webhook Signing Secret",
        "webhook_secret",
        WEBHOOK_SIGNING_SECRET,
        &["whsec_"],
    ),
    value(
        "Google API Key",
        "google_api_key",
        GOOGLE_API_KEY,
        &["AIza"],
    ),
    value(
        "Google OAuth Client Secret",
        "google_oauth_secret",
        GOOGLE_OAUTH_CLIENT_SECRET,
        &["GOCSPX-"],
    ),
    value(
        "Google OAuth Access Token",
        "google_oauth_token",
        GOOGLE_OAUTH_ACCESS_TOKEN,
        &["ya29."],
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
    group(
        "Azure Storage Account Key",
        "azure_storage_key",
        AZURE_STORAGE_ACCOUNT_KEY,
        1,
        &["AccountKey="],
    ),
    value(
        "DigitalOcean Token",
        "digitalocean_token",
        DIGITALOCEAN_TOKEN,
        &["_v1_"],
    ),
    value(
        "Databricks Token",
        "databricks_token",
        DATABRICKS_TOKEN,
        &["dapi"],
    ),
    value("Shopify Token", "shopify_token", SHOPIFY_TOKEN, &["shp"]),
    value("Square Token", "square_token", SQUARE_TOKEN, &["sq0"]),
    value(
        "Atlassian API Token",
        "atlassian_token",
        ATLASSIAN_API_TOKEN,
        &["ATATT3"],
    ),
    value(
        "Linear API Key",
        "linear_key",
        LINEAR_API_KEY,
        &["lin_api_"],
    ),
    value(
        "Postman API Key",
        "postman_key",
        POSTMAN_API_KEY,
        &["PMAK-"],
    ),
    value(
        "Sentry Auth Token",
        "sentry_token",
        SENTRY_TOKEN,
        &["eyJ", "sntryu_"],
    ),
    value(
        "Grafana Token",
        "grafana_token",
        GRAFANA_TOKEN,
        &["glsa_", "glc_", "eyJ"],
    ),
    value("Doppler Token", "doppler_token", DOPPLER_TOKEN, &["dp."]),
    value(
        "HashiCorp Vault Token",
        "vault_token",
        VAULT_TOKEN,
        &["hvs."],
    ),
    value(
        "Supabase Access Token",
        "supabase_token",
        SUPABASE_TOKEN,
        &["sbp_"],
    ),
    group(
        "MySQL Command-Line Password",
        "password",
        MYSQL_CLI_PASSWORD,
        1,
        &["mysql"],
    ),
    group(
        "PGPASSWORD Assignment",
        "password",
        PGPASSWORD_ASSIGNMENT,
        1,
        &["PGPASSWORD"],
    ),
    group("Bearer Token", "bearer_token", BEARER_TOKEN, 1, &["Bearer"]),
    group(
        "Basic Authorization Header",
        "basic_auth",
        BASIC_AUTH_HEADER,
        1,
        &["uthorization"],
    ),
    group("Cookie Header", "cookie", COOKIE_HEADER, 2, &["ookie"]),
];

/// The defaults in the config's shape, in application order.
pub fn default_patterns() -> Vec<RedactionPattern> {
    DEFAULT_PATTERNS.iter().map(|d| d.to_config()).collect()
}
