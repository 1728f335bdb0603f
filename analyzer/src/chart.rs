//! A small SVG line chart of tags' bytes over time (`pooltop report TRACE --svg FILE`): one line per series,
//! time on the x axis (minutes or hours from the first sample), bytes on the y axis (from zero, or from the
//! lowest value when a series goes below zero, e.g. growth since the first sample), a legend.
//! Plain SVG 1.1 text, no scripts or external resources, so any browser or image viewer shows it.

use std::fmt::Write as _;

use crate::trend::render::in_binary_unit;

/// One line of the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text, e.g. `Leak (nonpaged) +3.2 MiB/h`.
    pub label: String,
    /// (time in ms since the Unix epoch, bytes), in time order.
    pub points: Vec<(i64, i64)>,
}

/// Chart size and title.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartOptions {
    /// Title at the top.
    pub title: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Default for ChartOptions {
    fn default() -> Self {
        Self {
            title: "pool bytes over time".to_string(),
            width: 960,
            height: 540,
        }
    }
}

/// Line colours (colour-blind-safe palette, Okabe–Ito), reused in order.
const COLOURS: [&str; 8] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000",
];

/// Plot area margins: left (y labels), right, top (title), bottom (x labels and legend room).
const LEFT: f64 = 90.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;

/// Escapes text for SVG content and attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// Bytes as the y axis shows them: `0`, `512 KiB`, `1.5 MiB`, `2 GiB`, `-1 MiB`.
pub fn axis_bytes(bytes: f64) -> String {
    if bytes < 0.0 {
        return format!("-{}", axis_bytes(-bytes));
    }
    let (value, unit) = in_binary_unit(bytes);
    if value == 0.0 {
        "0".to_string()
    } else if value.fract() == 0.0 {
        format!("{value:.0} {unit}")
    } else {
        format!("{value:.1} {unit}")
    }
}

/// A "nice" step (1, 2 or 5 × a power of `base`) so that `max` spans about `ticks` steps.
fn nice_step(max: f64, ticks: f64, base: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let raw = max / ticks;
    let mut power = 1.0;
    while power * base <= raw {
        power *= base;
    }
    for m in [1.0, 2.0, 5.0, 10.0] {
        if power * m >= raw {
            return power * m;
        }
    }
    power * base
}

