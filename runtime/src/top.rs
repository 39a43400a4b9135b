//! `top` of a container: its processes as `ps -ef` shows them (`UID PID
//! PPID C STIME TTY TIME CMD`), for the host pids its cgroup lists.
//!
//! Everything is parsed from `/proc/<pid>/{status,stat,cmdline}` by pure
//! functions; only [`Top::of`] reads files. Pids are host pids (as `docker
//! top` shows them), user names come from the host's `/etc/passwd`, and
//! times are UTC.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::container::stat_fields;

/// The column titles, as `ps -ef` names them.
pub const TITLES: [&str; 8] = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"];

/// Processes of a container as `docker top` gives them: titles and one row
/// of text per process.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Top {
    /// Column titles ([`TITLES`]).
    pub titles: Vec<String>,
    /// One row per process, ordered by pid.
    pub processes: Vec<Vec<String>>,
}

/// What `/proc` says of one process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Process {
    /// Host pid.
    pub pid: i32,
    /// Host pid of its parent.
    pub ppid: i32,
    /// Effective user id.
    pub uid: u32,
    /// Controlling terminal as the kernel encodes it (0: none).
    pub tty_nr: u32,
    /// CPU time used, user plus system, in clock ticks.
    pub cpu_ticks: u64,
    /// Start, in clock ticks after boot.
    pub start_ticks: u64,
    /// Command line, or `[name]` when it has none (a zombie, say).
    pub cmd: String,
}

/// The host's clock, to turn tick counts into times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// Clock ticks per second (`getconf CLK_TCK`).
    pub ticks_per_sec: u64,
    /// Boot time, unix seconds (`btime` of `/proc/stat`).
    pub boot_time: u64,
    /// Now, unix seconds.
    pub now: u64,
}

impl Process {
    /// Parses the texts of `/proc/<pid>/status`, `stat` and `cmdline`.
    pub fn parse(pid: i32, status: &str, stat: &str, cmdline: &[u8]) -> Option<Process> {
        let mut fields = stat_fields(stat)?.skip(1);
        let ppid = fields.next()?.parse().ok()?;
        let tty_nr = fields.nth(2)?.parse::<i64>().ok()? as u32;
        let mut times = fields.skip(6);
        let utime: u64 = times.next()?.parse().ok()?;
        let stime: u64 = times.next()?.parse().ok()?;
        let start_ticks = times.nth(6)?.parse().ok()?;
        let name = stat.get(stat.find('(')? + 1..stat.rfind(')')?)?;
        Some(Process {
            pid,
            ppid,
            uid: parse_uid(status)?,
            tty_nr,
            cpu_ticks: utime + stime,
            start_ticks,
            cmd: command(cmdline, name),
        })
    }

    /// Its row of `ps -ef` text; `passwd` (the host's) names its user.
    pub fn row(&self, clock: &Clock, passwd: &str) -> Vec<String> {
        let hz = clock.ticks_per_sec.max(1);
        let started = clock.boot_time + self.start_ticks / hz;
        vec![
            user_name(passwd, self.uid),
            self.pid.to_string(),
            self.ppid.to_string(),
            cpu_percent(self.cpu_ticks, clock.now.saturating_sub(started), hz).to_string(),
            start_time(started, clock.now),
            tty_name(self.tty_nr),
            cpu_time(self.cpu_ticks / hz),
            self.cmd.clone(),
        ]
    }
}

/// The effective uid from the `Uid:` line (real, effective, saved, fs) of `/proc/<pid>/status`.
pub fn parse_uid(status: &str) -> Option<u32> {
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The boot time (`btime`, unix seconds) from the text of `/proc/stat`.
pub fn parse_boot_time(proc_stat: &str) -> Option<u64> {
    let line = proc_stat.lines().find_map(|l| l.strip_prefix("btime "))?;
    line.trim().parse().ok()
}

/// A NUL-separated `cmdline` as one line; `[name]` when it is empty.
pub fn command(cmdline: &[u8], name: &str) -> String {
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let args = match args.split_last() {
        Some((last, rest)) if last.is_empty() => rest,
        _ => &args[..],
    };
    match args.is_empty() {
        true => format!("[{name}]"),
        false => args.join(" "),
    }
}

/// The user name of `uid` in the text of an `/etc/passwd`, else the number.
pub fn user_name(passwd: &str, uid: u32) -> String {
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let id: u32 = fields.nth(1)?.parse().ok()?;
            (id == uid && !name.is_empty()).then(|| name.to_string())
        })
        .unwrap_or_else(|| uid.to_string())
}

