//! How long to wait before the next try: exponential backoff with jitter, or the server's
//! `Retry-After` (seconds or an HTTP date), capped.
//!
//! Pure functions of the policy, the try number and a random draw, so the arithmetic is tested
//! without any clock or server.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::RngExt;

use super::RetryPolicy;

/// No computed backoff is longer than this, whatever the policy says (guards against
/// overflow from a huge multiplier).
const MAX_BACKOFF: Duration = Duration::from_secs(24 * 60 * 60);

/// The wait before the next try, after `failed_tries` tries (≥ 1) all failed transiently.
///
/// The server's `Retry-After`, when it sent one, wins over the backoff, cut to
/// [`RetryPolicy::max_retry_after`].
pub(crate) fn next_wait(
    policy: &RetryPolicy,
    failed_tries: u32,
    retry_after: Option<Duration>,
) -> Duration {
    match retry_after {
        Some(asked) => asked.min(policy.max_retry_after),
        None => {
            let draw = if policy.jitter > 0.0 {
                rand::rng().random_range(-1.0..=1.0)
            } else {
                0.0
            };
            backoff(policy, failed_tries, draw)
        }
    }
}

/// `initial × multiplier^(failed_tries − 1)`, moved by `draw × jitter` of itself.
///
/// `draw` is a random number in `[-1, 1]`; nonsense settings (negative or non-finite multiplier
/// or jitter) fall back to no growth and no jitter rather than panicking.
pub(crate) fn backoff(policy: &RetryPolicy, failed_tries: u32, draw: f64) -> Duration {
    let multiplier = if policy.multiplier.is_finite() && policy.multiplier >= 0.0 {
        policy.multiplier
    } else {
        1.0
    };
    let jitter = if policy.jitter.is_finite() {
        policy.jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let exponent = i32::try_from(failed_tries.saturating_sub(1)).unwrap_or(i32::MAX);
    let factor = multiplier.powi(exponent) * (1.0 + draw.clamp(-1.0, 1.0) * jitter);
    let seconds = policy.initial_backoff.as_secs_f64() * factor;
    Duration::try_from_secs_f64(seconds)
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF)
}

/// Reads a `Retry-After` value: delay-seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, read relative to `now`; a past date means no wait).
/// Anything else is ignored.
pub(crate) fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Absurdly long digit strings saturate instead of being ignored.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let when = DateTime::parse_from_rfc2822(value).ok()?;
    let delta = when.with_timezone(&Utc) - now;
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            multiplier: 2.0,
            jitter: 0.1,
            max_retry_after: Duration::from_secs(30),
        }
    }

    #[test]
    fn backoff_doubles_after_each_failed_try_without_jitter() {
        let p = policy();
        assert_eq!(backoff(&p, 1, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(&p, 2, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(&p, 3, 0.0), Duration::from_secs(4));
    }

    #[test]
    fn jitter_moves_the_backoff_by_at_most_its_fraction() {
        let p = policy();
        assert_eq!(backoff(&p, 2, 1.0), Duration::from_millis(2200));
        assert_eq!(backoff(&p, 2, -1.0), Duration::from_millis(1800));
        for _ in 0..200 {
            let wait = next_wait(&p, 2, None);
            assert!(
                wait >= Duration::from_millis(1800) && wait <= Duration::from_millis(2200),
                "{wait:?}"
            );
        }
    }

    #[test]
    fn nonsense_policy_values_do_not_panic() {
        let mut p = policy();
        p.multiplier = f64::NAN;
        p.jitter = f64::INFINITY;
        assert_eq!(backoff(&p, 3, 1.0), Duration::from_secs(1));
        p.multiplier = 1e300;
        assert_eq!(backoff(&p, 40, 0.0), MAX_BACKOFF);
    }

    #[test]
    fn retry_after_wins_over_backoff_but_is_capped() {
        let p = policy();
        assert_eq!(
            next_wait(&p, 1, Some(Duration::from_secs(0))),
            Duration::ZERO
        );
        assert_eq!(
            next_wait(&p, 1, Some(Duration::from_secs(5))),
            Duration::from_secs(5)
        );
        assert_eq!(
            next_wait(&p, 1, Some(Duration::from_secs(3600))),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:28:00 GMT")
            .map(|d| d.with_timezone(&Utc))
            .expect("test date parses");
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:45 GMT", now),
            Some(Duration::from_secs(45))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means retry now"
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
    }
}
