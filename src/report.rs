//! What a mode hands back, and how it is printed.
//!
//! A mode returns a [`Report`] value; rendering it as text or JSON happens here, separately, so
//! every mode gets every format and the JSON shape is a deliberate, documented interface
//! (`docs/json.md`). Results go to stdout; logs and errors go to stderr.

use crate::cli::Format;
use crate::exit_code;
use std::io::{self, Write};

/// The result of a mode.
pub trait Report {
    /// Writes the human-readable form.
    ///
    /// # Errors
    /// The writer's I/O errors.
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()>;

    /// The JSON form: an object whose `mode` field names the mode.
    fn to_json(&self) -> serde_json::Value;

    /// The JUnit XML form, for modes that run test-like checks; `None` elsewhere.
    fn render_junit(&self) -> Option<String> {
        None
    }

    /// The exit code this report ends the run with.
    fn exit_code(&self) -> u8 {
        exit_code::SUCCESS
    }

    /// Whether the JSON form is printed on one line, as one of a stream of JSON lines (`serve`,
    /// whose first line is printed as it starts), rather than pretty-printed.
    fn json_lines(&self) -> bool {
        false
    }
}

/// Prints `report` in `format` to `out`.
///
/// # Errors
/// The writer's I/O errors.
pub fn emit(report: &dyn Report, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Text => report.render_text(out)?,
        Format::Json if report.json_lines() => {
            serde_json::to_writer(&mut *out, &report.to_json())?;
            writeln!(out)?;
        }
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &report.to_json())?;
            writeln!(out)?;
        }
        Format::Junit => match report.render_junit() {
            Some(xml) => out.write_all(xml.as_bytes())?,
            None => report.render_text(out)?,
        },
    }
    out.flush()
}

/// Writes a `--report` file beside its target and renames it into place, so a reader never sees
/// half a report.
///
/// # Errors
/// [`crate::error::Error::Config`] naming `--report PATH`.
pub fn write_report_file(path: &std::path::Path, body: &[u8]) -> crate::error::Result<()> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, body)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            crate::error::Error::config(
                format!("--report {}", path.display()),
                format!("cannot write: {e}"),
            )
        })
}

/// `1 credential`, `3 credentials`: a count with the noun that agrees with it.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// [`count`] for a `u64`.
pub fn count_u64(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Ids or versions, comma-separated: `3, 5, 8`.
pub fn join_numbers(numbers: &[i64]) -> String {
    numbers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A signed number of seconds as a short human span: `52m`, `3h 5m`, `2d 4h`, `40s`.
pub fn human_span(seconds: i64) -> String {
    let s = seconds.unsigned_abs();
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3_600, (s % 3_600) / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// Writes rows as left-aligned columns under a header.
///
/// # Errors
/// The writer's I/O errors.
pub fn write_table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  ", w = *w));
            }
        }
        s
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_span_picks_the_two_largest_units() {
        assert_eq!(human_span(40), "40s");
        assert_eq!(human_span(-3120), "52m");
        assert_eq!(human_span(3 * 3600 + 300), "3h 5m");
        assert_eq!(human_span(7200), "2h");
        assert_eq!(human_span(2 * 86_400 + 4 * 3600 + 59), "2d 4h");
    }

    #[test]
    fn table_aligns_columns() {
        let mut out = Vec::new();
        write_table(
            &mut out,
            &["ID", "NAME"],
            &[vec!["1".into(), "a".into()], vec!["100".into(), "b".into()]],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ID   NAME\n1    a\n100  b\n"
        );
    }
}
