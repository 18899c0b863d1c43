//! The timeline a person reads when a seed fails: text, and an HTML page with an SVG picture.
//!
//! Lanes are nodes and clients; operations are bars from invocation to completion (red when
//! the reply was an error or the operation timed out); faults are vertical lines across every
//! lane. The picture covers the last events before the violation (the trace keeps a bounded
//! tail), which is where the cause usually is. Files go to `target/sim-failures/`.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::trace::{Event, Mark};

const LANE_HEIGHT_PX: f64 = 28.0;
const WIDTH_PX: f64 = 1400.0;
const LEFT_PX: f64 = 110.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Renders the SVG for `events` (already in time order).
pub fn svg(events: &[Event]) -> String {
    let mut lanes: Vec<&str> = vec!["cluster"];
    for e in events {
        if !lanes.contains(&e.lane.as_str()) {
            lanes.push(&e.lane);
        }
    }
    let t0 = events
        .iter()
        .map(|e| match e.mark {
            Mark::Span { start_ns } => start_ns,
            _ => e.t_ns,
        })
        .min()
        .unwrap_or(0);
    let t1 = events.iter().map(|e| e.t_ns).max().unwrap_or(1).max(t0 + 1);
    let x = |t: u128| LEFT_PX + (t - t0) as f64 / (t1 - t0) as f64 * (WIDTH_PX - LEFT_PX - 10.0);
    let lane_y = |lane: &str| 20.0 + lanes.iter().position(|l| *l == lane).unwrap_or(0) as f64 * LANE_HEIGHT_PX;
    let height = 40.0 + lanes.len() as f64 * LANE_HEIGHT_PX;
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH_PX}" height="{height}" font-family="monospace" font-size="11">"#
    );
    for lane in &lanes {
        let y = lane_y(lane);
        let _ = writeln!(
            o,
            r##"<text x="4" y="{}">{}</text><line x1="{LEFT_PX}" y1="{y}" x2="{WIDTH_PX}" y2="{y}" stroke="#ddd"/>"##,
            y + 4.0,
            escape(lane)
        );
    }
    for e in events {
        let title = escape(&e.line());
        match e.mark {
            Mark::Fault => {
                let _ = writeln!(
                    o,
                    r##"<line x1="{0}" y1="10" x2="{0}" y2="{1}" stroke="#c00" stroke-dasharray="3,2"><title>{title}</title></line>"##,
                    x(e.t_ns),
                    height - 10.0
                );
            }
            Mark::Span { start_ns } => {
                let failed = e.text.contains("-> -") || e.text.contains("timeout") || e.text.contains("unknown");
                let colour = if failed { "#d33" } else { "#36c" };
                let (a, b) = (x(start_ns), x(e.t_ns));
                let _ = writeln!(
                    o,
                    r#"<rect x="{a}" y="{}" width="{}" height="10" fill="{colour}" opacity="0.7"><title>{title}</title></rect>"#,
                    lane_y(&e.lane) - 5.0,
                    (b - a).max(1.5)
                );
            }
            Mark::Point => {
                let _ = writeln!(
                    o,
                    r##"<circle cx="{}" cy="{}" r="3" fill="#393"><title>{title}</title></circle>"##,
                    x(e.t_ns),
                    lane_y(&e.lane)
                );
            }
        }
    }
    let _ = writeln!(
        o,
        r#"<text x="{LEFT_PX}" y="{}">{:.6}s</text><text x="{}" y="{}" text-anchor="end">{:.6}s</text>"#,
        height - 2.0,
        t0 as f64 / 1e9,
        WIDTH_PX - 10.0,
        height - 2.0,
        t1 as f64 / 1e9
    );
    o.push_str("</svg>\n");
    o
}

/// Writes `<scenario>-<seed>.txt` and `.html` under target/sim-failures; returns their paths.
pub fn write(scenario: &str, seed: u64, reason: &str, events: &[Event]) -> std::io::Result<(PathBuf, PathBuf)> {
    let dir = crate::launcher::workspace_root().join("target").join("sim-failures");
    std::fs::create_dir_all(&dir)?;
    let base = dir.join(format!("{scenario}-{seed}"));
    let mut text = format!("scenario {scenario} seed {seed}\nviolation: {reason}\n\n");
    for e in events {
        text.push_str(&e.line());
        text.push('\n');
    }
    let txt = base.with_extension("txt");
    std::fs::write(&txt, &text)?;
    // The picture shows the last 300 events: enough context, still legible.
    let recent = &events[events.len().saturating_sub(300)..];
    let html = format!(
        "<!doctype html><meta charset=utf-8><title>{scenario} seed {seed}</title>\n<h3>{scenario} seed {seed}</h3><p><b>violation:</b> {}</p>\n<p>Bars: operations (red: error or no reply). Dashed red lines: faults. Hover for details.</p>\n{}\n<pre>{}</pre>\n",
        escape(reason),
        svg(recent),
        escape(&text)
    );
    let html_path = base.with_extension("html");
    std::fs::write(&html_path, html)?;
    Ok((txt, html_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_has_lanes_spans_and_faults() {
        let events = vec![
            Event { t_ns: 10, lane: "c0".into(), text: "SET a 1 -> +OK".into(), mark: Mark::Span { start_ns: 5 } },
            Event { t_ns: 12, lane: "cluster".into(), text: "nemesis: kill server-1".into(), mark: Mark::Fault },
            Event { t_ns: 20, lane: "c1".into(), text: "GET a -> timeout".into(), mark: Mark::Span { start_ns: 11 } },
        ];
        let s = svg(&events);
        assert!(s.contains(">c0<") && s.contains(">c1<"));
        assert_eq!(s.matches("<rect").count(), 2);
        assert!(s.contains("stroke-dasharray"));
        assert!(s.contains("#d33"), "the timed-out op is red");
    }
}
