//! Small bar charts as inline SVG, drawn on the server: no script, no external library. Each
//! has a text alternative (its `<title>` and an `aria-label`) that says what the bars show.

use maud::{html, Markup};

/// Bars for `periods` periods of `period` seconds ending with the one holding `now`, from
/// counts per period start (missing periods are zero). `what` names a bar's unit ("signatures
/// per day").
pub fn bars(counts: &[(i64, i64)], now: i64, period: i64, periods: i64, what: &str) -> Markup {
    let first = (now / period - (periods - 1)) * period;
    let values: Vec<i64> = (0..periods)
        .map(|i| {
            let start = first + i * period;
            counts
                .iter()
                .find(|(p, _)| *p == start)
                .map_or(0, |(_, c)| *c)
        })
        .collect();
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    let total: i64 = values.iter().sum();
    let (w, h, bar_w) = (periods * 8, 32_i64, 6_i64);
    let label = format!("{what}: {total} in the last {periods}, at most {max} in one");
    html! {
        svg.chart role="img" aria-label=(label) viewBox={ "0 0 " (w) " " (h + 1) } width=(w * 2) height=((h + 1) * 2) xmlns="http://www.w3.org/2000/svg" {
            title { (label) }
            @for (i, v) in values.iter().enumerate() {
                @let bh = if *v == 0 { 0 } else { (v * h / max).max(1) };
                rect.bar x=(i as i64 * 8 + 1) y=(h - bh) width=(bar_w) height=(bh) {
                    title { (v) }
                }
            }
            line.axis x1="0" y1=(h) x2=(w) y2=(h) stroke-width="0.5";
        }
        span.note { (total) " in all, at most " (max) " in one; oldest on the left" }
    }
}
