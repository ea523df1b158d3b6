//! `--report FILE.html`: a self-contained page (inline SVG, no scripts, no external assets) with a
//! timeline of token requests and a histogram of job latency, for people who would rather look
//! than read.

use super::invariants::Judgement;
use hdrhistogram::Histogram;
use std::fmt::Write as _;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders the page. `summary` holds (label, value) rows.
pub fn render(
    title: &str,
    summary: &[(String, String)],
    judgement: &Judgement,
    latency_us: &Histogram<u64>,
    credentials: usize,
) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}\
         table{{border-collapse:collapse}}td,th{{padding:.25em .8em;border-bottom:1px solid #ddd;text-align:left}}\
         .ok{{color:#176b2c}}.bad{{color:#b00020;font-weight:bold}}svg{{background:#fafafa;border:1px solid #ddd}}</style>\
         </head><body><h1>{}</h1>",
        esc(title),
        esc(title)
    );
    h.push_str("<h2>Summary</h2><table>");
    for (k, v) in summary {
        let _ = write!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    h.push_str("</table><h2>Invariants</h2><table>");
    for i in &judgement.invariants {
        let _ = write!(
            h,
            "<tr><td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
            if i.held { "ok" } else { "bad" },
            if i.held { "HELD" } else { "BROKEN" },
            esc(i.name),
            esc(&i.detail)
        );
    }
    h.push_str("</table>");

    // Timeline: x = time, y = credential; green 200, red 4xx, orange 5xx/other, black dropped.
    let (w, ht, pad) = (900.0, 320.0, 40.0);
    let max_t = judgement
        .timeline
        .iter()
        .map(|p| p.at_ms)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let rows = credentials.max(1) as f64;
    let _ = write!(
        h,
        "<h2>Token requests over time</h2><p>Each dot is one request the mock received \
         (x: ms since start, y: credential; green 200, red 4xx, orange 5xx/429, black dropped).</p>\
         <svg width=\"{w}\" height=\"{ht}\" viewBox=\"0 0 {w} {ht}\" role=\"img\" aria-label=\"token request timeline\">"
    );
    for p in &judgement.timeline {
        let x = pad + (p.at_ms as f64 / max_t) * (w - 2.0 * pad);
        let y = pad + (p.credential as f64 + 0.5) / rows * (ht - 2.0 * pad);
        let color = match p.status {
            200 => "#2e7d32",
            0 => "#000",
            400..=428 | 430..=499 => "#c62828",
            _ => "#ef6c00",
        };
        let _ = write!(
            h,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\" fill=\"{color}\"/>"
        );
    }
    let _ = write!(
        h,
        "<text x=\"{pad}\" y=\"{}\" font-size=\"12\">0 ms</text><text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"end\">{max_t:.0} ms</text></svg>",
        ht - 10.0,
        w - pad,
        ht - 10.0
    );

    // Latency histogram: 30 log-spaced buckets.
    let buckets = 30usize;
    let (lo, hi) = (
        latency_us.min().max(1) as f64,
        latency_us.max().max(2) as f64,
    );
    let ratio = (hi / lo).powf(1.0 / buckets as f64).max(1.000_001);
    let mut counts = vec![0u64; buckets];
    for v in latency_us.iter_recorded() {
        let value = v.value_iterated_to().max(1) as f64;
        let b = ((value / lo).ln() / ratio.ln())
            .floor()
            .clamp(0.0, (buckets - 1) as f64) as usize;
        counts[b] += v.count_at_value();
    }
    let max_c = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let bw = (w - 2.0 * pad) / buckets as f64;
    let _ = write!(
        h,
        "<h2>Job latency</h2><p>Jobs per latency bucket (log scale, {lo:.0} µs to {hi:.0} µs).</p>\
         <svg width=\"{w}\" height=\"{ht}\" viewBox=\"0 0 {w} {ht}\" role=\"img\" aria-label=\"latency histogram\">"
    );
    for (i, c) in counts.iter().enumerate() {
        let bh = (*c as f64 / max_c) * (ht - 2.0 * pad);
        let x = pad + i as f64 * bw;
        let upper = lo * ratio.powi(i as i32 + 1);
        let _ = write!(
            h,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#1565c0\"><title>≤ {upper:.0} µs: {c} jobs</title></rect>",
            ht - pad - bh,
            bw - 2.0
        );
    }
    let _ = write!(
        h,
        "<text x=\"{pad}\" y=\"{}\" font-size=\"12\">{lo:.0} µs</text><text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"end\">{hi:.0} µs</text></svg></body></html>",
        ht - 10.0,
        w - pad,
        ht - 10.0
    );
    h.push('\n');
    h
}
