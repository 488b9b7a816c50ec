//! Running the `tributaryd` binary.

use crate::Error;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The `tributaryd` binary to drive.
#[derive(Debug, Clone)]
pub struct Tributaryd {
    pub binary: PathBuf,
}

impl Tributaryd {
    /// A specific binary.
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        Self {
            binary: binary.into(),
        }
    }

    /// `$TRIBUTARYD` when set (what `chain/build` prints), else `tributaryd` from `PATH`.
    pub fn from_env() -> Self {
        Self::new(std::env::var_os("TRIBUTARYD").unwrap_or_else(|| "tributaryd".into()))
    }

    /// Runs `tributaryd args...` and returns its stdout; a non-zero exit is an error with stderr.
    pub fn run(&self, args: &[&str]) -> Result<String, Error> {
        let output = self.output(args)?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Like [`Tributaryd::run`] for commands that print JSON (on stdout or, for some SDK
    /// commands, stderr).
    pub fn run_json(&self, args: &[&str]) -> Result<serde_json::Value, Error> {
        let output = self.output(args)?;
        for stream in [&output.stdout, &output.stderr] {
            let text = String::from_utf8_lossy(stream);
            if let Some(start) = text.find('{') {
                if let Ok(value) = serde_json::from_str(text[start..].trim()) {
                    return Ok(value);
                }
            }
        }
        Err(Error::Output(format!(
            "`tributaryd {}` printed no JSON",
            args.join(" ")
        )))
    }

    /// Runs the command to completion; a non-zero exit is an error carrying stderr.
    fn output(&self, args: &[&str]) -> Result<std::process::Output, Error> {
        let output = Command::new(&self.binary)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| Error::Spawn {
                binary: self.binary.clone(),
                source,
            })?;
        if !output.status.success() {
            return Err(Error::Command {
                args: args.join(" "),
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        Ok(output)
    }

    /// Path arguments as `&str` (homes are created by this crate, so always UTF-8).
    pub(crate) fn path(path: &Path) -> &str {
        path.to_str().expect("devnet paths are UTF-8")
    }
}
