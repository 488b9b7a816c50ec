//! Text for people, JSON for scripts (`--output json`, as wasmd does).

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

impl Output {
    /// Prints `value` as JSON, or `text` for people.
    pub fn print<T: Serialize>(self, value: &T, text: impl FnOnce() -> String) {
        match self {
            Output::Json => println!(
                "{}",
                serde_json::to_string_pretty(value).expect("output serializes")
            ),
            Output::Text => println!("{}", text()),
        }
    }

    /// Reports a failure on stderr, with its causes.
    pub fn error(self, err: &anyhow::Error) {
        match self {
            Output::Json => eprintln!(
                "{}",
                serde_json::json!({
                    "error": err.to_string(),
                    "causes": err.chain().skip(1).map(|c| c.to_string()).collect::<Vec<_>>(),
                })
            ),
            Output::Text => {
                let top = err.to_string();
                eprintln!("error: {top}");
                // Library errors often quote their cause already; print only what is new.
                for cause in err.chain().skip(1).map(|c| c.to_string()) {
                    if !top.contains(&cause) {
                        eprintln!("  caused by: {cause}");
                    }
                }
            }
        }
    }
}
