//! The page shell every console page shares (skip link, navigation, who is signed in, sign-out)
//! and the small formatting helpers pages use. maud escapes every value it renders; nothing
//! from a request is ever written into a script or style context (the pages have none).

use maud::{html, Markup, DOCTYPE};

use crate::console::Session;

/// The stylesheet, served at [`CSS_PATH`] (a file of its own: the CSP allows no inline style).
pub const CSS: &str = include_str!("console.css");
pub const CSS_PATH: &str = "/ui/static/console.css";

/// The icon browsers show in the tab, served at [`ICON_PATH`].
pub const ICON: &str = include_str!("favicon.svg");
pub const ICON_PATH: &str = "/ui/static/favicon.svg";

/// The pages in the navigation: (path, name).
pub const NAV: &[(&str, &str)] = &[
    ("/ui/requests", "Requests"),
    ("/ui/signatures", "Signatures"),
    ("/ui/certificates", "Certificates"),
    ("/ui/keys", "Keys"),
    ("/ui/stations", "Stations"),
    ("/ui/audit", "Audit"),
];

/// A message shown above a page's content.
pub enum Flash {
    Info(String),
    Error(String),
}

/// A whole page: `current` is the navigation entry's path.
pub fn page(
    title: &str,
    current: &str,
    session: Option<&Session>,
    flash: Option<&Flash>,
    content: Markup,
) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · hallmark" }
                link rel="stylesheet" href=(CSS_PATH);
                link rel="icon" type="image/svg+xml" href=(ICON_PATH);
            }
            body {
                a.skip href="#content" { "Skip to content" }
                header.top {
                    a.brand href="/ui/requests" { "hallmark" }
                    @if let Some(s) = session {
                        nav.main aria-label="Console" {
                            ul {
                                @for (path, name) in NAV {
                                    li {
                                        @if *path == current {
                                            a href=(path) aria-current="page" { (name) }
                                        } @else {
                                            a href=(path) { (name) }
                                        }
                                    }
                                }
                            }
                        }
                        div.who {
                            span { "Signed in as " strong { (s.cred.name) } " (" (role(s)) ")" }
                            form method="post" action="/ui/logout" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main id="content" tabindex="-1" {
                    h1 { (title) }
                    @match flash {
                        Some(Flash::Info(m)) => { p.flash role="status" { (m) } }
                        Some(Flash::Error(m)) => { p.flash.error role="alert" { (m) } }
                        None => {}
                    }
                    (content)
                }
            }
        }
    }
    .into_string()
}

/// How the signed-in person acts: officer, or for which publisher.
pub fn role(s: &Session) -> String {
    if s.cred.officer {
        "officer".into()
    } else {
        format!("publisher {}", s.cred.publisher.as_deref().unwrap_or("-"))
    }
}

/// A stored time as people read it: `2026-12-04 13:22:05 UTC`.
pub fn when(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|x| {
            x.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

/// How long until `t`: `2 h 5 min left`, or `ended`.
pub fn left(t: i64, now: i64) -> String {
    let s = t - now;
    if s <= 0 {
        return "ended".into();
    }
    // 99991231235959Z: "no well-defined expiration date" (RFC 5280 §4.1.2.5).
    if t >= 253_402_300_799 {
        return "no end date".into();
    }
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    if d > 0 {
        format!("{d} d {h} h left")
    } else if h > 0 {
        format!("{h} h {m} min left")
    } else {
        format!("{} min left", m.max(1))
    }
}

/// A status as a badge whose colour says whether it is settled well, badly, or not yet.
pub fn badge(status: &str) -> Markup {
    let class = match status {
        "pending" | "signing" | "approved" => "badge pending",
        "signed" | "issued" | "valid" => "badge ok",
        _ => "badge bad",
    };
    html! { span class=(class) { (status) } }
}

/// A policy's list, where empty means no limit: comma-separated, or `any`.
pub fn list_or_any(items: &[String]) -> String {
    if items.is_empty() {
        "any".into()
    } else {
        items.join(", ")
    }
}

/// A comma-separated list, or `none`.
pub fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// A filter offered as a choice: `any` (no filter) and each of `choices`, `current` selected. A
/// current value that is not among the choices (from a link) is kept as one, so the page says
/// what it shows.
pub fn choice(id: &str, label: &str, choices: &[String], current: &str) -> Markup {
    let stray = !current.is_empty() && !choices.iter().any(|c| c == current);
    html! {
        div {
            label for=(id) { (label) }
            select id=(id) name=(id) {
                option value="" selected[current.is_empty()] { "any" }
                @for c in choices {
                    option value=(c) selected[c == current] { (c) }
                }
                @if stray {
                    option value=(current) selected { (current) }
                }
            }
        }
    }
}

/// A SHA-256 fingerprint as openssl prints it (`AB:CD:...`), with a line-break opportunity
/// after each colon (it is no word: it may wrap on a narrow screen, at a colon).
pub fn fingerprint(der: &[u8]) -> Markup {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    html! {
        code.hex {
            @for (i, b) in digest.as_ref().iter().enumerate() {
                @if i > 0 { ":" wbr; }
                (format!("{b:02X}"))
            }
        }
    }
}
