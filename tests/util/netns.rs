//! Private network namespaces for the silent-peer tests: a test re-runs
//! itself under `unshare -n` (which needs `CAP_SYS_ADMIN`), brings loopback
//! up there and can then "unplug" 127.0.0.1 into a blackhole. The namespace,
//! and every rule added in it, end with the process. Where `unshare -n` is not
//! permitted the outer run says so and passes, unless
//! `ALTSOCK_REQUIRE_NETNS=1` is set (`scripts/test` sets it as root).

use std::process::Command;

/// Runs `cmd` with `args` and fails the test unless it succeeds.
pub fn run(cmd: &str, args: &[&str]) {
    let status = Command::new(cmd).args(args).status().expect(cmd);
    assert!(status.success(), "{cmd} {args:?} failed");
}

/// Re-runs the test named `test` of this binary in a private network
/// namespace with `inner_env` set, and fails unless it ran and passed there.
/// Lines of its output starting with `report_prefix` are echoed. Where
/// `unshare -n` is not permitted, prints `skip_note` and returns.
pub fn rerun_in_private_namespace(
    inner_env: &str,
    test: &str,
    skip_note: &str,
    report_prefix: &str,
) {
    let permitted = Command::new("unshare")
        .args(["-n", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !permitted {
        assert!(
            std::env::var_os("ALTSOCK_REQUIRE_NETNS").is_none(),
            "unshare -n is not permitted here"
        );
        eprintln!("{skip_note}");
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new("unshare")
        .arg("-n")
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(inner_env, "1")
        .output()
        .expect("run in a namespace");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "inner run failed:\n{text}");
    assert!(text.contains("1 passed"), "inner test did not run:\n{text}");
    for line in text.lines().filter(|l| l.starts_with(report_prefix)) {
        eprintln!("{line}");
    }
}

/// Brings the namespace's loopback interface up.
pub fn loopback_up() {
    run("ip", &["link", "set", "lo", "up"]);
}

/// Makes every packet to 127.0.0.1 vanish, the way a dead network does:
/// a policy rule ahead of the local table sends it to a blackhole route, whose
/// "transmission" succeeds and goes nowhere. (A qdisc that drops would be
/// reported to TCP as local congestion, and the kernel would retry its
/// keepalive probe without ever counting it unanswered.) Only call it inside
/// the private namespace.
pub fn unplug() {
    run(
        "ip",
        &["route", "add", "blackhole", "127.0.0.1/32", "table", "100"],
    );
    run("ip", &["rule", "add", "prio", "10", "lookup", "local"]);
    run("ip", &["rule", "del", "prio", "0"]);
    run(
        "ip",
        &[
            "rule",
            "add",
            "prio",
            "5",
            "to",
            "127.0.0.1",
            "lookup",
            "100",
        ],
    );
}
