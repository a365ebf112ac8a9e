//! The timeline picture: sessions and weight per version over time, as an SVG document with two panels
//! sharing one time axis and the rollout events marked on it. What `pulse-deploy timeline` draws from the
//! journal, and what the end-to-end run draws from its samples.
//!
//! The time axis starts at the first rollout event (the first [`Mark`]; the first sample when there is
//! none), not at whatever clock the times were taken on: samples before it are left out, so a rollout
//! fills the picture however long its setup took. Each version's values are held until its next sample
//! (samples are taken when something changes), so the lines are steps.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

/// One sample of one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds on the caller's clock (any origin: the picture starts at the first event).
    pub t: f64,
    /// The version.
    pub version: String,
    /// Its weight in percent.
    pub weight: u32,
    /// Sessions its instances reported.
    pub sessions: u64,
    /// Its phase (`gone` once it was reaped: its line ends there).
    pub phase: String,
}

/// A rollout event, e.g. "deploy v2".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    /// Seconds on the same clock as the samples.
    pub t: f64,
    /// Label, e.g. "deploy v2".
    pub label: String,
}

const COLORS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"];

/// The picture's geometry: width, height, and the margins of the plot area.
const W: f64 = 1000.0;
const H: f64 = 570.0;
/// The left edge of the plot area: where the time axis starts (the first event).
pub const LEFT: f64 = 60.0;
const RIGHT: f64 = 40.0;

/// When the time axis starts: the first mark, else the first sample.
pub fn start_of(samples: &[Sample], marks: &[Mark]) -> Option<f64> {
    let first = |it: &mut dyn Iterator<Item = f64>| {
        it.fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.min(t))))
    };
    first(&mut marks.iter().map(|m| m.t)).or_else(|| first(&mut samples.iter().map(|s| s.t)))
}

