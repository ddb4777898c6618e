//! Plain-text tables with aligned columns (numbers right-aligned), and `label: value` blocks.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table: a header row, then rows; columns are separated by two spaces.
pub struct Table {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(columns: &[(&'static str, Align)]) -> Self {
        Self {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.columns.len());
        self.rows.push(cells);
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (title, _))| {
                self.rows
                    .iter()
                    .map(|row| row[i].chars().count())
                    .chain([title.len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let header = self.columns.iter().map(|(title, _)| title.to_string());
        for cells in std::iter::once(header.collect()).chain(self.rows.iter().cloned()) {
            let mut line = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = " ".repeat(widths[i] - cell.chars().count());
                match self.columns[i].1 {
                    Align::Left => {
                        line.push_str(cell);
                        line.push_str(&pad);
                    }
                    Align::Right => {
                        line.push_str(&pad);
                        line.push_str(cell);
                    }
                }
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// `label: value` lines with the values aligned.
#[derive(Default)]
pub struct Fields(Vec<(&'static str, String)>);

impl Fields {
    pub fn add(&mut self, label: &'static str, value: impl Into<String>) {
        self.0.push((label, value.into()));
    }
}

impl fmt::Display for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.0.iter().map(|(l, _)| l.len() + 1).max().unwrap_or(0);
        for (label, value) in &self.0 {
            writeln!(f, "{:<width$} {value}", format!("{label}:"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns() {
        let mut table = Table::new(&[("NAME", Align::Left), ("BYTES", Align::Right)]);
        table.row(vec!["photos".into(), "5".into()]);
        table.row(vec!["ünï".into(), "12345".into()]);
        assert_eq!(
            table.to_string(),
            "NAME    BYTES\nphotos      5\nünï     12345\n"
        );
    }

    #[test]
    fn aligns_fields() {
        let mut fields = Fields::default();
        fields.add("name", "alice");
        fields.add("created", "today");
        assert_eq!(fields.to_string(), "name:    alice\ncreated: today\n");
    }
}
