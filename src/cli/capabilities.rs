//! `rosetta capabilities`: the capability matrix of a mappings directory, as a table for the
//! terminal, Markdown (the README's support table) or JSON.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::mapping::Mapping;
use crate::translate::fidelity::matrix::{Cell, matrix};

/// The output formats.
pub const FORMATS: [&str; 3] = ["table", "markdown", "json"];

/// The matrix of `mappings` (in their order) in `format` (one of [`FORMATS`]).
pub fn render(mappings: &[&Mapping], format: &str) -> String {
    let rows = matrix(mappings);
    let names: Vec<&str> = mappings.iter().map(|m| m.name.as_str()).collect();
    match format {
        "json" => {
            let features: Vec<Value> = rows
                .iter()
                .map(|(f, cells)| {
                    let by_mapping: Map<String, Value> = names
                        .iter()
                        .zip(cells)
                        .map(|(n, c)| (n.to_string(), cell_json(c)))
                        .collect();
                    json!({"feature": f.name, "route": f.op.name(), "mappings": by_mapping})
                })
                .collect();
            let doc = json!({"mappings": names, "features": features});
            serde_json::to_string_pretty(&doc).expect("JSON") + "\n"
        }
        "markdown" => {
            let mut out = String::new();
            let _ = writeln!(out, "| feature | {} |", names.join(" | "));
            let _ = writeln!(out, "|---|{}", "---|".repeat(names.len()));
            for (f, cells) in &rows {
                let words: Vec<&str> = cells.iter().map(Cell::word).collect();
                let _ = writeln!(out, "| `{}` | {} |", f.name, words.join(" | "));
            }
            out
        }
        _ => {
            let first = rows.iter().map(|(f, _)| f.name.len()).max().unwrap_or(7);
            let widths: Vec<usize> = names.iter().map(|n| n.len().max(7)).collect();
            let mut out = format!("{:<first$}", "feature");
            for (n, w) in names.iter().zip(&widths) {
                let _ = write!(out, "  {n:<w$}");
            }
            out.push('\n');
            for (f, cells) in &rows {
                let _ = write!(out, "{:<first$}", f.name);
                for (c, w) in cells.iter().zip(&widths) {
                    let _ = write!(out, "  {:<w$}", c.word());
                }
                out.push('\n');
            }
            out
        }
    }
}

fn cell_json(c: &Cell) -> Value {
    match c {
        Cell::Translated => json!({"status": "translated"}),
        Cell::Dropped(names) => json!({"status": "dropped", "dropped": names}),
        Cell::Refused(reason) => json!({"status": "refused", "reason": reason}),
        Cell::NoRoute => json!({"status": "no_route"}),
    }
}

/// The README's support table: the lines between these markers are the Markdown matrix of
/// the shipped mappings.
pub const README_BEGIN: &str =
    "<!-- capabilities:begin (rosetta capabilities --format markdown) -->";
pub const README_END: &str = "<!-- capabilities:end -->";

/// The text between the README markers, if both are there.
pub fn readme_table(readme: &str) -> Option<&str> {
    let start = readme.find(README_BEGIN)? + README_BEGIN.len();
    let end = start + readme[start..].find(README_END)?;
    Some(readme[start..end].trim_matches('\n'))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;

    fn shipped() -> Vec<Arc<Mapping>> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        crate::mapping::load_dir(&root.join("mappings"), &|_| None).expect("shipped mappings load")
    }

    /// The README's support table is the matrix of the shipped mappings: regenerate it with
    /// `rosetta capabilities --format markdown` when a mapping changes.
    #[test]
    fn the_readme_table_is_the_matrix_of_the_shipped_mappings() {
        let ms = shipped();
        let refs: Vec<&Mapping> = ms.iter().map(|m| m.as_ref()).collect();
        let want = render(&refs, "markdown");
        let readme =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
                .unwrap();
        let have = readme_table(&readme).expect("the README has the capabilities markers");
        assert_eq!(
            have,
            want.trim_end(),
            "README.md is stale: paste `rosetta capabilities --format markdown` between the markers"
        );
    }

    #[test]
    fn every_format_shows_the_same_cells() {
        let ms = shipped();
        let refs: Vec<&Mapping> = ms.iter().map(|m| m.as_ref()).collect();
        let json: Value = serde_json::from_str(&render(&refs, "json")).unwrap();
        let table = render(&refs, "table");
        let lines: Vec<&str> = table.lines().skip(1).collect();
        let rows = matrix(&refs);
        assert_eq!(json["features"].as_array().unwrap().len(), rows.len());
        assert_eq!(lines.len(), rows.len());
        let mut dropped = 0;
        for (i, (f, cells)) in rows.iter().enumerate() {
            let words: Vec<&str> = lines[i][f.name.len()..].split_whitespace().collect();
            assert_eq!(
                words,
                cells.iter().map(Cell::word).collect::<Vec<_>>(),
                "{}",
                f.name
            );
            for (m, c) in refs.iter().zip(cells) {
                let j = &json["features"][i]["mappings"][m.name.as_str()];
                let status = match c {
                    Cell::Translated => "translated",
                    Cell::Dropped(names) => {
                        dropped += 1;
                        assert_eq!(j["dropped"], json!(names), "{} {}", f.name, m.name);
                        "dropped"
                    }
                    Cell::Refused(_) => "refused",
                    Cell::NoRoute => "no_route",
                };
                assert_eq!(j["status"], status, "{} {}", f.name, m.name);
            }
        }
        assert!(dropped > 0, "the shipped mappings leave something out");
    }
}
