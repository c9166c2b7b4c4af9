//! Debian's Chromium, headless, for the web page's tests: one load of a page dumped and photographed
//! ([`load`]), and a page kept open and read while it updates ([`Session`], over the DevTools pipe).
//!
//! Where Chromium is not installed the tests skip with a message, unless `TMC_REQUIRE_CHROMIUM` is set, as
//! `make test` does (`make deps` installs the `chromium` package).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use base64::Engine;

/// The browser's window for one load, and the bound on every DevTools answer: a guard, not a synchronisation
/// (a load on this machine takes about a second).
pub const BROWSER_LIMIT: Duration = Duration::from_secs(15);

/// The `chromium` binary, or None after saying why the caller's test is skipped; panics instead when
/// `TMC_REQUIRE_CHROMIUM` is set.
pub fn find(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
            .find(|candidate| candidate.is_file())
    });
    match found {
        Some(path) => Some(path),
        None if std::env::var_os("TMC_REQUIRE_CHROMIUM").is_none() => {
            eprintln!("SKIPPED {test}: chromium is not installed; `make deps` installs it");
            None
        }
        None => panic!(
            "{test}: chromium is not installed (TMC_REQUIRE_CHROMIUM is set: run `make deps`)"
        ),
    }
}

/// Headless Chromium with its own profile in `profile`: no sandbox (tests may run as root), no GPU.
fn headless(browser: &Path, profile: &Path) -> Command {
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--window-size=1024,900",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .stdin(Stdio::null());
    cmd
}

/// Loads `url` once: returns the DOM as it is when the page has loaded (its scripts ran) and saves a
/// screenshot to `png`. `--timeout` bounds the load; not `--virtual-time-budget`, which never runs out on a
/// page holding an event stream open, so Chromium would never exit.
pub fn load(browser: &Path, profile: &Path, url: &str, png: &Path) -> String {
    let out = headless(browser, profile)
        .arg(format!("--timeout={}", BROWSER_LIMIT.as_millis()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shot = std::fs::read(png).expect("chromium's screenshot");
    assert!(shot.starts_with(b"\x89PNG"), "a PNG screenshot");
    String::from_utf8(out.stdout).expect("the DOM is UTF-8")
}

/// A page open in headless Chromium, driven over the DevTools protocol on Chromium's pipe
/// (`--remote-debugging-pipe`: JSON messages ended by NUL, in on fd 3, out on fd 4). The browser is closed,
/// and its process stopped by pid, on drop.
pub struct Session {
    child: Child,
    to_browser: std::fs::File,
    from_browser: Receiver<serde_json::Value>,
    next_id: u64,
    session: String,
}

impl Session {
    /// Starts Chromium on `url` and attaches to its page.
    pub fn open(browser: &Path, profile: &Path, url: &str) -> Session {
        // std cannot hand a child fds 3 and 4 without unsafe code: two FIFOs, opened as those fds by sh.
        let to_path = profile.with_extension("to-browser");
        let from_path = profile.with_extension("from-browser");
        for fifo in [&to_path, &from_path] {
            let made = Command::new("mkfifo").arg(fifo).status().expect("mkfifo");
            assert!(made.success(), "mkfifo {}", fifo.display());
        }
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#"exec "$0" "$@" 3<"$TMC_TO_BROWSER" 4>"$TMC_FROM_BROWSER""#)
            .arg(browser)
            .args(headless(browser, profile).get_args())
            .args(["--remote-debugging-pipe", url])
            .env("TMC_TO_BROWSER", &to_path)
            .env("TMC_FROM_BROWSER", &from_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("start chromium");
        // In the order sh opens them: each open waits for the other end.
        let to_browser = std::fs::OpenOptions::new()
            .write(true)
            .open(&to_path)
            .expect("open the pipe to chromium");
        let from = std::fs::File::open(&from_path).expect("open the pipe from chromium");
        let (tx, from_browser) = mpsc::channel();
        // A reader thread, so that every wait for an answer is bounded.
        std::thread::spawn(move || {
            let mut reader = BufReader::new(from);
            let mut message = Vec::new();
            while reader.read_until(0, &mut message).is_ok_and(|n| n > 0) {
                message.pop_if(|b| *b == 0);
                let Ok(value) = serde_json::from_slice(&message) else {
                    break;
                };
                if tx.send(value).is_err() {
                    break;
                }
                message.clear();
            }
        });
        let mut session = Session {
            child,
            to_browser,
            from_browser,
            next_id: 0,
            session: String::new(),
        };
        let deadline = Instant::now() + BROWSER_LIMIT;
        let target = loop {
            let targets = session.call("Target.getTargets", serde_json::json!({}));
            let page = targets["targetInfos"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|t| t["type"] == "page")
                .map(|t| t["targetId"].clone());
            if let Some(page) = page {
                break page;
            }
            assert!(Instant::now() < deadline, "chromium opened no page");
            // Chromium makes the page target just after it starts: ask again.
            std::thread::sleep(Duration::from_millis(50));
        };
        let attached = session.call(
            "Target.attachToTarget",
            serde_json::json!({ "targetId": target, "flatten": true }),
        );
        session.session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        session
    }

    /// Sends one command (to the page once attached) and returns its result.
    fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = serde_json::json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            message["sessionId"] = self.session.clone().into();
        }
        let mut bytes = serde_json::to_vec(&message).expect("JSON");
        bytes.push(0);
        self.to_browser
            .write_all(&bytes)
            .expect("write to chromium's pipe");
        let deadline = Instant::now() + BROWSER_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.from_browser.recv_timeout(left) {
                // Events (no id) and answers to nobody are not this command's.
                Ok(answer) if answer["id"] == id => {
                    assert!(answer["error"].is_null(), "{method}: {answer}");
                    return answer["result"].clone();
                }
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("{method}: no answer from chromium"),
                Err(RecvTimeoutError::Disconnected) => panic!("{method}: chromium exited"),
            }
        }
    }

    /// The value of a JavaScript expression in the page, or None if it threw (the page is still loading).
    pub fn evaluate(&mut self, expression: &str) -> Option<serde_json::Value> {
        let result = self.call(
            "Runtime.evaluate",
            serde_json::json!({ "expression": expression, "returnByValue": true }),
        );
        result["exceptionDetails"]
            .is_null()
            .then(|| result["result"]["value"].clone())
    }

    /// The serialised DOM, as `--dump-dom` prints it.
    pub fn dom(&mut self) -> String {
        self.evaluate("document.documentElement.outerHTML")
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// The DOM once `check` holds for it, or the last one after `limit` (the page updates itself from its
    /// event stream; Chromium tells nothing when it did, so it is looked at).
    pub fn wait_for_dom(&mut self, limit: Duration, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let dom = self.dom();
            if check(&dom) || Instant::now() >= deadline {
                return dom;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves a screenshot of the page as it is now to `png`.
    pub fn screenshot(&mut self, png: &Path) {
        let shot = self.call("Page.captureScreenshot", serde_json::json!({}));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("base64 screenshot");
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(png, bytes).expect("write the screenshot");
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // An orderly close lets Chromium stop its own helper processes; the kill is for one that does not.
        let close = b"{\"id\":0,\"method\":\"Browser.close\"}\0";
        if self.to_browser.write_all(close).is_ok() {
            let deadline = Instant::now() + BROWSER_LIMIT;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
