//! Routing quality: accuracy, per-class precision/recall/F1, macro-F1 and the
//! confusion matrix (rows = true domain, columns = chosen expert).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassStats {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Queries whose true label is this class.
    pub support: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingReport {
    /// Label order of the confusion matrix's rows and columns.
    pub labels: Vec<String>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub per_class: Vec<ClassStats>,
    pub queries: usize,
}

impl RoutingReport {
    /// Builds the report from true and predicted label indices into `labels`.
    /// Precision of a class never predicted is 0 (and so is its F1), as
    /// scikit-learn's `zero_division=0`.
    pub fn new(labels: &[String], truth: &[usize], predicted: &[usize]) -> RoutingReport {
        assert_eq!(truth.len(), predicted.len(), "one prediction per query");
        let k = labels.len();
        let mut confusion = vec![vec![0usize; k]; k];
        for (&t, &p) in truth.iter().zip(predicted) {
            confusion[t][p] += 1;
        }
        RoutingReport::from_confusion(labels, confusion)
    }

    /// The report of a confusion matrix (`confusion[true][predicted]`, k × k for
    /// k labels), e.g. one read back from an older results.json: every figure is
    /// recomputed, so a stored macro-F1 of another definition is not carried over.
    pub fn from_confusion(labels: &[String], confusion: Vec<Vec<usize>>) -> RoutingReport {
        let k = labels.len();
        assert!(confusion.len() == k && confusion.iter().all(|r| r.len() == k), "a {k} × {k} confusion matrix");
        let total: usize = confusion.iter().flatten().sum();
        let correct: usize = (0..k).map(|i| confusion[i][i]).sum();
        let per_class: Vec<ClassStats> = (0..k)
            .map(|c| {
                let tp = confusion[c][c] as f64;
                let predicted_c: usize = (0..k).map(|t| confusion[t][c]).sum();
                let support: usize = confusion[c].iter().sum();
                let precision = if predicted_c == 0 { 0.0 } else { tp / predicted_c as f64 };
                let recall = if support == 0 { 0.0 } else { tp / support as f64 };
                let f1 = if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
                ClassStats { label: labels[c].clone(), precision, recall, f1, support }
            })
            .collect();
        // Macro-F1 over the classes with support (queries whose true label they are):
        // on data of one domain it is that domain's F1, not an average with the zero
        // F1 of classes that only received misrouted queries. (scikit-learn averages
        // over the union of true and predicted labels instead.)
        let present: Vec<&ClassStats> = per_class.iter().filter(|s| s.support > 0).collect();
        let macro_f1 = if present.is_empty() { 0.0 } else { present.iter().map(|s| s.f1).sum::<f64>() / present.len() as f64 };
        RoutingReport {
            labels: labels.to_vec(),
            confusion,
            accuracy: if total == 0 { 0.0 } else { correct as f64 / total as f64 },
            macro_f1,
            per_class,
            queries: total,
        }
    }

    /// The confusion matrix as CSV: `true \ routed` then one column per label.
    pub fn confusion_csv(&self) -> String {
        let mut header = vec!["true \\ routed"];
        header.extend(self.labels.iter().map(String::as_str));
        let rows: Vec<Vec<String>> =
            self.labels.iter().zip(&self.confusion).map(|(label, row)| std::iter::once(label.clone()).chain(row.iter().map(|n| n.to_string())).collect()).collect();
        crate::export::csv_text(&header, &rows)
    }

    /// Per-class precision, recall, F1 and support as CSV (empty fields where a class has no support).
    pub fn per_class_csv(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .per_class
            .iter()
            .map(|c| {
                let defined = |v: f64| if c.support == 0 { String::new() } else { format!("{v:.6}") };
                vec![c.label.clone(), format!("{:.6}", c.precision), defined(c.recall), defined(c.f1), c.support.to_string()]
            })
            .collect();
        crate::export::csv_text(&["domain", "precision", "recall", "f1", "support"], &rows)
    }

    /// A plain-text table with the confusion matrix.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(out, "queries {}  accuracy {:.4}  macro-F1 {:.4}\n", self.queries, self.accuracy, self.macro_f1);
        let _ = writeln!(out, "{:<14} {:>9} {:>9} {:>9} {:>8}", "class", "precision", "recall", "F1", "support");
        for s in &self.per_class {
            let _ = writeln!(out, "{:<14} {:>9.4} {:>9.4} {:>9.4} {:>8}", s.label, s.precision, s.recall, s.f1, s.support);
        }
        let _ = writeln!(out, "\nconfusion (rows: true domain, columns: chosen expert)");
        let _ = write!(out, "{:<14}", "");
        for label in &self.labels {
            let _ = write!(out, " {label:>10.10}");
        }
        let _ = writeln!(out);
        for (label, row) in self.labels.iter().zip(&self.confusion) {
            let _ = write!(out, "{label:<14}");
            for count in row {
                let _ = write!(out, " {count:>10}");
            }
            let _ = writeln!(out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_matches_a_hand_computed_example() {
        let labels: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        // truth a a a b b c ; predicted a a b b c c
        let report = RoutingReport::new(&labels, &[0, 0, 0, 1, 1, 2], &[0, 0, 1, 1, 2, 2]);
        assert_eq!(report.confusion, vec![vec![2, 1, 0], vec![0, 1, 1], vec![0, 0, 1]]);
        assert!((report.accuracy - 4.0 / 6.0).abs() < 1e-12);
        // a: P 1, R 2/3, F1 0.8; b: P 1/2, R 1/2, F1 0.5; c: P 1/2, R 1, F1 2/3.
        let f1: Vec<f64> = report.per_class.iter().map(|s| s.f1).collect();
        assert!((f1[0] - 0.8).abs() < 1e-12 && (f1[1] - 0.5).abs() < 1e-12 && (f1[2] - 2.0 / 3.0).abs() < 1e-12);
        assert!((report.macro_f1 - (0.8 + 0.5 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        assert_eq!(RoutingReport::from_confusion(&labels, report.confusion.clone()), report);
    }

    #[test]
    fn macro_f1_averages_only_classes_with_support() {
        // Single-domain data: every query is legal; 4 of 5 routed right, one to medical.
        let labels: Vec<String> = ["legal", "medical", "financial"].map(String::from).to_vec();
        let report = RoutingReport::new(&labels, &[0, 0, 0, 0, 0], &[0, 0, 0, 0, 1]);
        let legal = &report.per_class[0];
        assert!((legal.recall - 0.8).abs() < 1e-12 && (legal.precision - 1.0).abs() < 1e-12);
        assert_eq!(report.per_class[1].support, 0);
        assert!((report.macro_f1 - legal.f1).abs() < 1e-12, "macro-F1 {} is legal's F1 {}", report.macro_f1, legal.f1);
        assert!((report.accuracy - 0.8).abs() < 1e-12);
    }
}
