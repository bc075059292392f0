//! The redactor (default patterns plus a custom one) over any line: no
//! panic, a line that was JSON is still JSON afterwards (markers replace
//! string contents, never the structure), and a line without anything to
//! redact comes back untouched.
#![no_main]

use confab_sync::core::config::{RedactionPattern, RedactionSettings};
use confab_sync::core::redact::{RedactionCounts, Redactor};
use libfuzzer_sys::fuzz_target;
use std::borrow::Cow;
use std::sync::OnceLock;

fn redactor() -> &'static Redactor {
    static R: OnceLock<Redactor> = OnceLock::new();
    R.get_or_init(|| {
        Redactor::new(&RedactionSettings {
            enabled: true,
            use_default_patterns: true,
            patterns: vec![RedactionPattern {
                name: "project".into(),
                pattern: Some("spot+er".into()),
                kind: "project".into(),
                ..Default::default()
            }],
        })
        .expect("the default patterns compile")
    })
}

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let mut counts = RedactionCounts::default();
    let out = redactor().redact_line(&line, &mut counts);
    match &out {
        Cow::Borrowed(_) => assert!(counts.is_empty()),
        Cow::Owned(redacted) => {
            if serde_json::from_str::<serde_json::Value>(&line).is_ok() {
                assert!(
                    serde_json::from_str::<serde_json::Value>(redacted).is_ok(),
                    "redaction broke the JSON of {line:?}: {redacted:?}"
                );
            }
        }
    }
});