/// A terminal's name from `tty_nr` (`pts/3`, `tty1`, `ttyS0`); `?` for none.
pub fn tty_name(tty_nr: u32) -> String {
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    match major {
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 if minor < 64 => format!("tty{minor}"),
        4 => format!("ttyS{}", minor - 64),
        _ => "?".to_string(),
    }
}

/// CPU seconds as `ps` shows them: `HH:MM:SS`, `D-HH:MM:SS` past a day.
pub fn cpu_time(seconds: u64) -> String {
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let clock = format!("{:02}:{:02}:{:02}", rest / 3600, rest / 60 % 60, rest % 60);
    match days {
        0 => clock,
        d => format!("{d}-{clock}"),
    }
}

/// The `C` column: CPU time over the time since start, in percent, at most 99.
pub fn cpu_percent(cpu_ticks: u64, elapsed_secs: u64, ticks_per_sec: u64) -> u64 {
    match elapsed_secs {
        0 => 0,
        secs => (cpu_ticks * 100 / ticks_per_sec.max(1) / secs).min(99),
    }
}

/// The `STIME` column: `HH:MM` on the day of `now`, `MonDD` in its year, else the year.
pub fn start_time(started: u64, now: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let text = |secs: u64| crate::logs::format_rfc3339(UNIX_EPOCH + Duration::from_secs(secs));
    let (start, today) = (text(started), text(now));
    if start[..10] == today[..10] {
        return start[11..16].to_string();
    }
    if start[..4] != today[..4] {
        return start[..4].to_string();
    }
    let month: usize = start[5..7].parse().unwrap_or(1);
    format!("{}{}", MONTHS[month.clamp(1, 12) - 1], &start[8..10])
}

impl Top {
    /// Reads the processes `pids` from `/proc`; one that exits meanwhile is left out.
    pub fn of(pids: &[i32]) -> Top {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let proc_stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let clock = Clock {
            ticks_per_sec: rustix::param::clock_ticks_per_second(),
            boot_time: parse_boot_time(&proc_stat).unwrap_or(now),
            now,
        };
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let mut processes: Vec<Process> = pids.iter().filter_map(|&pid| read(pid)).collect();
        processes.sort_by_key(|p| p.pid);
        Top {
            titles: TITLES.iter().map(|t| t.to_string()).collect(),
            processes: processes.iter().map(|p| p.row(&clock, &passwd)).collect(),
        }
    }

