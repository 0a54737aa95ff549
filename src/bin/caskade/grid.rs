//! Result cells and the aligned text grid the `partitions` and
//! `compaction` reports print them in.

/// One result: (table header, JSON key, as shown, as JSON).
pub type Cell = (&'static str, &'static str, String, String);

/// Rows of cells as an aligned grid: `names[0]` heads the first column,
/// `names[1..]` name the rows; the other columns are headed by the cells'
/// headers (taken from the first row). Empty without rows.
pub fn grid<N: AsRef<str>>(names: &[N], rows: &[Vec<Cell>]) -> String {
    let Some(first) = rows.first() else {
        return String::new();
    };
    let head = first.iter().map(|c| c.0.to_string());
    let mut lines: Vec<Vec<String>> = vec![
        std::iter::once(names[0].as_ref().to_string())
            .chain(head)
            .collect(),
    ];
    for (name, row) in names[1..].iter().zip(rows) {
        let cells = row.iter().map(|c| c.2.clone());
        lines.push(std::iter::once(name.as_ref().to_string()).chain(cells).collect());
    }
    let mut width = vec![0; lines.iter().map(Vec::len).max().unwrap_or(0)];
    for line in &lines {
        for (w, c) in width.iter_mut().zip(line) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut s = String::new();
    for line in &lines {
        for (i, (c, w)) in line.iter().zip(&width).enumerate() {
            let pad = " ".repeat(w - c.chars().count());
            s += &if i == 0 {
                format!("{c}{pad}  ")
            } else {
                format!("{pad}{c}  ")
            };
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
    }
    s
}
