//! The replay log of one stream (RFC 5277 §3.2): every event, in order, in segment files under
//! `state/notifications/<stream>/`, bounded by size and age.
//!
//! A segment is a run of records, each `[length u32][crc32 u32][seq u64][time µs i64][body]`
//! (little endian; the crc covers seq, time and body). A record is written with one `write`, so
//! a `kill -9` leaves either all of it or none of it in the page cache, and a power loss at worst
//! a torn last record: opening the log checks every record and cuts a segment at its first bad
//! one, so the log never serves garbage and appends continue after the last good record.
//!
//! Records are not fsynced one by one (that would cap the stream at a few hundred events per
//! second); a segment is fsynced when it is closed and when the server stops.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::warn;

use super::event::Event;

/// How much a replay log keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayLimits {
    /// The most bytes of records on disk; the oldest segments go first.
    pub max_bytes: u64,
    /// Events older than this are dropped (a segment at a time).
    pub max_age: Duration,
}

impl Default for ReplayLimits {
    fn default() -> Self {
        ReplayLimits {
            max_bytes: 64 << 20,
            max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

const HEADER: usize = 24;
const CREATED_FILE: &str = "created";

/// One segment file.
#[derive(Debug, Clone)]
struct Segment {
    path: PathBuf,
    /// Bytes of good records.
    bytes: u64,
    /// The time of its newest record.
    last_time: Option<DateTime<Utc>>,
}

/// The replay log of one stream.
pub struct ReplayLog {
    dir: PathBuf,
    limits: ReplayLimits,
    created: DateTime<Utc>,
    /// Oldest first; the last one is appended to.
    segments: VecDeque<Segment>,
    /// The open last segment.
    current: Option<File>,
    /// The sequence number of the next event.
    next_seq: u64,
    /// The time of the newest event.
    last_time: Option<DateTime<Utc>>,
}

/// The events a replay may read: the segments as they were when the subscription started (a
/// reader never sees records appended later; those reach the subscriber live).
#[derive(Debug, Clone, Default)]
pub struct ReplaySnapshot {
    segments: Vec<Segment>,
}

impl ReplayLog {
    /// Opens (or creates) the log in `dir`, repairing a torn tail.
    pub fn open(dir: &Path, limits: ReplayLimits) -> io::Result<ReplayLog> {
        fs::create_dir_all(dir)?;
        let created = read_created(dir)?;
        let mut names: Vec<PathBuf> = fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        // Names are zero-padded sequence numbers: the name order is the event order.
        names.sort();
        let mut log = ReplayLog {
            dir: dir.to_path_buf(),
            limits,
            created,
            segments: VecDeque::new(),
            current: None,
            next_seq: 1,
            last_time: None,
        };
        for path in names {
            let bytes = fs::read(&path)?;
            let mut scan = Scan::default();
            for_each_record(&bytes, |seq, time, _| {
                scan.last_seq = Some(seq);
                scan.last_time = Some(time);
                true
            });
            scan.good = good_prefix(&bytes);
            if (scan.good as usize) < bytes.len() {
                warn!(
                    file = %path.display(),
                    kept = scan.good,
                    dropped = bytes.len() as u64 - scan.good,
                    "the replay log ends in a torn or damaged record; cutting it there"
                );
                OpenOptions::new()
                    .write(true)
                    .open(&path)?
                    .set_len(scan.good)?;
            }
            if scan.good == 0 {
                fs::remove_file(&path)?;
                continue;
            }
            if let Some(seq) = scan.last_seq {
                log.next_seq = log.next_seq.max(seq + 1);
            }
            log.last_time = scan.last_time.or(log.last_time);
            log.segments.push_back(Segment {
                path,
                bytes: scan.good,
                last_time: scan.last_time,
            });
        }
        log.prune(Utc::now())?;
        Ok(log)
    }

    /// When the log was created (`replayLogCreationTime`).
    pub fn created(&self) -> DateTime<Utc> {
        self.created
    }

    /// The sequence number the next event gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The time of the newest event, if any.
    pub fn last_time(&self) -> Option<DateTime<Utc>> {
        self.last_time
    }

    /// Appends `event` (whose seq must be [`ReplayLog::next_seq`]).
    pub fn append(&mut self, event: &Event) -> io::Result<()> {
        let record = encode(event);
        let segment_size = self.segment_size();
        let fits = self
            .segments
            .back()
            .is_some_and(|s| s.bytes == 0 || s.bytes + record.len() as u64 <= segment_size);
        if !fits {
            self.start_segment(event.seq)?;
        }
        let Some(segment) = self.segments.back_mut() else {
            return Err(io::Error::other("no segment to append to"));
        };
        let file = match &mut self.current {
            Some(file) => file,
            // After a restart, appends continue in the last segment.
            current @ None => current.insert(OpenOptions::new().append(true).open(&segment.path)?),
        };
        file.write_all(&record)?;
        segment.bytes += record.len() as u64;
        segment.last_time = Some(event.time);
        self.next_seq = event.seq + 1;
        self.last_time = Some(event.time);
        Ok(())
    }

    /// Segments are an eighth of the log, so that pruning drops little at a time.
    fn segment_size(&self) -> u64 {
        (self.limits.max_bytes / 8).clamp(64 << 10, 16 << 20)
    }

    /// Closes the current segment (durably) and starts a new one, then drops what the limits
    /// no longer allow.
    fn start_segment(&mut self, first_seq: u64) -> io::Result<()> {
        if let Some(file) = self.current.take() {
            file.sync_data()?;
        }
        let path = self.dir.join(format!("{first_seq:020}.log"));
        self.current = Some(OpenOptions::new().create(true).append(true).open(&path)?);
        crate::datastore::sync_dir(&path)?;
        self.segments.push_back(Segment {
            path,
            bytes: 0,
            last_time: None,
        });
        self.prune(Utc::now())
    }

    /// Drops the oldest segments while the log is over its size, or while the newest event of
    /// the oldest segment is older than the age limit. The segment being written stays.
    fn prune(&mut self, now: DateTime<Utc>) -> io::Result<()> {
        let max_age =
            chrono::Duration::from_std(self.limits.max_age).unwrap_or(chrono::TimeDelta::MAX);
        while self.segments.len() > 1 {
            let total: u64 = self.segments.iter().map(|s| s.bytes).sum();
            let oldest = &self.segments[0];
            let too_old = oldest.last_time.is_some_and(|t| now - t > max_age);
            if total <= self.limits.max_bytes && !too_old {
                break;
            }
            if let Err(e) = fs::remove_file(&oldest.path)
                && e.kind() != io::ErrorKind::NotFound
            {
                return Err(e);
            }
            self.segments.pop_front();
        }
        Ok(())
    }

    /// What a replay starting at `start` needs to read (segments with nothing at or after
    /// `start` are left out).
    pub fn snapshot(&self, start: DateTime<Utc>) -> ReplaySnapshot {
        ReplaySnapshot {
            segments: self
                .segments
                .iter()
                .filter(|s| s.last_time.is_some_and(|t| t >= start))
                .cloned()
                .collect(),
        }
    }

    /// Makes everything written durable (at shutdown).
    pub fn sync(&mut self) -> io::Result<()> {
        match &self.current {
            Some(file) => file.sync_data(),
            None => Ok(()),
        }
    }
}

#[derive(Default)]
struct Scan {
    good: u64,
    last_seq: Option<u64>,
    last_time: Option<DateTime<Utc>>,
}

impl ReplaySnapshot {
    /// Calls `each` with every event of the snapshot with a time in `[start, stop]`, oldest
    /// first, until it returns false. A segment removed meanwhile (the log was pruned) is
    /// skipped.
    pub fn read(
        &self,
        start: DateTime<Utc>,
        stop: Option<DateTime<Utc>>,
        mut each: impl FnMut(Event) -> bool,
    ) -> io::Result<()> {
        for segment in &self.segments {
            let mut bytes = match fs::read(&segment.path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            bytes.truncate(segment.bytes as usize);
            let mut go_on = true;
            for_each_record(&bytes, |seq, time, body| {
                if stop.is_some_and(|stop| time > stop) {
                    go_on = false;
                    return false;
                }
                if time >= start {
                    go_on = each(Event::new(seq, time, body));
                }
                go_on
            });
            if !go_on {
                break;
            }
        }
        Ok(())
    }
}

fn read_created(dir: &Path) -> io::Result<DateTime<Utc>> {
    let file = dir.join(CREATED_FILE);
    if let Ok(text) = fs::read_to_string(&file)
        && let Ok(time) = DateTime::parse_from_rfc3339(text.trim())
    {
        return Ok(time.with_timezone(&Utc));
    }
    let now = Utc::now();
    crate::datastore::write_atomically(&file, now.to_rfc3339().as_bytes())?;
    Ok(now)
}

fn encode(event: &Event) -> Vec<u8> {
    let body = event.body().as_bytes();
    let mut record = Vec::with_capacity(HEADER + body.len());
    record.extend_from_slice(&((HEADER - 8 + body.len()) as u32).to_le_bytes());
    record.extend_from_slice(&[0; 4]);
    record.extend_from_slice(&event.seq.to_le_bytes());
    record.extend_from_slice(&event.time.timestamp_micros().to_le_bytes());
    record.extend_from_slice(body);
    let crc = crc32fast::hash(&record[8..]);
    record[4..8].copy_from_slice(&crc.to_le_bytes());
    record
}

/// The length of the run of good records at the start of `bytes`.
fn good_prefix(bytes: &[u8]) -> u64 {
    let mut good = 0;
    for_each_record_at(bytes, |end, _, _, _| {
        good = end;
        true
    });
    good as u64
}

fn for_each_record(bytes: &[u8], mut each: impl FnMut(u64, DateTime<Utc>, &str) -> bool) {
    for_each_record_at(bytes, |_, seq, time, body| each(seq, time, body));
}

/// Decodes records until the first bad one (or until `each` returns false); `each` gets the
/// offset just after the record.
fn for_each_record_at(bytes: &[u8], mut each: impl FnMut(usize, u64, DateTime<Utc>, &str) -> bool) {
    let mut at = 0;
    while bytes.len() - at >= HEADER {
        let word =
            |i: usize| u32::from_le_bytes(bytes[at + i..at + i + 4].try_into().unwrap_or_default());
        let len = word(0) as usize;
        let end = at + 8 + len;
        if len < HEADER - 8 || end > bytes.len() || crc32fast::hash(&bytes[at + 8..end]) != word(4)
        {
            return;
        }
        let seq = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap_or_default());
        let micros = i64::from_le_bytes(bytes[at + 16..at + 24].try_into().unwrap_or_default());
        let (Some(time), Ok(body)) = (
            DateTime::<Utc>::from_timestamp_micros(micros),
            std::str::from_utf8(&bytes[at + HEADER..end]),
        ) else {
            return;
        };
        if !each(end, seq, time, body) {
            return;
        }
        at = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, secs: i64) -> Event {
        let time = DateTime::<Utc>::from_timestamp(1_700_000_000 + secs, 0).unwrap();
        Event::new(
            seq,
            time,
            &format!("<tick xmlns=\"urn:t\"><n>{seq}</n></tick>"),
        )
    }

    fn first_segment(dir: &Path) -> PathBuf {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "log"))
            .unwrap()
    }

    fn all(log: &ReplayLog) -> Vec<u64> {
        let mut seqs = Vec::new();
        log.snapshot(DateTime::<Utc>::MIN_UTC)
            .read(DateTime::<Utc>::MIN_UTC, None, |e| {
                seqs.push(e.seq);
                true
            })
            .unwrap();
        seqs
    }

    #[test]
    fn events_survive_a_reopen_and_numbering_continues() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = ReplayLog::open(dir.path(), ReplayLimits::default()).unwrap();
        let created = log.created();
        for seq in 1..=3 {
            log.append(&event(seq, seq as i64)).unwrap();
        }
        drop(log);
        let mut log = ReplayLog::open(dir.path(), ReplayLimits::default()).unwrap();
        assert_eq!(log.created(), created);
        assert_eq!(log.next_seq(), 4);
        log.append(&event(4, 4)).unwrap();
        assert_eq!(all(&log), vec![1, 2, 3, 4]);
    }

