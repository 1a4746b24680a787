//! Running a program as a child process and measuring it from outside:
//! wall time, and the child's own peak resident set size as the kernel
//! counted it (`wait4` rusage `ru_maxrss`), so Rust and Python are
//! measured the same way.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// What one measured run of a program gave.
#[derive(Debug, Clone)]
pub struct Measured {
    pub wall: Duration,
    /// Peak resident set size of the child (and of any children it waited
    /// for), in bytes.
    pub peak_rss_bytes: u64,
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Measured {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }

    pub fn peak_rss_mib(&self) -> f64 {
        self.peak_rss_bytes as f64 / super::MIB
    }

    /// A successful run of `wall_ms` milliseconds that peaked at `rss_mib`.
    #[cfg(test)]
    pub(crate) fn succeeded(wall_ms: u64, rss_mib: u64) -> Self {
        Measured {
            wall: Duration::from_millis(wall_ms),
            peak_rss_bytes: rss_mib << 20,
            exit_code: Some(0),
            stdout: String::new(),
            stderr: String::new(),
        }
    }
}

/// Runs `cmd` to completion with stdout and stderr going to
/// `<log_dir>/<label>.{stdout,stderr}` (files, so a chatty child can never
/// block on a full pipe), and measures it.
pub fn run(cmd: &mut Command, log_dir: &Path, label: &str) -> Result<Measured> {
    std::fs::create_dir_all(log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
    let out_path = log_dir.join(format!("{label}.stdout"));
    let err_path = log_dir.join(format!("{label}.stderr"));
    let create =
        |p: &Path| std::fs::File::create(p).with_context(|| format!("creating {}", p.display()));
    cmd.stdin(Stdio::null())
        .stdout(create(&out_path)?)
        .stderr(create(&err_path)?);
    let started = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    let (status, rss) = wait_with_rusage(child.id())?;
    let wall = started.elapsed();
    // `wait4` reaped the child: std's handle must not wait on it again.
    drop(child);
    Ok(Measured {
        wall,
        peak_rss_bytes: rss,
        exit_code: status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    })
}

/// [`run`], then [`check`]: fails, naming `label`, unless the child
/// succeeded.
pub fn run_checked(cmd: &mut Command, log_dir: &Path, label: &str) -> Result<Measured> {
    let m = run(cmd, log_dir, label)?;
    check(&m, label)?;
    Ok(m)
}

/// Waits for `pid` and returns its exit code (`None` when a signal ended
/// it) and its peak RSS in bytes.
#[cfg(unix)]
fn wait_with_rusage(pid: u32) -> Result<(Option<i32>, u64)> {
    let pid = libc::pid_t::try_from(pid).context("child pid out of range")?;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain old data, so all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are to live locals of the right types, and
        // `pid` is our own child, which nothing else waits for.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("waiting for the child (wait4)");
        }
    }
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let maxrss = u64::try_from(usage.ru_maxrss).unwrap_or(0);
    // Linux reports kilobytes, macOS bytes.
    let bytes = if cfg!(target_os = "macos") {
        maxrss
    } else {
        maxrss * 1024
    };
    Ok((code, bytes))
}

#[cfg(not(unix))]
fn wait_with_rusage(_pid: u32) -> Result<(Option<i32>, u64)> {
    bail!("measuring peak memory needs wait4, which this platform lacks")
}

/// Fails with the child's stderr when it did not succeed.
pub fn check(m: &Measured, what: &str) -> Result<()> {
    if !m.success() {
        let code = m
            .exit_code
            .map_or_else(|| "a signal".to_string(), |c| format!("exit code {c}"));
        bail!("{what} failed ({code}):\n{}", m.stderr.trim_end());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_child_that_allocates() {
        let dir = tempfile::tempdir().unwrap();
        // The shell itself holds a 32 MiB string.
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "x=$(head -c 33554432 /dev/zero | tr '\\0' a); echo ${#x}; exit 3",
        ]);
        let m = run(&mut cmd, dir.path(), "child").unwrap();
        assert_eq!(m.exit_code, Some(3));
        assert_eq!(m.stdout.trim(), "33554432");
        assert!(m.peak_rss_bytes > 32 << 20, "{}", m.peak_rss_bytes);
        assert!(check(&m, "sh").is_err());
    }

    #[test]
    fn a_small_child_has_a_small_peak() {
        let dir = tempfile::tempdir().unwrap();
        let m = run(Command::new("true").arg("x"), dir.path(), "true").unwrap();
        assert!(m.success());
        assert!(
            m.peak_rss_bytes > 0 && m.peak_rss_bytes < 32 << 20,
            "{}",
            m.peak_rss_bytes
        );
    }
}
