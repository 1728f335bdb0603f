//! Runs a child process and measures its wall time and peak resident set size.
//!
//! On Linux the child is reaped with `wait4`, whose `rusage.ru_maxrss` is that child's own peak RSS in KiB (unlike
//! `getrusage(RUSAGE_CHILDREN)`, which reports the largest of all children so far) and whose
//! `ru_utime + ru_stime` is its CPU time. Elsewhere the child is waited for normally and the peak RSS and CPU time
//! are unknown.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{BenchError, Result};

/// What to do with the child's standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdout {
    /// Discard it (`/dev/null`): timed runs.
    Discard,
    /// Keep it, to check the output.
    Capture,
}

/// One measured child run.
#[derive(Debug, Clone)]
pub struct Measured {
    /// From just before `spawn` to the child being reaped.
    pub wall: Duration,
    /// Peak RSS in KiB (`None` where unknown).
    pub max_rss_kib: Option<u64>,
    /// User plus system CPU time of the child (`None` where unknown).
    pub cpu: Option<Duration>,
    /// Exit code, or `None` if killed by a signal.
    pub exit_code: Option<i32>,
    /// Standard output when captured, else empty.
    pub stdout: Vec<u8>,
    /// Standard error (always captured).
    pub stderr: Vec<u8>,
}

impl Measured {
    /// Exited with status 0.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// Standard error as text, trimmed, for messages.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).trim().to_string()
    }
}

/// Runs `command` with stdin from `/dev/null` and stderr captured, and measures it.
pub fn run_measured(command: &mut Command, stdout: Stdout) -> Result<Measured> {
    let program = std::path::PathBuf::from(command.get_program());
    command
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .stdout(match stdout {
            Stdout::Discard => Stdio::null(),
            Stdout::Capture => Stdio::piped(),
        });
    let start = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| BenchError::io("starting", &program, e))?;
    let stderr_pipe = child.stderr.take();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(mut pipe) = stderr_pipe {
            let _ = pipe.read_to_end(&mut text);
        }
        text
    });
    let mut out = Vec::new();
    if let Some(mut pipe) = child.stdout.take() {
        pipe.read_to_end(&mut out)
            .map_err(|e| BenchError::io("reading the output of", &program, e))?;
    }
    let Reaped {
        exit_code,
        max_rss_kib,
        cpu,
    } = reap(&mut child).map_err(|e| BenchError::io("waiting for", &program, e))?;
    let wall = start.elapsed();
    let stderr = stderr_reader.join().unwrap_or_default();
    Ok(Measured {
        wall,
        max_rss_kib,
        cpu,
        exit_code,
        stdout: out,
        stderr,
    })
}

/// Exit code and resource use of a reaped child.
struct Reaped {
    exit_code: Option<i32>,
    max_rss_kib: Option<u64>,
    cpu: Option<Duration>,
}

#[cfg(target_os = "linux")]
fn reap(child: &mut std::process::Child) -> std::io::Result<Reaped> {
    let pid = libc::pid_t::try_from(child.id()).map_err(std::io::Error::other)?;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is a C struct of integers (and `timeval`s of integers); all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, not yet reaped (std only reaps in `wait`/`try_wait`, which are never
        // called on it); `status` and `usage` are valid, writable and live across the call.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            break;
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
    let exit_code = if libc::WIFEXITED(status) {
        Some(libc::WEXITSTATUS(status))
    } else {
        None
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    Ok(Reaped {
        exit_code,
        max_rss_kib: u64::try_from(usage.ru_maxrss).ok(),
        cpu: Some(time(usage.ru_utime) + time(usage.ru_stime)),
    })
}

#[cfg(not(target_os = "linux"))]
fn reap(child: &mut std::process::Child) -> std::io::Result<Reaped> {
    let status = child.wait()?;
    Ok(Reaped {
        exit_code: status.code(),
        max_rss_kib: None,
        cpu: None,
    })
}
