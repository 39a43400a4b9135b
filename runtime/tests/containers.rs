//! Containers on the real kernel: isolation, security defaults, limits.
//! Root tests: `#[ignore]`d so that a non-root run reports them as skipped;
//! `scripts/test.sh` runs them when root.

mod common;

use common::{Host, host_with_probe};

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_container_runs_its_command_as_pid_1_and_its_output_is_logged() {
    let host = Host::new(&[]);
    let config = host.config(&["sh", "-c", "echo pid=$$; echo oops >&2; exit 3"]);
    let (state, output) = host.run_to_end("c-basic", config);
    assert_eq!(state.exit_code, Some(3), "{state:#?}");
    assert!(output.contains("pid=1\n"), "{output}");
    assert!(output.contains("oops\n"), "{output}");
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_container_sees_only_its_own_processes_hostname_and_mounts() {
    let host = Host::new(&[]);
    let script = "ps -o pid,args; echo ---; hostname; cat /proc/self/mountinfo";
    let mut config = host.config(&["sh", "-c", script]);
    config.hostname = Some("box1".into());
    let (state, output) = host.run_to_end("c-isolation", config);
    assert_eq!(state.exit_code, Some(0), "{output}");
    let (ps, rest) = output.split_once("---\n").unwrap();
    let processes: Vec<&str> = ps.lines().skip(1).map(str::trim_start).collect();
    assert!(processes[0].starts_with("1 sh -c"), "{output}");
    // sh and the ps it forked: nothing of the host.
    assert_eq!(processes.len(), 2, "host processes are visible: {output}");
    assert!(rest.lines().any(|l| l == "box1"), "{output}");
    let mount_points: Vec<&str> = rest.lines().filter_map(|l| l.split(' ').nth(4)).collect();
    assert!(mount_points.contains(&"/"), "{output}");
    for point in mount_points {
        let ours = [
            "/",
            "/proc",
            "/dev",
            "/sys",
            "/etc/hostname",
            "/etc/hosts",
            "/etc/resolv.conf",
        ];
        let inside = ours
            .iter()
            .any(|p| point == *p || point.starts_with(&format!("{p}/")));
        assert!(inside, "host mount {point} is visible: {output}");
    }
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn masked_paths_read_empty_and_proc_sys_is_read_only() {
    let host = Host::new(&[]);
    // Docker's masked files that this kernel has (kcore only with CONFIG_PROC_KCORE).
    let masked: Vec<&str> = [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/sched_debug",
    ]
    .into_iter()
    .filter(|p| std::path::Path::new(p).exists())
    .collect();
    assert!(!masked.is_empty());
    let mut script = String::new();
    for path in &masked {
        script.push_str(&format!("echo {path}=$(wc -c < {path}); "));
    }
    script.push_str(
        "ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/ns_last_pid && echo writable;",
    );
    script.push_str("for f in /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids/pids.max; do [ -e $f ] && echo 999999999 > $f && echo cgroup-writable; done");
    let (_, output) = host.run_to_end("c-masked", host.config(&["sh", "-c", &script]));
    for path in &masked {
        assert!(
            output.contains(&format!("{path}=0\n")),
            "{path} is not masked: {output}"
        );
    }
    assert!(
        output.contains("\n0\n"),
        "/sys/firmware is not masked: {output}"
    );
    assert!(!output.contains("writable"), "{output}");
    assert!(output.contains("Read-only file system"), "{output}");
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn the_capability_set_is_dockers_default_and_cap_add_extends_it() {
    let host = Host::new(&[]);
    // The capabilities loading the seccomp filter needed are gone again.
    let status = [
        "grep",
        "-E",
        "^(Cap(Inh|Prm|Eff|Bnd|Amb)|Seccomp):",
        "/proc/self/status",
    ];
    let (_, output) = host.run_to_end("c-caps", host.config(&status));
    let default = "CapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\n\
                   CapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\nSeccomp:\t2\n";
    assert_eq!(output, default);
    let mut more = host.config(&status);
    more.cap_add = vec!["NET_ADMIN".into()];
    more.cap_drop = vec!["MKNOD".into(), "SETPCAP".into()];
    let (_, output) = host.run_to_end("c-caps2", more);
    // + NET_ADMIN (bit 12), - MKNOD (bit 27), - SETPCAP (bit 8)
    let fewer = "CapInh:\t0000000000000000\nCapPrm:\t00000000a00434fb\nCapEff:\t00000000a00434fb\n\
                 CapBnd:\t00000000a00434fb\nCapAmb:\t0000000000000000\nSeccomp:\t2\n";
    assert_eq!(output, fewer);
    let mut nobody = host.config(&status);
    nobody.user = Some("65534".into());
    let (_, output) = host.run_to_end("c-caps3", nobody);
    let none = "CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n\
                CapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\nSeccomp:\t2\n";
    assert_eq!(output, none);
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_syscall_the_seccomp_profile_blocks_fails_with_eperm() {
    let host = host_with_probe();
    let (_, output) = host.run_to_end("c-seccomp", host.config(&["probe", "keyctl"]));
    assert_eq!(output.trim(), "keyctl: EPERM");
    // A rule on an argument: personality(2) only with the values Docker allows.
    let (_, output) = host.run_to_end("c-persona", host.config(&["probe", "personality"]));
    assert_eq!(output.trim(), "personality: EPERM");
    let mut free = host.config(&["probe", "personality"]);
    free.security_opt = vec!["seccomp=unconfined".into()];
    let (_, output) = host.run_to_end("c-persona-free", free);
    assert_eq!(output.trim(), "personality: ok");
    let mut unconfined = host.config(&["probe", "keyctl"]);
    unconfined.security_opt = vec!["seccomp=unconfined".into()];
    let (_, output) = host.run_to_end("c-unconfined", unconfined);
    assert_ne!(
        output.trim(),
        "keyctl: EPERM",
        "without seccomp keyctl must get past the filter"
    );
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_process_over_the_memory_limit_is_oom_killed_and_the_exit_says_so() {
    let host = host_with_probe();
    let mut config = host.config(&["probe", "alloc", "200"]);
    config.memory = Some(64 << 20);
    config.memory_swap = Some(64 << 20);
    let (state, output) = host.run_to_end("c-oom", config);
    assert!(!output.contains("allocated"), "{output}");
    assert_eq!(state.exit_code, Some(137), "{state:#?}");
    assert!(state.oom_killed, "{state:#?}");
    let mut small = host.config(&["probe", "alloc", "16"]);
    small.memory = Some(64 << 20);
    let (state, output) = host.run_to_end("c-no-oom", small);
    assert!(
        output.contains("allocated") && !state.oom_killed,
        "{output} {state:#?}"
    );
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_pids_limit_stops_a_fork_bomb() {
    let host = Host::new(&[]);
    let script = "i=0; while [ $i -lt 60 ]; do sleep 30 & i=$((i+1)); done; ps | wc -l; kill $(jobs -p) 2>/dev/null; exit 0";
    let mut config = host.config(&["sh", "-c", script]);
    config.pids_limit = Some(20);
    let (_, output) = host.run_to_end("c-pids", config);
    assert!(output.contains("can't fork"), "{output}");
    let counted = output
        .lines()
        .filter_map(|l| l.trim().parse::<u32>().ok())
        .next_back();
    assert!(counted.is_none_or(|n| n <= 21), "{output}");
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_read_only_root_refuses_writes() {
    let host = Host::new(&[]);
    let mut config = host.config(&[
        "sh",
        "-c",
        "touch /x && echo wrote; touch /tmp/y && echo tmp",
    ]);
    config.read_only = true;
    let (_, output) = host.run_to_end("c-ro", config);
    assert!(!output.contains("wrote"), "{output}");
    assert!(output.contains("Read-only file system"), "{output}");
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn the_user_is_resolved_from_the_images_passwd() {
    let host = Host::new(&[]);
    let mut config = host.config(&["id"]);
    config.user = Some("nobody".into());
    let (_, output) = host.run_to_end("c-user", config);
    assert!(
        output.starts_with("uid=65534(nobody) gid=65534(nogroup)"),
        "{output}"
    );
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn ulimits_sysctls_env_and_working_dir_reach_the_process() {
    let host = Host::new(&[]);
    let script = "ulimit -n; ulimit -Hn; cat /proc/sys/net/ipv4/ip_forward; echo $GREETING; pwd";
    let mut config = host.config(&["sh", "-c", script]);
    config.ulimits.insert("nofile".into(), (1000, 2000));
    config
        .sysctls
        .insert("net.ipv4.ip_forward".into(), "1".into());
    config.env.insert("GREETING".into(), "hi there".into());
    config.working_dir = Some("/tmp".into());
    let (state, output) = host.run_to_end("c-settings", config);
    assert_eq!(state.exit_code, Some(0), "{output}");
    assert_eq!(output, "1000\n2000\n1\nhi there\n/tmp\n");
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_read_only_bind_mount_is_readable_but_not_writable() {
    let host = Host::new(&[]);
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("file"), "from the host").unwrap();
    let mut config = host.config(&[
        "sh",
        "-c",
        "cat /data/file; echo; touch /data/new && echo wrote",
    ]);
    config.mounts.push(rcompose_runtime::MountSpec {
        target: "/data".into(),
        source: data.path().display().to_string(),
        kind: "bind".into(),
        options: vec!["ro".into()],
    });
    let (_, output) = host.run_to_end("c-bind", config);
    assert!(output.starts_with("from the host\n"), "{output}");
    assert!(
        !output.contains("wrote") && !data.path().join("new").exists(),
        "{output}"
    );
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn an_empty_copy_up_volume_starts_with_the_images_content() {
    let extra = [("srv/app/seed.txt".to_string(), b"seed".to_vec(), 0o640)];
    let host = Host::new(&extra);
    let volume = tempfile::tempdir().unwrap();
    let mut config = host.config(&["cat", "/srv/app/seed.txt"]);
    config.mounts.push(rcompose_runtime::MountSpec {
        target: "/srv/app".into(),
        source: volume.path().display().to_string(),
        kind: "bind".into(),
        options: vec![rcompose_runtime::config::COPY_UP_OPTION.into()],
    });
    let (state, output) = host.run_to_end("c-copyup", config);
    assert_eq!((state.exit_code, output.as_str()), (Some(0), "seed"));
    let copied = std::fs::read_to_string(volume.path().join("seed.txt")).unwrap();
    assert_eq!(copied, "seed");
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_tty_container_gets_a_terminal_and_its_output_is_logged() {
    let host = Host::new(&[]);
    let mut config = host.config(&["sh", "-c", "tty; test -t 1 && echo is-a-tty; echo $TERM"]);
    config.tty = true;
    let (state, output) = host.run_to_end("c-tty", config);
    assert_eq!(state.exit_code, Some(0), "{output}");
    assert!(output.starts_with("/dev/pts/"), "{output:?}");
    assert!(output.contains("is-a-tty"), "{output:?}");
    assert!(output.contains("xterm"), "{output:?}");
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn privileged_lifts_the_capability_set_seccomp_and_masks() {
    let host = host_with_probe();
    let script = "grep ^CapEff /proc/self/status; probe keyctl; wc -c < /proc/timer_list";
    let mut config = host.config(&["sh", "-c", script]);
    config.privileged = true;
    let (_, output) = host.run_to_end("c-priv", config);
    assert!(!output.contains("keyctl: EPERM"), "{output}");
    assert!(!output.contains("00000000a80425fb"), "{output}");
    let effective = output
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap();
    let bits = u64::from_str_radix(effective, 16).unwrap();
    assert!(bits.count_ones() >= 38, "not every capability: {output}");
    assert!(
        !output.ends_with("\n0\n"),
        "/proc/timer_list is still masked: {output}"
    );
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn cpu_limits_land_in_the_containers_cgroup() {
    let host = Host::new(&[]);
    let mut config = host.config(&["sleep", "600"]);
    config.cpus = Some(0.5);
    config.cpu_shares = Some(512);
    host.run("c-cpu", config);
    let v1 = std::path::Path::new("/sys/fs/cgroup/cpu/rcompose/c-cpu");
    if v1.exists() {
        let read = |f: &str| {
            std::fs::read_to_string(v1.join(f))
                .unwrap()
                .trim()
                .to_string()
        };
        assert_eq!(read("cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpu.cfs_period_us"), "100000");
        assert_eq!(read("cpu.shares"), "512");
    } else {
        let max = std::fs::read_to_string("/sys/fs/cgroup/rcompose/c-cpu/cpu.max").unwrap();
        assert_eq!(max.trim(), "50000 100000");
    }
}
