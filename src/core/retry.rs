//! When to retry a request and how long to wait (../shared/docs/backend-api.md,
//! "Status codes"). Pure decisions; the client does the waiting.

use std::time::Duration;

/// 429: at most this many retries.
pub const MAX_RATE_LIMIT_RETRIES: u32 = 5;
/// Transient failures (5xx, transport) of requests that are safe to repeat.
pub const MAX_TRANSIENT_RETRIES: u32 = 4;
/// Backoff starts here and doubles...
pub const BACKOFF_START: Duration = Duration::from_secs(1);
/// ...up to this cap.
pub const BACKOFF_CAP: Duration = Duration::from_secs(60);
/// A `Retry-After` is honoured from 1 s up to this (as confab does); outside
/// that range it is ignored for the backoff schedule, so neither a zero that
/// would hammer the server nor an absurd wait is taken on a proxy's word.
/// A wait longer than the client's wait budget gives up instead.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(3600);

/// Whether repeating a request can store something twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// init, validate, summary PATCH, events: repeating is harmless.
    Safe,
    /// A chunk: after an answer that may have been lost, the engine must
    /// re-read the server's state instead of resending blindly.
    ReadStateFirst,
    /// A question whose answer can wait for the next sync (the capabilities
    /// probe): one attempt, never a wait.
    Once,
}

/// What happened to one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// No connection was made: nothing reached the server.
    NotConnected,
    /// The answer was lost: the server may have processed the request.
    AnswerLost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    RetryAfter(Duration),
    GiveUp,
}

/// Decide after attempt number `retries_so_far + 1` failed.
/// `jitter` in 0..1000 spreads clients that failed together.
pub fn decide(outcome: Outcome, repeat: Repeat, retries_so_far: u32, jitter: u64) -> Decision {
    if repeat == Repeat::Once {
        return Decision::GiveUp;
    }
    match outcome {
        Outcome::Status {
            status: 429,
            retry_after,
        } => {
            if retries_so_far >= MAX_RATE_LIMIT_RETRIES {
                return Decision::GiveUp;
            }
            let honoured = retry_after.filter(|w| (BACKOFF_START..=RETRY_AFTER_MAX).contains(w));
            Decision::RetryAfter(honoured.unwrap_or_else(|| backoff(retries_so_far)))
        }
        Outcome::Status { status, .. } if status >= 500 && repeat == Repeat::Safe => {
            transient(retries_so_far, jitter)
        }
        Outcome::AnswerLost if repeat == Repeat::Safe => transient(retries_so_far, jitter),
        Outcome::NotConnected => transient(retries_so_far, jitter),
        _ => Decision::GiveUp,
    }
}

fn transient(retries_so_far: u32, jitter: u64) -> Decision {
    if retries_so_far >= MAX_TRANSIENT_RETRIES {
        return Decision::GiveUp;
    }
    Decision::RetryAfter(with_jitter(backoff(retries_so_far), jitter))
}

/// 1 s, 2 s, 4 s, ... capped at 60 s.
pub fn backoff(retries_so_far: u32) -> Duration {
    let factor = 1u32.checked_shl(retries_so_far.min(16)).unwrap_or(u32::MAX);
    BACKOFF_START.saturating_mul(factor).min(BACKOFF_CAP)
}

/// Add up to 25% of `wait`, from `jitter` in 0..1000.
pub fn with_jitter(wait: Duration, jitter: u64) -> Duration {
    wait + wait.mul_f64((jitter % 1000) as f64 / 4000.0)
}

/// `Retry-After: <seconds>` (the HTTP-date form is not used by the backend).
pub fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_waits_retry_after_then_gives_up_after_five() {
        let o = Outcome::Status {
            status: 429,
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(
            decide(o, Repeat::ReadStateFirst, 0, 0),
            Decision::RetryAfter(Duration::from_secs(3))
        );
        assert_eq!(
            decide(o, Repeat::Safe, 4, 0),
            Decision::RetryAfter(Duration::from_secs(3))
        );
        assert_eq!(decide(o, Repeat::Safe, 5, 0), Decision::GiveUp);
    }

    #[test]
    fn rate_limit_without_retry_after_backs_off_doubling_to_the_cap() {
        let o = Outcome::Status {
            status: 429,
            retry_after: None,
        };
        let waits: Vec<_> = (0..5)
            .map(|n| match decide(o, Repeat::Safe, n, 0) {
                Decision::RetryAfter(d) => d.as_secs(),
                Decision::GiveUp => 0,
            })
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16]);
        assert_eq!(backoff(10), BACKOFF_CAP);
    }

    #[test]
    fn retry_after_is_honoured_from_1_to_3600_seconds_only() {
        let wait = |secs: u64, retries_so_far: u32| {
            let o = Outcome::Status {
                status: 429,
                retry_after: Some(Duration::from_secs(secs)),
            };
            match decide(o, Repeat::Safe, retries_so_far, 0) {
                Decision::RetryAfter(d) => d.as_secs(),
                Decision::GiveUp => u64::MAX,
            }
        };
        assert_eq!(wait(1, 0), 1);
        assert_eq!(wait(120, 0), 120, "not cut to the backoff cap");
        assert_eq!(wait(3600, 0), 3600);
        // Outside: the backoff schedule, as if there were none.
        assert_eq!(wait(0, 0), 1);
        assert_eq!(wait(0, 3), 8);
        assert_eq!(wait(3601, 2), 4);
        assert_eq!(wait(u64::MAX / 2, 4), 16);
        assert_eq!(wait(120, MAX_RATE_LIMIT_RETRIES), u64::MAX, "gives up");
    }

    #[test]
    fn client_errors_are_never_retried() {
        for status in [400, 401, 403, 404, 409, 413, 415] {
            let o = Outcome::Status {
                status,
                retry_after: None,
            };
            assert_eq!(decide(o, Repeat::Safe, 0, 0), Decision::GiveUp, "{status}");
        }
    }

    #[test]
    fn a_chunk_whose_answer_may_be_lost_is_not_resent_blindly() {
        let lost = Outcome::AnswerLost;
        let e500 = Outcome::Status {
            status: 503,
            retry_after: None,
        };
        assert_eq!(decide(lost, Repeat::ReadStateFirst, 0, 0), Decision::GiveUp);
        assert_eq!(decide(e500, Repeat::ReadStateFirst, 0, 0), Decision::GiveUp);
        assert!(matches!(
            decide(lost, Repeat::Safe, 0, 0),
            Decision::RetryAfter(_)
        ));
        // Not connected: nothing was stored, so even a chunk may go again.
        assert!(matches!(
            decide(Outcome::NotConnected, Repeat::ReadStateFirst, 0, 0),
            Decision::RetryAfter(_)
        ));
    }

    #[test]
    fn a_once_request_is_never_retried() {
        for o in [
            Outcome::NotConnected,
            Outcome::AnswerLost,
            Outcome::Status {
                status: 429,
                retry_after: Some(Duration::from_secs(1)),
            },
            Outcome::Status {
                status: 503,
                retry_after: None,
            },
        ] {
            assert_eq!(decide(o, Repeat::Once, 0, 0), Decision::GiveUp, "{o:?}");
        }
    }

    #[test]
    fn jitter_adds_at_most_a_quarter() {
        let d = Duration::from_secs(4);
        assert_eq!(with_jitter(d, 0), d);
        assert!(with_jitter(d, 999) <= Duration::from_secs(5));
    }

    #[test]
    fn retry_after_parses_seconds_only() {
        assert_eq!(parse_retry_after(Some(" 7 ")), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
        assert_eq!(parse_retry_after(None), None);
    }
}
