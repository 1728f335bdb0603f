//! Facts about the machine and the checkout for the report header.

use std::path::Path;
use std::process::Command;

/// Where and on what the benchmark ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// Logical processors available to this process.
    pub processors: usize,
    /// CPU model (`model name` in /proc/cpuinfo), or `unknown`.
    pub cpu_model: String,
    /// `git rev-parse --short HEAD` of the checkout, or `unknown`.
    pub commit: String,
    /// Operating system and architecture (`linux x86_64`).
    pub os: String,
}

impl Machine {
    /// Collects the facts; `repo` is the checkout the commit is read from.
    pub fn detect(repo: &Path) -> Self {
        let processors = std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1);
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| cpu_model_from_cpuinfo(&text))
            .unwrap_or_else(|| "unknown".into());
        let commit = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(["rev-parse", "--short", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".into());
        Self {
            processors,
            cpu_model,
            commit,
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}

/// The first `model name` value of a /proc/cpuinfo text.
pub fn cpu_model_from_cpuinfo(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_model_is_the_first_model_name() {
        let text = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\n\
                    processor\t: 1\nmodel name\t: Other\n";
        assert_eq!(
            cpu_model_from_cpuinfo(text).as_deref(),
            Some("Intel(R) Xeon(R) Processor")
        );
        assert_eq!(cpu_model_from_cpuinfo("processor\t: 0\n"), None);
    }
}