    #[test]
    fn a_torn_tail_is_cut_and_appends_continue_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = ReplayLog::open(dir.path(), ReplayLimits::default()).unwrap();
        log.append(&event(1, 1)).unwrap();
        log.append(&event(2, 2)).unwrap();
        drop(log);
        let segment = first_segment(dir.path());
        // Half a record, as a crash in the middle of a write leaves it.
        let half = encode(&event(3, 3));
        let mut f = OpenOptions::new().append(true).open(&segment).unwrap();
        f.write_all(&half[..half.len() / 2]).unwrap();
        drop(f);
        let mut log = ReplayLog::open(dir.path(), ReplayLimits::default()).unwrap();
        assert_eq!(log.next_seq(), 3);
        log.append(&event(3, 3)).unwrap();
        assert_eq!(all(&log), vec![1, 2, 3]);
    }

    #[test]
    fn a_damaged_record_ends_what_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = ReplayLog::open(dir.path(), ReplayLimits::default()).unwrap();
        for seq in 1..=3 {
            log.append(&event(seq, seq as i64)).unwrap();
        }
        drop(log);
        let segment = first_segment(dir.path());
        let mut bytes = fs::read(&segment).unwrap();
        let second = encode(&event(1, 1)).len() + HEADER + 2;
        bytes[second] ^= 0xff;
        fs::write(&segment, bytes).unwrap();
        let log = ReplayLog::open(dir.path(), ReplayLimits::default()).unwrap();
        assert_eq!(all(&log), vec![1]);
    }

    #[test]
    fn size_and_age_limits_drop_the_oldest_segments() {
        let dir = tempfile::tempdir().unwrap();
        let limits = ReplayLimits {
            max_bytes: 512 << 10,
            max_age: Duration::from_secs(3600 * 24 * 365 * 100),
        };
        let mut log = ReplayLog::open(dir.path(), limits).unwrap();
        for seq in 1..=20_000 {
            log.append(&event(seq, seq as i64)).unwrap();
        }
        let on_disk: u64 = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(on_disk <= (512 << 10) + (64 << 10) + 64, "{on_disk}");
        let seqs = all(&log);
        assert_eq!(*seqs.last().unwrap(), 20_000);
        assert!(seqs.len() < 20_000);
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1));

        // Age: events from long ago go at the next rotation.
        let dir = tempfile::tempdir().unwrap();
        let limits = ReplayLimits {
            max_bytes: 1 << 20,
            max_age: Duration::from_secs(60),
        };
        let mut log = ReplayLog::open(dir.path(), limits).unwrap();
        for seq in 1..=5_000 {
            log.append(&event(seq, seq as i64)).unwrap();
        }
        assert!(all(&log).len() < 5_000);
    }

    #[test]
    fn a_replay_reads_the_time_window_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = ReplayLog::open(dir.path(), ReplayLimits::default()).unwrap();
        for seq in 1..=10 {
            log.append(&event(seq, seq as i64)).unwrap();
        }
        let start = event(0, 3).time;
        let stop = event(0, 6).time;
        let mut seqs = Vec::new();
        log.snapshot(start)
            .read(start, Some(stop), |e| {
                seqs.push(e.seq);
                true
            })
            .unwrap();
        assert_eq!(seqs, vec![3, 4, 5, 6]);
    }
}