/// The chart as SVG text. Series without points are left out of the plot but kept in the legend.
pub fn line_chart(series: &[Series], options: &ChartOptions) -> String {
    let (w, h) = (
        f64::from(options.width.max(200)),
        f64::from(options.height.max(150)),
    );
    let plot_w = w - LEFT - RIGHT;
    let plot_h = h - TOP - BOTTOM - 18.0 * series.len().div_ceil(3) as f64;
    let plot_h = plot_h.max(40.0);
    let t0 = series
        .iter()
        .filter_map(|s| s.points.first().map(|p| p.0))
        .min()
        .unwrap_or(0);
    let t1 = series
        .iter()
        .filter_map(|s| s.points.last().map(|p| p.0))
        .max()
        .unwrap_or(t0);
    let span_ms = (t1 - t0).max(1) as f64;
    let values = || {
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1 as f64))
    };
    let max_bytes = values().fold(0.0, f64::max);
    let min_bytes = values().fold(0.0, f64::min);
    let y_step = nice_step(max_bytes - min_bytes, 5.0, 2.0);
    let y_max = (max_bytes / y_step).ceil() * y_step;
    let y_min = (min_bytes / y_step).floor() * y_step;
    let y_max = if y_max <= y_min {
        y_min + y_step
    } else {
        y_max
    };
    let x = |t: i64| LEFT + (t - t0) as f64 / span_ms * plot_w;
    let y = |b: f64| TOP + plot_h - (b - y_min) / (y_max - y_min) * plot_h;

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="24" font-size="16" text-anchor="middle">{}</text>"#,
        w / 2.0,
        escape(&options.title)
    );
    // Y grid and labels.
    let steps = ((y_max - y_min) / y_step).round() as i64;
    for i in 0..=steps {
        let v = y_min + i as f64 * y_step;
        let py = y(v);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="{}"/>"##,
            LEFT + plot_w,
            if v == 0.0 { "#999999" } else { "#dddddd" }
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            py + 4.0,
            axis_bytes(v)
        );
    }
    // X labels: minutes below two hours, else hours.
    let minutes = span_ms / 60_000.0;
    let (unit_ms, unit) = if minutes <= 120.0 {
        (60_000.0, "min")
    } else {
        (3_600_000.0, "h")
    };
    let x_step = nice_step(span_ms / unit_ms, 6.0, 10.0);
    let mut t = 0.0;
    while t <= span_ms / unit_ms + 1e-9 {
        let px = LEFT + t * unit_ms / span_ms * plot_w;
        let _ = writeln!(
            out,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#eeeeee"/>"##,
            TOP + plot_h
        );
        let _ = writeln!(
            out,
            r#"<text x="{px:.1}" y="{:.1}" text-anchor="middle">{} {unit}</text>"#,
            TOP + plot_h + 16.0,
            if t.fract() == 0.0 {
                format!("{t:.0}")
            } else {
                format!("{t:.1}")
            }
        );
        t += x_step;
    }
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w:.1}" height="{plot_h:.1}" fill="none" stroke="#888888"/>"##
    );
    // Lines and legend.
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        if !s.points.is_empty() {
            let points: Vec<String> = s
                .points
                .iter()
                .map(|&(t, b)| format!("{:.1},{:.1}", x(t), y(b as f64)))
                .collect();
            let _ = writeln!(
                out,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
                points.join(" ")
            );
        }
        let lx = LEFT + (i % 3) as f64 * plot_w / 3.0;
        let ly = TOP + plot_h + 36.0 + (i / 3) as f64 * 18.0;
        let _ = writeln!(
            out,
            r#"<rect x="{lx:.1}" y="{:.1}" width="14" height="4" fill="{colour}"/><text x="{:.1}" y="{ly:.1}">{}</text>"#,
            ly - 6.0,
            lx + 20.0,
            escape(&s.label)
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_labels_and_steps() {
        assert_eq!(axis_bytes(0.0), "0");
        assert_eq!(axis_bytes(512.0 * 1024.0), "512 KiB");
        assert_eq!(axis_bytes(1.5 * 1024.0 * 1024.0), "1.5 MiB");
        assert_eq!(nice_step(10.0, 5.0, 10.0), 2.0);
        assert_eq!(nice_step(100.0, 6.0, 10.0), 20.0);
        assert_eq!(nice_step(0.0, 5.0, 10.0), 1.0);
    }

    #[test]
    fn a_line_from_corner_to_corner() {
        // Two points: the first sample at zero bytes, the last at the maximum. With 960×540 and one legend
        // row the plot is x 90..940 (960 − 90 − 20) and y 40..462 (height 540 − 40 − 60 − 18 = 422). The
        // maximum 4 MiB is a multiple of the 1 MiB step, so the top of the axis is the maximum: the line goes
        // from the bottom left corner (90, 462) to the top right corner (940, 40).
        let chart = line_chart(
            &[Series {
                label: "Leak <np>".into(),
                points: vec![(1_000, 0), (61_000, 4 << 20)],
            }],
            &ChartOptions::default(),
        );
        assert!(chart.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(
            chart.contains(r#"points="90.0,462.0 940.0,40.0""#),
            "{chart}"
        );
        assert!(chart.contains(">Leak &lt;np&gt;</text>"));
        assert!(chart.contains(">4 MiB</text>"));
        assert_eq!(chart.matches("<polyline").count(), 1);
        assert!(chart.ends_with("</svg>\n"));
    }

    #[test]
    fn values_below_zero_extend_the_axis_down() {
        // From -1 MiB to +3 MiB: a 4 MiB span in 1 MiB steps, zero one step above the bottom. The plot is y 40..462
        // (as above), so zero is at 462 - 422 / 4 = 356.5.
        let chart = line_chart(
            &[Series {
                label: "Cach".into(),
                points: vec![(0, -(1 << 20)), (60_000, 3 << 20)],
            }],
            &ChartOptions::default(),
        );
        assert!(
            chart.contains(r#"points="90.0,462.0 940.0,40.0""#),
            "{chart}"
        );
        assert!(
            chart.contains(r#"y="360.5" text-anchor="end">0</text>"#),
            "{chart}"
        );
        assert!(chart.contains(">-1 MiB</text>"));
    }
}
