//! Login throttling per source address, against password guessing.
//!
//! Each failed login from an address doubles the time its next rejection takes (on top of the
//! failure delay every rejection has, up to [`MAX_DELAY_FACTOR`] times it). After
//! [`ThrottleConfig::block_after`] failures, none further apart than
//! [`ThrottleConfig::block_for`], the address is blocked for `block_for`: its connections are
//! closed as soon as they are accepted, and its logins are refused without being checked. A
//! successful login forgets the address's failures.
//!
//! The table is bounded: entries expire after `block_for` without a failure, and when it holds
//! [`MAX_ADDRESSES`] entries the oldest go first, so a flood of addresses cannot grow it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most addresses remembered.
pub const MAX_ADDRESSES: usize = 10_000;
/// The slowest a rejection gets, as a multiple of the failure delay.
pub const MAX_DELAY_FACTOR: u32 = 16;

/// When an address is blocked.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleConfig {
    /// Failed logins after which the address is blocked (0: never).
    pub block_after: u32,
    /// How long a block lasts, and how long failures are remembered.
    pub block_for: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last_failure: Instant,
    blocked_until: Option<Instant>,
}

/// The failures of every address that failed recently.
#[derive(Debug)]
pub struct LoginThrottle {
    config: ThrottleConfig,
    records: Mutex<HashMap<IpAddr, Record>>,
}

/// What a failed login leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// The address's failures so far.
    pub failures: u32,
    /// How many times the failure delay this rejection should take.
    pub delay_factor: u32,
    /// Set when this failure blocked the address.
    pub blocked_for: Option<Duration>,
}

impl LoginThrottle {
    /// An empty table.
    pub fn new(config: ThrottleConfig) -> LoginThrottle {
        LoginThrottle {
            config,
            records: Mutex::new(HashMap::new()),
        }
    }

    /// How much longer `ip` is blocked, if it is.
    pub fn blocked(&self, ip: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let until = records.get(&ip)?.blocked_until?;
        until.checked_duration_since(now).filter(|d| !d.is_zero())
    }

    /// Records a failed login from `ip`.
    pub fn failed(&self, ip: IpAddr) -> Failure {
        let now = Instant::now();
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let window = self.config.block_for;
        records.retain(|_, r| {
            now.duration_since(r.last_failure) < window
                || r.blocked_until.is_some_and(|until| until > now)
        });
        if records.len() >= MAX_ADDRESSES
            && !records.contains_key(&ip)
            && let Some(oldest) = records
                .iter()
                .min_by_key(|(_, r)| r.last_failure)
                .map(|(ip, _)| *ip)
        {
            records.remove(&oldest);
        }
        let record = records.entry(ip).or_insert(Record {
            failures: 0,
            last_failure: now,
            blocked_until: None,
        });
        if record.blocked_until.is_some_and(|until| until <= now) {
            // A block that ended starts the count again.
            record.failures = 0;
            record.blocked_until = None;
        }
        record.failures = record.failures.saturating_add(1);
        record.last_failure = now;
        let mut blocked_for = None;
        if self.config.block_after > 0
            && record.failures >= self.config.block_after
            && record.blocked_until.is_none()
        {
            record.blocked_until = Some(now + window);
            blocked_for = Some(window);
        }
        let doublings = record
            .failures
            .saturating_sub(1)
            .min(MAX_DELAY_FACTOR.ilog2());
        Failure {
            failures: record.failures,
            delay_factor: 1 << doublings,
            blocked_for,
        }
    }

    /// Forgets the failures of `ip` after a successful login.
    pub fn succeeded(&self, ip: IpAddr) {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        if records.get(&ip).is_some_and(|r| r.blocked_until.is_none()) {
            records.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(block_after: u32, block_for: Duration) -> LoginThrottle {
        LoginThrottle::new(ThrottleConfig {
            block_after,
            block_for,
        })
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn delays_grow_then_the_address_is_blocked() {
        let t = throttle(6, Duration::from_secs(60));
        let factors: Vec<u32> = (0..5).map(|_| t.failed(A).delay_factor).collect();
        assert_eq!(factors, [1, 2, 4, 8, 16]);
        assert!(t.blocked(A).is_none());
        let sixth = t.failed(A);
        assert_eq!(sixth.delay_factor, MAX_DELAY_FACTOR);
        assert_eq!(sixth.blocked_for, Some(Duration::from_secs(60)));
        assert!(t.blocked(A).is_some());
        assert!(t.blocked(B).is_none(), "other addresses are not affected");
        // A success does not lift a block.
        t.succeeded(A);
        assert!(t.blocked(A).is_some());
    }

    #[test]
    fn a_success_forgets_and_a_block_ends() {
        let t = throttle(2, Duration::from_millis(50));
        t.failed(A);
        t.succeeded(A);
        assert_eq!(t.failed(A).failures, 1);
        assert!(t.failed(A).blocked_for.is_some());
        std::thread::sleep(Duration::from_millis(80));
        assert!(t.blocked(A).is_none());
        assert_eq!(
            t.failed(A).failures,
            1,
            "the count starts again after a block"
        );
    }

    #[test]
    fn the_table_is_bounded() {
        let t = throttle(0, Duration::from_secs(60));
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            t.failed(IpAddr::V4(std::net::Ipv4Addr::from(i)));
        }
        assert!(t.records.lock().unwrap().len() <= MAX_ADDRESSES);
    }
}
