//! Stations: each factory line station this person may see, with its quota used, devices
//! provisioned per hour over 24 hours, its last request and whether it is disabled.

use hyper::Response;
use maud::html;

use super::chart::bars;
use super::layout::{badge, when};
use super::{ok_page, Body, Ui};
use crate::error::Error;

pub(super) fn page(ui: &Ui<'_>) -> Result<Response<Body>, Error> {
    let stations = ui.hm.console_stations(&ui.session.cred)?;
    let t = ui.hm.clock.now();
    let content = html! {
        @if stations.is_empty() {
            p.note { "No factory station is yours to see." }
        }
        @for s in &stations {
            section.card aria-labelledby={ "station-" (s.station.name) } {
                h2 id={ "station-" (s.station.name) } { (s.station.name) " "
                    @if s.station.disabled { (badge("disabled")) } @else { (badge("valid")) } }
                dl.facts {
                    dt { "Publisher" } dd { (s.station.publisher) }
                    dt { "Profile" } dd { (s.station.profile) }
                    dt { "Serial pattern" } dd { code { (s.station.serial_pattern) } }
                    dt { "Quota used" } dd { (s.issued) " of " (s.station.quota) }
                    dt { "Last certificate" } dd { (s.activity.last.map(when).unwrap_or_else(|| "never".into())) }
                    dt { "Devices per hour" } dd { (bars(&s.activity.counts, t, 3600, 24, "devices provisioned per hour over 24 hours")) }
                }
            }
        }
    };
    ok_page(ui, "Stations", "/ui/stations", None, content)
}
