//! Per-user token buckets, the shape of the real server's upload limiter
//! (backend-api.md: "a token bucket: a burst of about 2000 requests,
//! refilled at under 3 per second").

use std::collections::HashMap;
use std::time::Instant;

use super::RateLimit;

struct Bucket {
    tokens: f64,
    last: Instant,
}

pub struct RateLimiter {
    config: RateLimit,
    buckets: HashMap<u64, Bucket>,
}

impl RateLimiter {
    pub fn new(config: RateLimit) -> Self {
        RateLimiter {
            config,
            buckets: HashMap::new(),
        }
    }

    /// Takes one token from `user`'s bucket. `Err(secs)` when it is empty:
    /// the whole seconds until a token is back, for `Retry-After`.
    pub fn take(&mut self, user: u64, now: Instant) -> Result<(), u64> {
        let burst = f64::from(self.config.burst);
        let rate = self.config.per_second;
        let bucket = self.buckets.entry(user).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        if rate.is_finite() && rate > 0.0 {
            bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        }
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = if rate.is_finite() && rate > 0.0 {
            ((1.0 - bucket.tokens) / rate).ceil()
        } else {
            // A bucket that never refills: say "much later", not "never".
            3600.0
        };
        Err((wait as u64).max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill() {
        let mut limiter = RateLimiter::new(RateLimit {
            burst: 2,
            per_second: 0.5,
        });
        let t0 = Instant::now();
        assert!(limiter.take(1, t0).is_ok());
        assert!(limiter.take(1, t0).is_ok());
        assert_eq!(limiter.take(1, t0), Err(2));
        // Another user has a bucket of their own.
        assert!(limiter.take(2, t0).is_ok());
        // One token is back after 2 s at 0.5/s.
        assert!(limiter.take(1, t0 + Duration::from_secs(2)).is_ok());
        assert!(limiter.take(1, t0 + Duration::from_secs(2)).is_err());
    }
}
