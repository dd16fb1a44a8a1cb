//! Small bar charts as inline SVG, drawn on the server: no script, no external library. The
//! time axis is labelled (its first, middle and last period, in UTC) and each chart has a text
//! alternative (its `<title>` and an `aria-label`) that says what the bars show and when.

use maud::{html, Markup};

/// Bars for `periods` periods of `period` seconds ending with the one holding `now`, from
/// counts per period start (missing periods are zero). `what` names a bar's unit ("signatures
/// per day"). Periods of a day are labelled with their date (`2026-12-07`), shorter ones with
/// their date and time (`12-07 14:00`).
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
    let most = values.iter().copied().max().unwrap_or(0);
    // The bars' scale (never zero).
    let max = most.max(1);
    let total: i64 = values.iter().sum();
    let label_of = |i: i64| period_label(first + i * period, period);
    let last = periods - 1;
    let middle = last / 2;
    let (from, to) = (label_of(0), label_of(last));
    let (w, h, bar_w) = (periods * 8, 32_i64, 6_i64);
    // Below the bars: the axis, then a line of date labels.
    let full_h = h + 12;
    let label = format!(
        "{what}: {total} in the last {periods}, at most {most} in one; from {from} to {to} (UTC)"
    );
    html! {
        svg.chart role="img" aria-label=(label) viewBox={ "0 0 " (w) " " (full_h) } width=(w * 2) height=(full_h * 2) xmlns="http://www.w3.org/2000/svg" {
            title { (label) }
            @for (i, v) in values.iter().enumerate() {
                @let bh = if *v == 0 { 0 } else { (v * h / max).max(1) };
                rect.bar x=(i as i64 * 8 + 1) y=(h - bh) width=(bar_w) height=(bh) {
                    title { (label_of(i as i64)) ": " (v) }
                }
            }
            // Closed explicitly: in SVG, `<line>` is no void element, and an unclosed one would
            // hold (and hide) what follows it.
            line.axis x1="0" y1=(h) x2=(w) y2=(h) stroke-width="0.5" {}
            @for (i, anchor) in [(0, "start"), (middle, "middle"), (last, "end")] {
                @let x = match anchor {
                    "start" => i * 8,
                    "end" => i * 8 + 8,
                    _ => i * 8 + 4,
                };
                line.axis x1=(i * 8 + 4) y1=(h) x2=(i * 8 + 4) y2=(h + 2) stroke-width="0.5" {}
                text.tick x=(x) y=(h + 9) text-anchor=(anchor) { (label_of(i)) }
            }
        }
        span.note { (total) " in all, at most " (most) " in one; from " (from) " (left) to " (to) " (right), UTC" }
    }
}

/// A period's start as the axis names it: a day's date, or an hour's date and time (UTC).
fn period_label(t: i64, period: i64) -> String {
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp(t) else {
        return t.to_string();
    };
    let text = if period >= 86_400 {
        at.format(time::macros::format_description!("[year]-[month]-[day]"))
    } else {
        at.format(time::macros::format_description!(
            "[month]-[day] [hour]:[minute]"
        ))
    };
    text.unwrap_or_else(|_| t.to_string())
}
