//! Injected faults: the failures a test wants the next matching requests to
//! meet. A request takes the first fault in injection order whose path
//! prefix matches it; a fault is spent after `times` requests.

use std::collections::VecDeque;

use super::Fault;

/// What the fault asks of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Answer with this status (and `Retry-After`), without processing.
    Status {
        status: u16,
        retry_after_secs: Option<u64>,
    },
    /// Process and store, then drop the connection without an answer.
    LoseAnswer,
    /// Sleep this long, then process normally.
    Delay { millis: u64 },
    /// Process and store at once, then sleep this long before answering: a
    /// client that gives up first never learns that its chunk was stored.
    SlowAnswer { millis: u64 },
}

impl Action {
    /// How the request log names the fault that answered a request.
    pub fn label(&self) -> String {
        match self {
            Action::Status { status, .. } => format!("status {status}"),
            Action::LoseAnswer => "lose_answer".to_string(),
            Action::Delay { millis } => format!("delay {millis}ms"),
            Action::SlowAnswer { millis } => format!("slow answer {millis}ms"),
        }
    }
}

#[derive(Default)]
pub struct FaultQueue {
    pending: VecDeque<Fault>,
}

impl FaultQueue {
    pub fn push(&mut self, fault: Fault) {
        let times = match &fault {
            Fault::Status { times, .. }
            | Fault::LoseAnswer { times, .. }
            | Fault::Delay { times, .. }
            | Fault::SlowAnswer { times, .. } => *times,
        };
        if times > 0 {
            self.pending.push_back(fault);
        }
    }

    /// Consumes one use of the first fault that matches `path`.
    pub fn take(&mut self, path: &str) -> Option<Action> {
        let index = self.pending.iter().position(|f| {
            let prefix = match f {
                Fault::Status { path_prefix, .. }
                | Fault::LoseAnswer { path_prefix, .. }
                | Fault::Delay { path_prefix, .. }
                | Fault::SlowAnswer { path_prefix, .. } => path_prefix,
            };
            path.starts_with(prefix.as_str())
        })?;
        let (action, left) = match &mut self.pending[index] {
            Fault::Status {
                status,
                retry_after_secs,
                times,
                ..
            } => {
                *times -= 1;
                (
                    Action::Status {
                        status: *status,
                        retry_after_secs: *retry_after_secs,
                    },
                    *times,
                )
            }
            Fault::LoseAnswer { times, .. } => {
                *times -= 1;
                (Action::LoseAnswer, *times)
            }
            Fault::Delay { millis, times, .. } => {
                *times -= 1;
                (Action::Delay { millis: *millis }, *times)
            }
            Fault::SlowAnswer { millis, times, .. } => {
                *times -= 1;
                (Action::SlowAnswer { millis: *millis }, *times)
            }
        };
        if left == 0 {
            self.pending.remove(index);
        }
        Some(action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_fault_in_order() {
        let mut q = FaultQueue::default();
        q.push(Fault::Status {
            path_prefix: "/api/v1/sync/chunk".into(),
            status: 503,
            retry_after_secs: None,
            times: 2,
        });
        q.push(Fault::LoseAnswer {
            path_prefix: "/api/v1/sync/".into(),
            times: 1,
        });
        q.push(Fault::Delay {
            path_prefix: "/".into(),
            millis: 5,
            times: 0,
        });
        assert_eq!(q.take("/api/v1/sync/init"), Some(Action::LoseAnswer));
        assert_eq!(q.take("/api/v1/sync/init"), None);
        let status = Action::Status {
            status: 503,
            retry_after_secs: None,
        };
        assert_eq!(q.take("/api/v1/sync/chunk"), Some(status.clone()));
        assert_eq!(q.take("/api/v1/sync/chunk"), Some(status));
        assert_eq!(q.take("/api/v1/sync/chunk"), None);
    }
}
