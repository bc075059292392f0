//! Processes: whether the agent still lives, and starting the daemon
//! detached from the hook that starts it.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// When process `pid` started (field 22 of `/proc/<pid>/stat`, in clock
/// ticks since boot); `None` where there is no `/proc`.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The parent of process `pid` (field 4 of `/proc/<pid>/stat`); `None`
/// where there is no `/proc`, or for init.
pub fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace()
        .nth(1)?
        .parse()
        .ok()
        .filter(|&p: &u32| p > 1)
}

/// Whether the process that registered as `pid` (started at `start`, when
/// known) still runs. A zombie (exited, not yet reaped) does not.
pub fn is_alive(pid: u32, start: Option<u64>) -> bool {
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        let Some(close) = stat.rfind(')') else {
            return false;
        };
        let mut fields = stat[close + 1..].split_whitespace();
        if matches!(fields.next(), Some("Z" | "X")) {
            return false;
        }
        let started = fields.nth(18).and_then(|t| t.parse::<u64>().ok());
        return match (start, started) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
    }
    if Path::new("/proc/self/stat").exists() {
        // /proc works here and has no such process.
        return false;
    }
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 checks for existence and permission only.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Start `command` in a session of its own (setsid: no controlling
/// terminal, not in the hook's process group, so neither a hangup nor the
/// agent killing its hook's group stops it), stdin from /dev/null, stdout
/// and stderr appended to `log`. Returns its pid; nobody waits for it.
pub fn spawn_detached(mut command: Command, log: &Path) -> std::io::Result<u32> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let err = out.try_clone()?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    // SAFETY: setsid is async-signal-safe, as pre_exec requires.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn()?;
    Ok(child.id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_lives_and_a_reaped_child_does_not() {
        let me = std::process::id();
        assert!(is_alive(me, start_time(me)));
        assert!(
            !is_alive(me, start_time(me).map(|t| t + 1)),
            "another start time is another process"
        );
        if Path::new("/proc/self/stat").exists() {
            assert_eq!(parent_of(me), Some(std::os::unix::process::parent_id()));
        }
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!is_alive(pid, None));
    }
}
