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

    /// Takes a sample; the limit the VM went over, in words, if it did. A process that is gone
    /// is over no limit (its exit is reported on its own).
    pub fn check(&mut self) -> Option<String> {
        if self.limits.max_memory_mib == 0 && self.limits.max_cpu_percent == 0 {
            return None;
        }
        let now = Instant::now();
        let usage = usage(self.pid)?;
        if self.limits.max_memory_mib > 0 && usage.resident_bytes > self.limits.max_memory_mib << 20
        {
            return Some(format!(
                "its resident memory reached {} MiB, over the limit of {} MiB",
                usage.resident_bytes >> 20,
                self.limits.max_memory_mib
            ));
        }
        if self.limits.max_cpu_percent == 0 {
            return None;
        }
        self.samples.push_back((now, usage.cpu_seconds));
        self.cpu_over_limit(now, usage.cpu_seconds)
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

/// What a process uses, as one read of `/proc/<pid>/stat` tells.
#[derive(Debug)]
struct Usage {
    /// The resident set size.
    resident_bytes: u64,
    /// The user and system CPU time used so far.
    cpu_seconds: f64,
}

/// What `pid` uses now; `None` when the process is gone.
fn usage(pid: u32) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: fields count from after it.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    // utime, stime and rss are fields 14, 15 and 24 of the line; `fields` starts at field 3.
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Usage {
        resident_bytes: field(24)? * page_size(),
        cpu_seconds: (field(14)? + field(15)?) as f64 / clock_ticks() as f64,
    })
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
        let me = usage(std::process::id()).expect("this process's usage");
        // The same figure as /proc/<pid>/statm's, the other place that has it.
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        let statm_bytes = pages * page_size();
        assert!(me.resident_bytes > 0);
        assert!(
            me.resident_bytes.abs_diff(statm_bytes) < 16 << 20,
            "{me:?} vs {statm_bytes}"
        );
        assert!(me.cpu_seconds >= 0.0);
        assert!(usage(u32::MAX).is_none());
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
