//! The end-to-end run's timeline: samples of sessions and weight per version over time, drawn as an SVG
//! picture (two panels sharing the time axis, step boundaries marked).

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

/// One sample of one version.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the run started.
    pub t: f64,
    /// The version.
    pub version: String,
    /// Its weight in percent.
    pub weight: u32,
    /// Sessions its instances reported.
    pub sessions: u64,
    /// Its phase.
    pub phase: String,
}

/// A step boundary.
#[derive(Debug, Clone, Serialize)]
pub struct Mark {
    /// Seconds since the run started.
    pub t: f64,
    /// Label, e.g. "2. deploy v2".
    pub label: String,
}

const COLORS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"];

/// Renders samples and marks as an SVG document.
pub fn svg(samples: &[Sample], marks: &[Mark]) -> String {
    let (w, h, left, right) = (1000.0, 570.0, 60.0, 40.0);
    let t_max = samples.iter().map(|s| s.t).chain(marks.iter().map(|m| m.t)).fold(1.0_f64, f64::max);
    let s_max = samples.iter().map(|s| s.sessions).max().unwrap_or(1).max(1) as f64;
    let x = |t: f64| left + (w - left - right) * t / t_max;
    let panels = [("sessions", 60.0, 250.0, s_max), ("weight %", 310.0, 490.0, 100.0)];
    let mut by_version: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        by_version.entry(&s.version).or_default().push(s);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{left}" y="20" font-size="15">pulse-deploy end-to-end: sessions and weight per version</text>"#
    );
    for (title, top, bottom, max) in panels {
        let _ = writeln!(
            out,
            r##"<line x1="{left}" y1="{bottom}" x2="{}" y2="{bottom}" stroke="#444"/>"##,
            w - right
        );
        let _ = writeln!(out, r##"<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#444"/>"##);
        let _ = writeln!(out, r#"<text x="{left}" y="{}">{title}</text>"#, top - 6.0);
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            left - 4.0,
            top + 4.0,
            max as u64
        );
        let _ = writeln!(out, r#"<text x="{}" y="{}" text-anchor="end">0</text>"#, left - 4.0, bottom);
        for (i, (version, points)) in by_version.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let mut d = String::new();
            for (j, s) in points.iter().enumerate() {
                let value = if title == "sessions" { s.sessions as f64 } else { s.weight as f64 };
                let y = bottom - (bottom - top) * value / max;
                let _ = write!(d, "{}{:.1},{:.1} ", if j == 0 { "M" } else { "L" }, x(s.t), y);
            }
            let _ = writeln!(
                out,
                r#"<path d="{d}" fill="none" stroke="{color}" stroke-width="2"><title>{version}</title></path>"#
            );
            if title == "sessions" {
                let _ = writeln!(
                    out,
                    r#"<text x="{}" y="{}" fill="{color}">■ {version}</text>"#,
                    w - 200.0 + 50.0 * (i % 3) as f64,
                    20.0 + 14.0 * (i / 3) as f64
                );
            }
        }
    }
    // Step boundaries: a dashed line numbered at the top, the labels listed under the axes.
    for (i, m) in marks.iter().enumerate() {
        let _ = writeln!(
            out,
            r##"<line x1="{0:.1}" y1="44" x2="{0:.1}" y2="490" stroke="#999" stroke-dasharray="4 3"/>"##,
            x(m.t)
        );
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="40" text-anchor="middle" fill="#333">{}</text>"##,
            x(m.t),
            i + 1
        );
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" fill="#333">{}</text>"##,
            left + 300.0 * (i % 3) as f64,
            525.0 + 16.0 * (i / 3) as f64,
            escape(&m.label)
        );
    }
    let _ = writeln!(out, r#"<text x="{}" y="506" text-anchor="end">{t_max:.0} s</text>"#, w - right);
    out.push_str("</svg>\n");
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_every_version() {
        let samples = vec![
            Sample { t: 0.0, version: "v1".into(), weight: 100, sessions: 3, phase: "ready".into() },
            Sample { t: 5.0, version: "v1".into(), weight: 0, sessions: 1, phase: "draining".into() },
            Sample { t: 5.0, version: "v2".into(), weight: 100, sessions: 0, phase: "ready".into() },
        ];
        let svg = svg(&samples, &[Mark { t: 4.0, label: "2. deploy v2 <new>".into() }]);
        assert!(
            svg.starts_with("<svg") && svg.contains("<title>v1</title>") && svg.contains("<title>v2</title>")
        );
        assert!(svg.contains("&lt;new&gt;"));
    }
}
