//! The demo's corpora, read from files Debian packages install: the system-call manual pages of
//! `manpages-dev` and the fortune cookie files of `fortunes`.

use std::io::Read;
use std::path::Path;

/// One document and the contributor group it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub title: String,
    pub text: String,
    /// Index into [`Source::groups`].
    pub group: usize,
}

/// A corpus split into contributor groups.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub name: String,
    pub domain: String,
    pub description: String,
    /// Where the bytes come from.
    pub origin: String,
    /// One label per contributor group.
    pub groups: Vec<String>,
    pub documents: Vec<Document>,
    /// Documents of the same kind that nobody contributes: the model never trains on them, so
    /// they measure how well it predicts its domain.
    pub held_out: Vec<Document>,
}

/// How much of a corpus a run takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sizes {
    pub groups: usize,
    /// Contributions per group.
    pub per_group: usize,
    /// Held-out documents per group.
    pub held_per_group: usize,
    /// Longest document kept, in bytes (cut at a line end).
    pub max_document_bytes: usize,
}

/// The section 2 manual pages (system calls) in `dir`, in `groups` alphabetical ranges; a
/// range is one contributor, who contributes `per_group` pages spread over it. Pages between
/// them are held out.
pub fn manpages(dir: &Path, sizes: Sizes) -> Result<Source, String> {
    let Sizes {
        groups,
        per_group,
        held_per_group,
        max_document_bytes,
    } = sizes;
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e} (is manpages-dev installed?)", dir.display()))?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".2.gz") && !name.starts_with('_'))
        .collect();
    names.sort();
    let mut pages = Vec::new();
    for name in names {
        let raw = read_gz(&dir.join(&name))?;
        // `.so` pages only point at another page.
        if raw.trim_start().starts_with(".so ") {
            continue;
        }
        let text = roff_to_text(&raw);
        if text.len() < 200 {
            continue;
        }
        let title = name.trim_end_matches(".2.gz").to_string();
        pages.push((
            title.clone(),
            truncate(&format!("{title}(2)\n{text}"), max_document_bytes),
        ));
    }
    let picked = per_group + held_per_group;
    if pages.len() < groups * picked {
        return Err(format!(
            "{} has {} usable pages, {} needed",
            dir.display(),
            pages.len(),
            groups * picked
        ));
    }
    let chunk = pages.len() / groups;
    let mut labels = Vec::new();
    let mut documents = Vec::new();
    let mut held_out = Vec::new();
    for g in 0..groups {
        let range = &pages[g * chunk..(g + 1) * chunk];
        labels.push(format!(
            "man2 pages {}–{}",
            range[0].0,
            range[range.len() - 1].0
        ));
        // Evenly spread over the range; every so often a page is held out.
        for k in 0..picked {
            let (title, text) = &range[k * range.len() / picked];
            let document = Document {
                title: format!("{title}(2)"),
                text: text.clone(),
                group: g,
            };
            if is_held_out(k, picked, held_per_group) {
                held_out.push(document);
            } else {
                documents.push(document);
            }
        }
    }
    Ok(Source {
        name: "linux-syscalls".into(),
        domain: "systems-programming".into(),
        description: "Linux system calls, from the section 2 manual pages".into(),
        origin: format!("Debian package manpages-dev, {}", dir.display()),
        groups: labels,
        documents,
        held_out,
    })
}

/// Whether the `k`th of `picked` documents is one of the `held` held out: evenly spaced, the
/// first one in the middle of its stride.
fn is_held_out(k: usize, picked: usize, held: usize) -> bool {
    if held == 0 {
        return false;
    }
    let stride = picked / held;
    k % stride == stride / 2 && k / stride < held
}

/// The fortunes of each file in `categories` under `dir` (one contributor per file), in file
/// order: each contribution a collection of consecutive fortunes of at most
/// `max_document_bytes`, separated as in the file, at most `per_group` of them; every tenth
/// fortune is held out.
pub fn fortunes(dir: &Path, categories: &[&str], sizes: Sizes) -> Result<Source, String> {
    let mut documents = Vec::new();
    let mut held_out = Vec::new();
    let mut labels = Vec::new();
    for (g, category) in categories.iter().take(sizes.groups).enumerate() {
        let path = dir.join(category);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "{}: {e} (is the fortunes package installed?)",
                path.display()
            )
        })?;
        let all: Vec<&str> = text
            .split("\n%\n")
            .map(|f| f.trim_matches(|c| c == '\n' || c == '%'))
            .filter(|f| f.len() >= 40 && f.len() <= sizes.max_document_bytes)
            .collect();
        let (mut held, mut kept) = (Vec::new(), Vec::new());
        for (k, fortune) in all.iter().enumerate() {
            if k % 10 == 5 && held.len() < sizes.held_per_group {
                held.push(*fortune);
            } else {
                kept.push(*fortune);
            }
        }
        let mut collections: Vec<Vec<&str>> = Vec::new();
        let mut size = 0;
        for fortune in kept {
            if collections.is_empty() || size + fortune.len() + 3 > sizes.max_document_bytes {
                if collections.len() == sizes.per_group {
                    break;
                }
                collections.push(Vec::new());
                size = 0;
            }
            size += fortune.len() + 3;
            if let Some(last) = collections.last_mut() {
                last.push(fortune);
            }
        }
        // A short file gives fewer collections; it must give one at least.
        if collections.is_empty() || held.len() < sizes.held_per_group {
            return Err(format!(
                "{} has {} fortunes of 40-{} bytes: too few for a collection of up to {} and {} held out",
                path.display(),
                all.len(),
                sizes.max_document_bytes,
                sizes.per_group,
                sizes.held_per_group
            ));
        }
        labels.push(format!("fortunes: {category}"));
        for (k, collection) in collections.iter().enumerate() {
            let text = collection.join("\n%\n");
            documents.push(Document {
                title: format!("{category} #{}: {}", k + 1, first_words(collection[0], 5)),
                text,
                group: g,
            });
        }
        for fortune in held {
            held_out.push(Document {
                title: first_words(fortune, 6),
                text: fortune.to_string(),
                group: g,
            });
        }
    }
    Ok(Source {
        name: "fortune-cookies".into(),
        domain: "quotations".into(),
        description: "Quotations, jokes and aphorisms from the fortune cookie files".into(),
        origin: format!("Debian package fortunes, {}", dir.display()),
        groups: labels,
        documents,
        held_out,
    })
}

