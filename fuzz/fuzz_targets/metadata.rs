//! Metadata extraction over any line: no panic, every agent id found is a
//! safe file-name part (never `..`, `/` or an absolute path), text is cut
//! within its limit, and the git helpers accept any file content.
#![no_main]

use confab_sync::core::metadata::{
    agent_ids, git_head_branch, git_origin_url, is_valid_agent_id, line_uuid, sanitize_user_message,
    scan_line, strip_url_credentials, Wants,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let wants = Wants {
        first_user_message: true,
        git_branch: true,
        cwd: true,
    };
    let facts = scan_line(&line, wants);
    for id in &facts.agent_ids {
        assert!(is_valid_agent_id(id), "{id:?}");
    }
    let mut ids = Vec::new();
    agent_ids(&line, &mut ids);
    for id in &ids {
        assert!(is_valid_agent_id(id), "{id:?}");
    }
    let _ = line_uuid(&line);
    assert!(sanitize_user_message(&line, 64).len() <= 64);
    let _ = git_origin_url(&line);
    let _ = git_head_branch(&line);
    let _ = strip_url_credentials(&line);
});
