//! `confab-host list`: the sessions on disk, newest first, and how far each
//! is on the server per the engine's checkpoint in the state folder.

use super::{Flags, Selection};
use crate::{Failure, HostOptions};
use confab_host::sessions::{self, Details, OnServer, SessionFile};
use confab_sync::core::api_key::KeyGuard;
use confab_sync::core::timestamp::rfc3339_utc;
use serde_json::json;
use std::process::ExitCode;

pub const HELP: &str = "\
confab-host list [--json] [--since DURATION] [--project DIR]
    The sessions on disk ($CLAUDE_CONFIG_DIR/projects, else
    ~/.claude/projects), most recently active first: id (the shortest
    unique prefix of 8 or more characters; `save` takes it), when it
    started, its size (transcript and subagents), the lines on the server
    as of the last sync from this machine (from the checkpoint in the state
    folder; `+` when the transcript has grown since), the project folder
    and the first user message. Only the first lines of each transcript
    are read.
    --json             one JSON array on stdout, every field in full
    --since DURATION   only sessions active within it (90m, 12h, 7d)
    --project DIR      only the sessions of that project folder
    --state-dir DIR    the state folder to read checkpoints from (see --help)";

pub fn run(argv: &[String], host: &HostOptions, guard: &KeyGuard) -> Result<ExitCode, Failure> {
    let mut selection = Selection::default();
    let mut as_json = false;
    let mut flags = Flags::new(argv, "list --help");
    while let Some((flag, inline)) = flags.next_flag() {
        let mut value = || flags.value(flag, inline);
        if selection.take(flag, &mut value)? {
            continue;
        }
        match flag {
            "-h" | "--help" => {
                println!("{HELP}");
                return Ok(ExitCode::SUCCESS);
            }
            "--json" => as_json = true,
            other => {
                return Err(Failure::Usage(format!(
                    "unexpected argument `{other}` for list (try list --help)"
                )))
            }
        }
    }
    let sources = sessions::sources();
    let found = selection.sessions(&sources);
    let state = crate::state_dir(host);
    let rows: Vec<Row> = found
        .iter()
        .map(|s| Row {
            details: sessions::source_of(&sources, s)
                .map(|src| src.details(s))
                .unwrap_or_default(),
            on_server: state.as_deref().and_then(|d| sessions::on_server(d, s)),
            session: s,
        })
        .collect();
    let text = if as_json {
        json_rows(&rows)
    } else {
        table(&rows)
    };
    print!("{}", guard.hide(&text));
    Ok(ExitCode::SUCCESS)
}

struct Row<'a> {
    session: &'a SessionFile,
    details: Details,
    on_server: Option<OnServer>,
}

fn unix_seconds(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn json_rows(rows: &[Row]) -> String {
    let list: Vec<_> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.session.id,
                "provider": r.session.provider,
                "transcript": r.session.transcript,
                "folder": r.session.folder,
                "cwd": r.details.cwd,
                "started": r.details.started,
                "modified": rfc3339_utc(unix_seconds(r.session.modified)),
                "size": r.session.size,
                "first_user_message": r.details.first_user_message,
                "on_server": r.on_server.map(|o| json!({
                    "lines": o.lines,
                    "transcript_bytes": o.transcript_bytes,
                })),
            })
        })
        .collect();
    format!("{}\n", serde_json::Value::Array(list))
}

/// The shortest prefix of each id, 8 characters or more, that no other id shares.
fn short_ids(ids: &[&str]) -> Vec<usize> {
    let common = |a: &str, b: &str| a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    let mut sorted: Vec<(usize, &str)> = ids.iter().copied().enumerate().collect();
    sorted.sort_by(|a, b| a.1.cmp(b.1));
    let mut lengths = vec![8; ids.len()];
    for (k, &(i, id)) in sorted.iter().enumerate() {
        let mut need = 8;
        if k > 0 {
            need = need.max(common(id, sorted[k - 1].1) + 1);
        }
        if let Some(next) = sorted.get(k + 1) {
            need = need.max(common(id, next.1) + 1);
        }
        lengths[i] = need.min(id.len());
    }
    lengths
}

/// `~/x` for a path under HOME.
fn tilde(path: &str) -> String {
    match std::env::var("HOME") {
        Ok(home) if !home.is_empty() && path.starts_with(&format!("{home}/")) => {
            format!("~{}", &path[home.len()..])
        }
        _ => path.to_string(),
    }
}

/// Cut to `max` characters, `...` at the end when cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max.saturating_sub(3)).collect();
    format!("{kept}...")
}

fn table(rows: &[Row]) -> String {
    if rows.is_empty() {
        return "no sessions found\n".to_string();
    }
    let ids: Vec<&str> = rows.iter().map(|r| r.session.id.as_str()).collect();
    let lengths = short_ids(&ids);
    let id_width = lengths.iter().copied().max().unwrap_or(8).max(2);
    let mut out = format!(
        "{:<id_width$}  {:<16}  {:>9}  {:>10}  {:<28}  FIRST MESSAGE\n",
        "ID", "STARTED", "SIZE", "ON SERVER", "PROJECT"
    );
    for (r, len) in rows.iter().zip(lengths) {
        let started = r
            .details
            .started
            .as_deref()
            .map(|t| t.get(..16).unwrap_or(t).replace('T', " "))
            .unwrap_or_else(|| "-".into());
        let on_server = match r.on_server {
            Some(o) => {
                let grew = r.session.transcript_size > o.transcript_bytes;
                format!("{}{}", o.lines, if grew { "+" } else { "" })
            }
            None => "-".into(),
        };
        let project = r
            .details
            .cwd
            .clone()
            .unwrap_or_else(|| r.session.folder.to_string_lossy().into_owned());
        out.push_str(&format!(
            "{:<id_width$}  {:<16}  {:>9}  {:>10}  {:<28}  {}\n",
            &r.session.id[..len],
            started,
            super::size(r.session.size),
            on_server,
            cut(&tilde(&project), 28),
            cut(r.details.first_user_message.as_deref().unwrap_or("-"), 60),
        ));
    }
    out.push_str(&format!(
        "{} session(s); `confab-host save <id>` syncs one, `confab-host sync --all` all of them\n",
        rows.len()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_are_unique_and_at_least_8() {
        let ids = ["aaaaaaaa11", "aaaaaaaa12", "bbbbbbbbbbbb", "abc"];
        assert_eq!(short_ids(&ids), [10, 10, 8, 3]);
    }
}