/// Renders samples and marks as an SVG document titled `title`.
pub fn svg(title: &str, samples: &[Sample], marks: &[Mark]) -> String {
    let t0 = start_of(samples, marks).unwrap_or(0.0);
    let samples: Vec<&Sample> = samples.iter().filter(|s| s.t >= t0).collect();
    let t_end = samples.iter().map(|s| s.t).chain(marks.iter().map(|m| m.t)).fold(t0, f64::max);
    let span = (t_end - t0).max(1.0);
    let s_max = samples.iter().map(|s| s.sessions).max().unwrap_or(1).max(1) as f64;
    let x = |t: f64| LEFT + (W - LEFT - RIGHT) * (t - t0) / span;
    let panels = [("sessions", 60.0, 250.0, s_max), ("weight %", 310.0, 490.0, 100.0)];
    let mut by_version: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
    for s in &samples {
        by_version.entry(&s.version).or_default().push(s);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(out, r#"<text x="{LEFT}" y="20" font-size="15">{}</text>"#, escape(title));
    for (panel, top, bottom, max) in panels {
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{bottom}" x2="{}" y2="{bottom}" stroke="#444"/>"##,
            W - RIGHT
        );
        let _ = writeln!(out, r##"<line x1="{LEFT}" y1="{top}" x2="{LEFT}" y2="{bottom}" stroke="#444"/>"##);
        let _ = writeln!(out, r#"<text x="{LEFT}" y="{}">{panel}</text>"#, top - 6.0);
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            LEFT - 4.0,
            top + 4.0,
            max as u64
        );
        let _ = writeln!(out, r#"<text x="{}" y="{}" text-anchor="end">0</text>"#, LEFT - 4.0, bottom);
        for (i, (version, points)) in by_version.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let y = |s: &Sample| {
                let value = if panel == "sessions" { s.sessions as f64 } else { s.weight as f64 };
                bottom - (bottom - top) * value / max
            };
            let mut d = String::new();
            for (j, s) in points.iter().enumerate() {
                if j == 0 {
                    let _ = write!(d, "M{:.1},{:.1}", x(s.t), y(s));
                } else {
                    // Hold the previous value until this sample, then step.
                    let _ = write!(d, " H{:.1} V{:.1}", x(s.t), y(s));
                }
            }
            // A version still running holds its last value to the end of the picture.
            if points.last().is_some_and(|s| s.phase != "gone") {
                let _ = write!(d, " H{:.1}", x(t_end));
            }
            let _ = writeln!(
                out,
                r#"<path d="{d}" fill="none" stroke="{color}" stroke-width="2"><title>{}</title></path>"#,
                escape(version)
            );
            if panel == "sessions" {
                let _ = writeln!(
                    out,
                    r#"<text x="{}" y="{}" fill="{color}">■ {}</text>"#,
                    W - 200.0 + 50.0 * (i % 3) as f64,
                    20.0 + 14.0 * (i / 3) as f64,
                    escape(version)
                );
            }
        }
    }
    // Rollout events: a dashed line numbered at the top, the labels listed under the axes.
    for (i, m) in marks.iter().enumerate() {
        let _ = writeln!(
            out,
            r##"<line class="mark" x1="{0:.1}" y1="44" x2="{0:.1}" y2="490" stroke="#999" stroke-dasharray="4 3"/>"##,
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
            r##"<text x="{:.1}" y="{:.1}" fill="#333">{}. {}</text>"##,
            LEFT + 300.0 * (i % 3) as f64,
            525.0 + 16.0 * (i / 3) as f64,
            i + 1,
            escape(&m.label)
        );
    }
    let _ = writeln!(out, r#"<text x="{LEFT}" y="506">0 s</text>"#);
    let _ = writeln!(out, r#"<text x="{}" y="506" text-anchor="end">{:.0} s</text>"#, W - RIGHT, t_end - t0);
    out.push_str("</svg>\n");
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: f64, version: &str, weight: u32, sessions: u64, phase: &str) -> Sample {
        Sample { t, version: version.into(), weight, sessions, phase: phase.into() }
    }

    /// Checks that `svg` is well-formed XML: every token parses and every element is closed in order.
    fn assert_well_formed(svg: &str) {
        let mut open: Vec<String> = Vec::new();
        for token in xmlparser::Tokenizer::from(svg) {
            match token.unwrap_or_else(|e| panic!("not XML ({e}):\n{svg}")) {
                xmlparser::Token::ElementStart { local, .. } => open.push(local.to_string()),
                xmlparser::Token::ElementEnd { end, .. } => match end {
                    xmlparser::ElementEnd::Open => {}
                    xmlparser::ElementEnd::Empty => {
                        open.pop();
                    }
                    xmlparser::ElementEnd::Close(_, name) => {
                        assert_eq!(open.pop().as_deref(), Some(name.as_str()), "unbalanced </{name}>")
                    }
                },
                _ => {}
            }
        }
        assert!(open.is_empty(), "unclosed elements: {open:?}");
    }

    #[test]
    fn draws_every_version_escaped_and_well_formed() {
        let samples = vec![
            sample(0.0, "v1", 100, 3, "ready"),
            sample(5.0, "v1", 0, 1, "draining"),
            sample(5.0, "v2", 100, 0, "ready"),
        ];
        let svg = svg("a <title>", &samples, &[Mark { t: 4.0, label: "deploy v2 <new>".into() }]);
        assert!(svg.contains("<title>v1</title>") && svg.contains("<title>v2</title>"));
        assert!(svg.contains("&lt;new&gt;") && svg.contains("a &lt;title&gt;"));
        assert_well_formed(&svg);
    }

    /// The e2e's old picture started at process start and squeezed the rollout into its right third; the
    /// axis now starts at the first event, wherever the clock's origin is.
    #[test]
    fn the_time_axis_starts_at_the_first_event() {
        let samples = vec![
            sample(1000.0, "v1", 0, 0, "starting"), // before the first event: left out
            sample(1100.0, "v1", 100, 2, "ready"),
            sample(1130.0, "v2", 100, 0, "ready"),
            sample(1130.0, "v1", 0, 2, "draining"),
            sample(1160.0, "v1", 0, 0, "gone"),
        ];
        let marks = vec![
            Mark { t: 1100.0, label: "deploy v1".into() },
            Mark { t: 1130.0, label: "deploy v2".into() },
        ];
        assert_eq!(start_of(&samples, &marks), Some(1100.0));
        let svg = svg("t", &samples, &marks);
        let first_mark = svg.lines().find(|l| l.contains(r#"class="mark""#)).unwrap();
        assert!(first_mark.contains(&format!(r#"x1="{LEFT:.1}""#)), "{first_mark}");
        assert!(svg.contains(r#">60 s</text>"#), "the axis spans the 60 s from the first event:\n{svg}");
        assert!(!svg.contains("M-") && !svg.contains("H-"), "the sample before the first event is left out");
        // Without marks, the first sample starts the axis.
        assert_eq!(start_of(&samples, &[]), Some(1000.0));
        assert_well_formed(&svg);
    }
}
