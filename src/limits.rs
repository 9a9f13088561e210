//! Attempt limits, as plain rules over a per-user record (NIST SP 800-63B §3.2.3): after a
//! run of consecutive failed verifications each further attempt waits; after a cap of failures
//! in all, biometric verification is refused until an operator resets it.
//!
//! Per 2FA session it also caps VoiceIt user creation and uploads, so nobody can run up the
//! VoiceIt bill. The records live in a Durable Object (`ledger`), one per Auth0 user.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Consecutive failures allowed before each further attempt must wait.
    pub free_failures: u32,
    /// The wait, in seconds, before each attempt after that.
    pub delay_seconds: u32,
    /// Failures in all after which verification is refused until an operator resets it.
    pub failure_cap: u32,
    /// Recordings one 2FA session may send to VoiceIt.
    pub uploads_per_session: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            free_failures: 5,
            delay_seconds: 30,
            failure_cap: 50,
            uploads_per_session: 12,
        }
    }
}

/// What the ledger knows of one Auth0 user's verifications.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub consecutive_failures: u32,
    pub total_failures: u32,
    pub last_failure_ms: u64,
}

/// What one 2FA session has spent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub users_created: u32,
    pub uploads: u32,
}

/// Whether a verification may be attempted now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Allowed,
    /// Too many consecutive failures: try again after this many seconds.
    Wait {
        retry_after_seconds: u32,
    },
    /// The failure cap is reached: only an operator reset lifts it.
    Locked,
}

pub fn check(record: &UserRecord, limits: &Limits, now_ms: u64) -> Verdict {
    if record.total_failures >= limits.failure_cap {
        return Verdict::Locked;
    }
    if record.consecutive_failures >= limits.free_failures {
        let ready_at = record.last_failure_ms + u64::from(limits.delay_seconds) * 1000;
        if now_ms < ready_at {
            let seconds = (ready_at - now_ms).div_ceil(1000);
            return Verdict::Wait {
                retry_after_seconds: seconds as u32,
            };
        }
    }
    Verdict::Allowed
}

pub fn record_failure(record: &mut UserRecord, now_ms: u64) {
    record.consecutive_failures = record.consecutive_failures.saturating_add(1);
    record.total_failures = record.total_failures.saturating_add(1);
    record.last_failure_ms = now_ms;
}

/// A success ends the run of consecutive failures; the failures in all stay counted.
pub fn record_success(record: &mut UserRecord) {
    record.consecutive_failures = 0;
}

/// How an attempt that was begun ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Settlement {
    /// VoiceIt said yes.
    Success,
    /// VoiceIt said no.
    Failure,
    /// VoiceIt gave no answer (an outage): the attempt counts for nobody.
    NoAnswer,
}

/// Starts an attempt if the limits allow it, counting it as a failure until it is settled.
///
/// Counting first is what makes the limits hold under concurrency: attempts sent at the same
/// moment each take a place in the run of failures before any of them reaches VoiceIt, so
/// the sixth of six parallel attempts already has to wait.
pub fn begin_attempt(record: &mut UserRecord, limits: &Limits, now_ms: u64) -> Verdict {
    let verdict = check(record, limits, now_ms);
    if verdict == Verdict::Allowed {
        record_failure(record, now_ms);
    }
    verdict
}

/// Settles a begun attempt: a success takes back its failure and ends the run; an outage
/// takes back its failure; a failure stays counted.
pub fn settle(record: &mut UserRecord, how: Settlement) {
    match how {
        Settlement::Success => {
            record.total_failures = record.total_failures.saturating_sub(1);
            record_success(record);
        }
        Settlement::NoAnswer => {
            record.total_failures = record.total_failures.saturating_sub(1);
            record.consecutive_failures = record.consecutive_failures.saturating_sub(1);
        }
        Settlement::Failure => {}
    }
}

/// Takes one upload from the session's allowance, or refuses.
pub fn take_upload(session: &mut SessionRecord, limits: &Limits) -> bool {
    if session.uploads >= limits.uploads_per_session {
        return false;
    }
    session.uploads += 1;
    true
}