fn read_gz(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text)
}

fn first_words(text: &str, n: usize) -> String {
    let words: Vec<&str> = text.split_whitespace().take(n).collect();
    format!("{}…", words.join(" "))
}

/// Cuts at the last line end before `max` bytes.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text[..end].rfind('\n').unwrap_or(end);
    text[..cut].to_string()
}

/// Plain text of a man page: section headings and macro arguments kept, formatting dropped.
pub fn roff_to_text(roff: &str) -> String {
    let mut out = String::new();
    for line in roff.lines() {
        if line.starts_with(".\\\"") || line.starts_with("'\\\"") {
            continue;
        }
        if let Some(rest) = line.strip_prefix('.') {
            let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            match name {
                "SH" | "SS" => {
                    out.push('\n');
                    out.push_str(&unescape(args).replace('"', ""));
                    out.push('\n');
                }
                "B" | "I" | "BR" | "BI" | "IB" | "IR" | "RB" | "RI" | "IP" | "TP" => {
                    let text = unescape(args).replace('"', "");
                    if !text.is_empty() {
                        out.push_str(&text);
                        out.push(if matches!(name, "IP" | "TP") {
                            '\n'
                        } else {
                            ' '
                        });
                    }
                }
                "PP" | "P" | "LP" | "br" | "sp" => out.push('\n'),
                _ => {}
            }
            continue;
        }
        out.push_str(&unescape(line));
        out.push('\n');
    }
    // Collapse runs of blank lines.
    let mut text = String::new();
    let mut blank = 0;
    for line in out.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        text.push_str(line);
        text.push('\n');
    }
    text.trim().to_string()
}

/// Drops roff escapes: fonts (`\fB`, `\f[CR]`), named characters (`\(em`, `\[aq]`), strings
/// (`\*(xx`), and keeps the characters a few common ones stand for.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('f') => match chars.next() {
                Some('[') => {
                    for c in chars.by_ref() {
                        if c == ']' {
                            break;
                        }
                    }
                }
                Some('(') => {
                    chars.next();
                    chars.next();
                }
                _ => {}
            },
            Some('(') => {
                let name: String = [chars.next(), chars.next()].into_iter().flatten().collect();
                out.push_str(named(&name));
            }
            Some('[') => {
                let mut name = String::new();
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    name.push(c);
                }
                out.push_str(named(&name));
            }
            Some('*') => match chars.next() {
                Some('(') => {
                    chars.next();
                    chars.next();
                }
                Some('[') => {
                    for c in chars.by_ref() {
                        if c == ']' {
                            break;
                        }
                    }
                }
                _ => {}
            },
            Some('-') => out.push('-'),
            Some('e') | Some('\\') => out.push('\\'),
            Some(' ') | Some('~') => out.push(' '),
            Some('&') | Some('%') | Some('c') | Some(':') | Some('|') | Some('^') => {}
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

fn named(name: &str) -> &'static str {
    match name {
        "em" => "—",
        "en" => "–",
        "aq" => "'",
        "dq" => "\"",
        "lq" | "rq" => "\"",
        "bu" => "•",
        "ti" => "~",
        "ha" => "^",
        "rs" => "\\",
        "mu" => "×",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roff_keeps_headings_and_text_and_drops_formatting() {
        let roff = ".\\\" comment\n.TH OPEN 2\n.SH NAME\nopen \\- open a file\n.SH SYNOPSIS\n\
                    .B #include <fcntl.h>\n.PP\nThe \\fBopen\\fP() call \\(em see \\f[I]close\\f[].\n";
        let text = roff_to_text(roff);
        assert_eq!(
            text,
            "NAME\nopen - open a file\n\nSYNOPSIS\n#include <fcntl.h>\nThe open() call — see close."
        );
    }

    #[test]
    fn long_documents_are_cut_at_a_line_end() {
        let line = "x".repeat(100);
        let text = vec![line.as_str(); 40].join("\n");
        let cut = truncate(&text, 1600);
        assert!(cut.len() <= 1600);
        assert!(cut.ends_with('x'));
        assert_eq!(cut.len() % 101, 100);
    }

    #[test]
    fn held_out_documents_are_evenly_spaced_and_counted() {
        for (picked, held) in [(26, 2), (4, 1), (10, 0), (7, 3)] {
            let chosen: Vec<usize> = (0..picked)
                .filter(|&k| is_held_out(k, picked, held))
                .collect();
            assert_eq!(chosen.len(), held, "{picked} {held}");
        }
        assert_eq!(
            (0..26)
                .filter(|&k| is_held_out(k, 26, 2))
                .collect::<Vec<_>>(),
            vec![6, 19]
        );
    }
}
