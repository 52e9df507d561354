//! Resource limits of a Python VM: how much memory it may hold and how busy it may keep a CPU
//! core, watched from the outside so that a runaway package is stopped, not the server.
//!
//! Why a watchdog and not rlimits: `RLIMIT_CPU` counts the CPU time of the process's whole
//! life, so a long-lived VM would be killed for having done honest work for days, and
//! `RLIMIT_AS` counts address space, which Python's thread stacks and malloc arenas reserve
//! by the gigabyte without using it. What the operator means by a runaway — resident memory
//! past a bound, a core kept busy for minutes — is what is measured here, from `/proc`, a few
//! times a second.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How often a VM's use is sampled.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(250);

/// The limits of every VM (0 switches one off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmLimits {
    /// The resident memory a VM may hold, in MiB.
    pub max_memory_mib: u64,
    /// The share of one core a VM may use on average over `cpu_window`, in percent.
    pub max_cpu_percent: u64,
    /// Over how long the CPU use is averaged: short bursts are fine, a core kept busy is not.
    pub cpu_window: Duration,
}

impl Default for VmLimits {
    fn default() -> VmLimits {
        VmLimits {
            max_memory_mib: 2048,
            max_cpu_percent: 95,
            cpu_window: Duration::from_secs(120),
        }
    }
}

/// Follows one VM process's use of memory and CPU against [`VmLimits`].
#[derive(Debug)]
pub struct ResourceWatch {
    pid: u32,
    limits: VmLimits,
    /// (when, CPU seconds used by then), oldest first, reaching back one window.
    samples: VecDeque<(Instant, f64)>,
}

impl ResourceWatch {
    /// Starts watching process `pid`.
    pub fn new(pid: u32, limits: VmLimits) -> ResourceWatch {
        ResourceWatch {
            pid,
            limits,
            samples: VecDeque::new(),
        }
    }

    /// Whether there is anything to watch.
    pub fn is_enabled(&self) -> bool {
        self.limits.max_memory_mib > 0 || self.limits.max_cpu_percent > 0
    }

    /// Takes a sample; the limit the VM went over, in words, if it did. A process that is gone
    /// is over no limit (its exit is reported on its own).
    pub fn check(&mut self) -> Option<String> {
        let now = Instant::now();
        if self.limits.max_memory_mib > 0
            && let Some(rss) = resident_bytes(self.pid)
            && rss > self.limits.max_memory_mib << 20
        {
            return Some(format!(
                "its resident memory reached {} MiB, over the limit of {} MiB",
                rss >> 20,
                self.limits.max_memory_mib
            ));
        }
        if self.limits.max_cpu_percent == 0 {
            return None;
        }
        let cpu = cpu_seconds(self.pid)?;
        self.samples.push_back((now, cpu));
        self.cpu_over_limit(now, cpu)
    }

    /// Judges the average over the window that ends with the sample (`now`, `cpu`), once the
    /// samples reach back a whole window.
    fn cpu_over_limit(&mut self, now: Instant, cpu: f64) -> Option<String> {
        let window = self.limits.cpu_window;
        // Keep one sample at least a window old; drop those older than it.
        while self.samples.len() > 1 && now.duration_since(self.samples[1].0) >= window {
            self.samples.pop_front();
        }
        let &(since, cpu_then) = self.samples.front()?;
        let elapsed = now.duration_since(since);
        if elapsed < window || elapsed.is_zero() {
            return None;
        }
        let percent = (cpu - cpu_then) / elapsed.as_secs_f64() * 100.0;
        (percent > self.limits.max_cpu_percent as f64).then(|| {
            format!(
                "it kept {percent:.0}% of a CPU core busy for {} s, over the limit of {}%",
                elapsed.as_secs(),
                self.limits.max_cpu_percent
            )
        })
    }
}

/// The resident set size of `pid`, from `/proc/<pid>/statm`.
fn resident_bytes(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// The user and system CPU time `pid` has used, in seconds, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: fields count from after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // utime and stime are fields 14 and 15 of the line; `rest` starts at field 3.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / clock_ticks() as f64)
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096)
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_process() {
        let me = std::process::id();
        assert!(resident_bytes(me).is_some_and(|b| b > 0));
        assert!(cpu_seconds(me).is_some());
        assert_eq!(resident_bytes(u32::MAX), None);
    }

    #[test]
    fn memory_over_the_limit_is_reported() {
        let limits = VmLimits {
            max_memory_mib: 1,
            max_cpu_percent: 0,
            cpu_window: Duration::from_secs(1),
        };
        let mut watch = ResourceWatch::new(std::process::id(), limits);
        let breach = watch.check().expect("a test process holds more than 1 MiB");
        assert!(breach.contains("over the limit of 1 MiB"), "{breach}");
    }

    #[test]
    fn cpu_is_judged_over_a_whole_window_only() {
        let limits = VmLimits {
            max_memory_mib: 0,
            max_cpu_percent: 50,
            cpu_window: Duration::from_secs(10),
        };
        let mut watch = ResourceWatch::new(0, limits);
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        // A busy core, but not for a whole window yet.
        for s in 0..10 {
            watch.samples.push_back((at(s), s as f64));
            assert_eq!(watch.cpu_over_limit(at(s), s as f64), None);
        }
        watch.samples.push_back((at(10), 10.0));
        let breach = watch
            .cpu_over_limit(at(10), 10.0)
            .expect("busy for a window");
        assert!(
            breach.contains("100% of a CPU core busy for 10 s"),
            "{breach}"
        );
        // An idle VM is fine: 2 s of CPU over the next 10 s.
        let mut idle = ResourceWatch::new(0, limits);
        for s in 0..=10 {
            let cpu = s as f64 / 5.0;
            idle.samples.push_back((at(s), cpu));
            assert_eq!(idle.cpu_over_limit(at(s), cpu), None);
        }
        assert!(idle.samples.len() <= 11);
    }
}