    /// The table as text: columns aligned, three spaces apart, one line per row.
    pub fn render(&self) -> String {
        let rows: Vec<&Vec<String>> = std::iter::once(&self.titles)
            .chain(&self.processes)
            .collect();
        let columns = self.titles.len();
        let widths: Vec<usize> = (0..columns)
            .map(|i| {
                let cell = |r: &&Vec<String>| r.get(i).map_or(0, |c| c.chars().count());
                rows.iter().map(cell).max().unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                match i + 1 < columns {
                    true => line.push_str(&format!("{cell:<w$}   ", w = widths[i])),
                    false => line.push_str(cell),
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

fn read(pid: i32) -> Option<Process> {
    let dir = format!("/proc/{pid}");
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    let cmdline = std::fs::read(format!("{dir}/cmdline")).ok()?;
    Process::parse(pid, &status, &stat, &cmdline)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (my (odd) cmd) S 4200 4242 4242 34816 4242 4194560 100 0 0 0 \
                        250 150 0 0 20 0 1 0 123400 1000 50";
    const STATUS: &str = "Name:\tsh\nUmask:\t0022\nState:\tS (sleeping)\n\
                          Uid:\t1000\t33\t33\t33\nGid:\t0\t0\t0\t0\n";

    #[test]
    fn a_process_is_parsed_from_its_status_stat_and_cmdline() {
        let p = Process::parse(4242, STATUS, STAT, b"sh\0-c\0sleep 600\0").unwrap();
        assert_eq!(
            p,
            Process {
                pid: 4242,
                ppid: 4200,
                uid: 33,
                tty_nr: 34816,
                cpu_ticks: 400,
                start_ticks: 123400,
                cmd: "sh -c sleep 600".into(),
            }
        );
    }

    #[test]
    fn a_process_without_a_command_line_shows_its_name_in_brackets() {
        let p = Process::parse(4242, STATUS, STAT, b"").unwrap();
        assert_eq!(p.cmd, "[my (odd) cmd]");
    }

    #[test]
    fn a_truncated_stat_is_no_process() {
        assert_eq!(Process::parse(1, STATUS, "1 (sh) S 0 1", b"sh\0"), None);
        assert_eq!(Process::parse(1, "Name:\tsh\n", STAT, b"sh\0"), None);
    }

    #[test]
    fn a_row_reads_like_ps_ef() {
        let p = Process::parse(4242, STATUS, STAT, b"sleep\x00600\0").unwrap();
        // Booted at 2026-11-26T07:00:00Z; started 1234 s later (100 ticks/s).
        let clock = Clock {
            ticks_per_sec: 100,
            boot_time: 1_795_676_400,
            now: 1_795_676_400 + 1234 + 200,
        };
        let passwd = "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33::/var/www:/bin/false\n";
        assert_eq!(
            p.row(&clock, passwd),
            [
                "www-data",
                "4242",
                "4200",
                "2",
                "07:20",
                "pts/0",
                "00:00:04",
                "sleep 600"
            ]
        );
    }

    #[test]
    fn users_missing_from_passwd_show_as_numbers() {
        assert_eq!(user_name("root:x:0:0::/root:/bin/sh\n", 0), "root");
        assert_eq!(user_name("root:x:0:0::/root:/bin/sh\n", 1000), "1000");
        assert_eq!(user_name("garbage\n", 0), "0");
    }

    #[test]
    fn terminals_are_named_as_ps_names_them() {
        assert_eq!(tty_name(0), "?");
        assert_eq!(tty_name((136 << 8) | 3), "pts/3");
        assert_eq!(tty_name((137 << 8) | 1), "pts/257");
        assert_eq!(tty_name((4 << 8) | 1), "tty1");
        assert_eq!(tty_name((4 << 8) | 64), "ttyS0");
    }

    #[test]
    fn cpu_time_counts_days_past_a_day() {
        assert_eq!(cpu_time(0), "00:00:00");
        assert_eq!(cpu_time(3723), "01:02:03");
        assert_eq!(cpu_time(90_061), "1-01:01:01");
    }

    #[test]
    fn cpu_percent_is_capped_and_safe_at_start() {
        assert_eq!(cpu_percent(500, 10, 100), 50);
        assert_eq!(cpu_percent(5000, 10, 100), 99);
        assert_eq!(cpu_percent(500, 0, 100), 0);
    }

    #[test]
    fn start_time_shrinks_to_the_clock_today_and_the_date_this_year() {
        let now = 1_795_680_000; // 2026-11-26T08:00:00Z
        assert_eq!(start_time(now - 3600, now), "07:00");
        assert_eq!(start_time(now - 86_400, now), "Nov25");
        assert_eq!(start_time(now - 400 * 86_400, now), "2025");
    }

    #[test]
    fn the_boot_time_comes_from_proc_stat() {
        let text = "cpu  1 2 3\nintr 5\nbtime 1795676400\nprocesses 9\n";
        assert_eq!(parse_boot_time(text), Some(1_795_676_400));
        assert_eq!(parse_boot_time("cpu 1\n"), None);
    }

    #[test]
    fn the_table_aligns_columns_three_spaces_apart() {
        let top = Top {
            titles: vec!["UID".into(), "PID".into(), "CMD".into()],
            processes: vec![
                vec!["root".into(), "7".into(), "sleep 1".into()],
                vec!["1000".into(), "12345".into(), "sh".into()],
            ],
        };
        assert_eq!(
            top.render(),
            "UID    PID     CMD\nroot   7       sleep 1\n1000   12345   sh\n"
        );
    }
}