/// A session creates at most one VoiceIt user.
pub fn take_user_creation(session: &mut SessionRecord) -> bool {
    if session.users_created >= 1 {
        return false;
    }
    session.users_created += 1;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: u64 = 1000;

    #[test]
    fn five_failures_are_free_then_each_attempt_waits_thirty_seconds() {
        let limits = Limits::default();
        let mut r = UserRecord::default();
        for i in 0..5 {
            assert_eq!(check(&r, &limits, i * S), Verdict::Allowed);
            record_failure(&mut r, i * S);
        }
        assert_eq!(
            check(&r, &limits, 4 * S + 1),
            Verdict::Wait {
                retry_after_seconds: 30
            }
        );
        assert_eq!(
            check(&r, &limits, 4 * S + 29 * S),
            Verdict::Wait {
                retry_after_seconds: 1
            }
        );
        assert_eq!(check(&r, &limits, 4 * S + 30 * S), Verdict::Allowed);
        record_failure(&mut r, 40 * S);
        assert!(matches!(check(&r, &limits, 41 * S), Verdict::Wait { .. }));
    }

    #[test]
    fn a_success_resets_the_run_but_not_the_total() {
        let limits = Limits::default();
        let mut r = UserRecord::default();
        for i in 0..5 {
            record_failure(&mut r, i * S);
        }
        record_success(&mut r);
        assert_eq!(check(&r, &limits, 5 * S), Verdict::Allowed);
        assert_eq!(r.total_failures, 5);
    }

    #[test]
    fn fifty_failures_lock_until_an_operator_resets() {
        let limits = Limits::default();
        let mut r = UserRecord::default();
        for i in 0..50 {
            record_failure(&mut r, i * 60 * S);
            record_success(&mut r);
        }
        assert_eq!(check(&r, &limits, 10_000 * 60 * S), Verdict::Locked);
        let reset = UserRecord::default();
        assert_eq!(check(&reset, &limits, 0), Verdict::Allowed);
    }

    #[test]
    fn a_session_creates_one_user_and_a_bounded_number_of_uploads() {
        let limits = Limits::default();
        let mut s = SessionRecord::default();
        assert!(take_user_creation(&mut s));
        assert!(!take_user_creation(&mut s));
        for _ in 0..limits.uploads_per_session {
            assert!(take_upload(&mut s, &limits));
        }
        assert!(!take_upload(&mut s, &limits));
    }

    #[test]
    fn parallel_attempts_take_their_places_before_any_answer() {
        let limits = Limits::default();
        let mut r = UserRecord::default();
        let begun: Vec<Verdict> = (0..8)
            .map(|_| begin_attempt(&mut r, &limits, 1000))
            .collect();
        assert_eq!(begun.iter().filter(|v| **v == Verdict::Allowed).count(), 5);
        assert!(matches!(begun[5], Verdict::Wait { .. }));
    }

    #[test]
    fn settling_refunds_successes_and_outages_but_not_failures() {
        let limits = Limits::default();
        let mut r = UserRecord::default();
        begin_attempt(&mut r, &limits, 0);
        settle(&mut r, Settlement::Success);
        assert_eq!(
            r,
            UserRecord {
                last_failure_ms: 0,
                ..UserRecord::default()
            }
        );
        begin_attempt(&mut r, &limits, 5);
        settle(&mut r, Settlement::NoAnswer);
        assert_eq!((r.consecutive_failures, r.total_failures), (0, 0));
        begin_attempt(&mut r, &limits, 9);
        settle(&mut r, Settlement::Failure);
        assert_eq!((r.consecutive_failures, r.total_failures), (1, 1));
    }

    proptest! {
        #[test]
        fn no_sequence_of_events_gets_past_the_cap(
            events in proptest::collection::vec(any::<bool>(), 0..200),
        ) {
            let limits = Limits::default();
            let mut r = UserRecord::default();
            let mut now = 0u64;
            for success in events {
                now += 31 * S;
                if check(&r, &limits, now) != Verdict::Allowed {
                    continue;
                }
                if success { record_success(&mut r) } else { record_failure(&mut r, now) }
            }
            prop_assert!(r.total_failures <= limits.failure_cap);
            if r.total_failures >= limits.failure_cap {
                prop_assert_eq!(check(&r, &limits, now + 1_000_000 * S), Verdict::Locked);
            }
        }

        #[test]
        fn after_the_free_failures_attempts_are_spaced(
            gaps in proptest::collection::vec(0u64..60_000, 1..40),
        ) {
            let limits = Limits::default();
            let mut r = UserRecord::default();
            let mut now = 0u64;
            let mut allowed_after_free = vec![];
            for gap in gaps {
                now += gap;
                if check(&r, &limits, now) == Verdict::Allowed {
                    if r.consecutive_failures >= limits.free_failures {
                        allowed_after_free.push(now);
                    }
                    record_failure(&mut r, now);
                }
            }
            for pair in allowed_after_free.windows(2) {
                prop_assert!(pair[1] - pair[0] >= 30 * S);
            }
        }
    }
}
