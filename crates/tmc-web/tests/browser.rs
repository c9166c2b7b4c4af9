//! The page in a real browser: Debian's Chromium, headless, loads it from a running `tmc-web`, takes a
//! screenshot, and its DOM after the script ran must show the readings in the output file.
//!
//! Skipped with a message where Chromium is not installed, unless `TMC_REQUIRE_CHROMIUM` is set (`make test`
//! sets it; `make deps` installs the `chromium` package). The site's own readings through the simulated air
//! are in `crates/tmc-demo/tests/web.rs`.

// Each test file uses its own part of the shared helpers.
#[allow(dead_code)]
mod common;

use common::Web;
use tmc_testkit::chromium;

#[test]
fn chromium_shows_the_readings_that_were_sent() {
    let Some(browser) = chromium::find("chromium_shows_the_readings_that_were_sent") else {
        return;
    };
    let web = Web::start(
        "{\"topic\":\"sensors/kitchen/temperature\",\"time\":1763766000,\"sender\":10,\"data\":\"21.5\"}\n\
         {\"topic\":\"sensors/kitchen/temperature\",\"time\":1763766060,\"sender\":10,\"data\":\"21.75\"}\n\
         {\"topic\":\"sensors/cellar/humidity\",\"time\":1763766030,\"sender\":10,\"data\":\"{\\\"h\\\":81}\"}\n",
    );
    let url = format!("http://{}/", web.addr);
    let screenshot = web.dir.path().join("page.png");
    let dom = chromium::load(
        &browser,
        &web.dir.path().join("chromium-profile"),
        &url,
        &screenshot,
    );
    // Rows the script built from the view: the topic and its last value in their cells.
    assert!(
        dom.contains("<tr data-topic=\"sensors/kitchen/temperature\"><td>sensors/kitchen/temperature</td><td class=\"value\">21.75</td>"),
        "{dom}"
    );
    assert!(dom.contains("<td class=\"value\">{\"h\":81}</td>"), "{dom}");
    // One chart per sensor with numbers, a line per series.
    assert_eq!(dom.matches("<polyline").count(), 2, "{dom}");
    assert!(dom.contains("data-series=\"value\"") && dom.contains("data-series=\"h\""));
}
