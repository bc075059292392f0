//! `confab-host save <id or unique prefix>`: the session found among those
//! on disk, then synced exactly as `confab-host sync <its transcript>`.

use crate::Failure;
use confab_host::sessions;

pub const HELP: &str = "\
confab-host save <session id, or a prefix only it starts with> [sync flags]
    Find the session among those on disk (see list) and sync it, as
    `confab-host sync <its transcript>` does; takes the flags of sync
    (--json, --backend-url, --api-key, --timeout, --hostname, --username).
    A prefix several sessions start with, or an id no session has, is a
    usage error (exit 2) that names the candidates.";

/// The `sync` command line that saves the session `argv` names; `None`
/// when it asked for help (printed).
pub fn as_sync(argv: &[String]) -> Result<Option<Vec<String>>, Failure> {
    if argv.iter().any(|a| a == "-h" || a == "--help") {
        println!("{HELP}");
        return Ok(None);
    }
    let mut position = None;
    let mut i = 0;
    while i < argv.len() {
        if argv[i].starts_with('-') {
            if takes_value(&argv[i]) {
                i += 1;
            }
        } else if position.is_none() {
            position = Some(i);
        }
        i += 1;
    }
    let position = position.ok_or_else(|| {
        Failure::Usage("save needs a session id (try confab-host list, or save --help)".into())
    })?;
    let wanted = &argv[position];
    let sources = sessions::sources();
    let all = sessions::all_sessions(&sources);
    let found = sessions::matching(&all, wanted);
    let session = match found.as_slice() {
        [one] => *one,
        [] => {
            return Err(Failure::Usage(format!(
                "no session on disk has the id `{wanted}` (try confab-host list)"
            )))
        }
        many => {
            const SHOWN: usize = 5;
            let mut ids: Vec<&str> = many.iter().take(SHOWN).map(|s| s.id.as_str()).collect();
            let more = many.len().saturating_sub(SHOWN);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            ids.sort_unstable();
            return Err(Failure::Usage(format!(
                "`{wanted}` matches {} sessions: {}{more}; give more of the id",
                many.len(),
                ids.join(", ")
            )));
        }
    };
    let mut sync = vec![
        "sync".to_string(),
        session.transcript.to_string_lossy().into_owned(),
    ];
    sync.extend(
        argv.iter()
            .enumerate()
            .filter(|&(i, _)| i != position)
            .map(|(_, a)| a.clone()),
    );
    Ok(Some(sync))
}

/// Flags of `sync` that take the next argument as their value.
fn takes_value(flag: &str) -> bool {
    matches!(
        flag,
        "--backend-url" | "--api-key" | "--timeout" | "--hostname" | "--username"
    )
}
