//! The HTTP listener: one thread per connection (at most [`MAX_CONNECTIONS`]), GET only, three paths.
//!
//! - `/` — the page: one self-contained HTML document (inline script and style, no external assets), with the
//!   current view embedded so it shows the readings before the event stream connects.
//! - `/api/readings` — the view as JSON.
//! - `/events` — server-sent events: the view at once, then each time it changed; a comment line every
//!   [`KEEPALIVE`] otherwise, which is also how a closed browser tab is noticed.
//!
//! One poller thread looks at the two files every poll interval (metadata only, unless they changed) and
//! publishes a new view to every event stream through [`Hub`].

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use crate::dashboard::{unix_now, Dashboard};
use tmc_http::Request;

/// Connections served at once; more are answered 503 (the page is for a few people, not a crowd).
pub const MAX_CONNECTIONS: usize = 32;
/// An idle event stream gets a comment line this often.
pub const KEEPALIVE: Duration = Duration::from_secs(15);
/// How long a client may take to send its request head (at most [`tmc_http::MAX_REQUEST_HEAD`] bytes).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

const PAGE: &str = include_str!("page.html");
/// Where the page's current view goes (inside a `<script type="application/json">`).
const VIEW_PLACEHOLDER: &str = "/*VIEW*/null";

/// The newest view and its generation, and a wake-up for event streams waiting for the next one.
#[derive(Debug, Default)]
pub struct Hub {
    latest: Mutex<(u64, String)>,
    changed: Condvar,
}

impl Hub {
    /// Publishes a new view and wakes every event stream.
    pub fn publish(&self, view: String) {
        let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        latest.0 += 1;
        latest.1 = view;
        self.changed.notify_all();
    }

    /// The current view and its generation.
    pub fn current(&self) -> (u64, String) {
        self.latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The first view newer than `generation`, or None after `timeout`.
    fn next_after(&self, generation: u64, timeout: Duration) -> Option<(u64, String)> {
        let latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        let (latest, _) = self
            .changed
            .wait_timeout_while(latest, timeout, |l| l.0 <= generation)
            .unwrap_or_else(PoisonError::into_inner);
        (latest.0 > generation).then(|| latest.clone())
    }
}

/// A bound listener, not yet serving.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    hub: Arc<Hub>,
}

impl Server {
    /// Binds `addr` (port 0: any free port, see [`Server::local_addr`]).
    pub fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        Ok(Server {
            listener: TcpListener::bind(addr)?,
            hub: Arc::new(Hub::default()),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Starts the poller thread over `dashboard`, then serves connections on this thread, for ever.
    pub fn serve(self, mut dashboard: Dashboard, poll: Duration) -> std::io::Result<()> {
        dashboard.refresh();
        self.hub.publish(dashboard.to_json(unix_now()));
        let hub = Arc::clone(&self.hub);
        std::thread::Builder::new()
            .name("poll".into())
            .spawn(move || loop {
                std::thread::sleep(poll);
                if dashboard.refresh() {
                    hub.publish(dashboard.to_json(unix_now()));
                }
            })?;
        let active = Arc::new(AtomicUsize::new(0));
        for stream in self.listener.incoming() {
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!("accept: {e}");
                    continue;
                }
            };
            if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                active.fetch_sub(1, Ordering::SeqCst);
                let _ = respond(&stream, "503 Service Unavailable", "text/plain", b"busy\n");
                continue;
            }
            let hub = Arc::clone(&self.hub);
            let active_here = Arc::clone(&active);
            let spawned = std::thread::Builder::new()
                .name("http".into())
                .spawn(move || {
                    if let Err(e) = handle(stream, &hub) {
                        tracing::debug!("connection: {e}");
                    }
                    active_here.fetch_sub(1, Ordering::SeqCst);
                });
            if let Err(e) = spawned {
                active.fetch_sub(1, Ordering::SeqCst);
                tracing::warn!("no thread for a connection: {e}");
            }
        }
        Ok(())
    }
}

fn handle(stream: TcpStream, hub: &Hub) -> std::io::Result<()> {
    let Request::Target { method, path } = tmc_http::read_request(&stream, REQUEST_TIMEOUT)? else {
        return respond(&stream, "400 Bad Request", "text/plain", b"bad request\n");
    };
    if method != "GET" {
        return respond(
            &stream,
            "405 Method Not Allowed",
            "text/plain",
            b"read-only: GET only\n",
        );
    }
    match path.as_str() {
        "/" => {
            let (_, view) = hub.current();
            // `</` would end the script element the view sits in.
            let page = PAGE.replace(VIEW_PLACEHOLDER, &view.replace("</", "<\\/"));
            respond(
                &stream,
                "200 OK",
                "text/html; charset=utf-8",
                page.as_bytes(),
            )
        }
        "/api/readings" => {
            let (_, view) = hub.current();
            respond(&stream, "200 OK", "application/json", view.as_bytes())
        }
        "/events" => events(stream, hub),
        _ => respond(&stream, "404 Not Found", "text/plain", b"not found\n"),
    }
}

/// Headers every answer carries: nothing cached, nothing loaded from elsewhere.
const COMMON_HEADERS: &str = "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'\r\n";

fn respond(
    stream: &TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    tmc_http::respond(stream, status, content_type, COMMON_HEADERS, body)
}

fn events(mut stream: TcpStream, hub: &Hub) -> std::io::Result<()> {
    stream.set_read_timeout(None)?;
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n{COMMON_HEADERS}Connection: keep-alive\r\n\r\n"
    );
    stream.write_all(head.as_bytes())?;
    let (mut generation, view) = hub.current();
    write_event(&mut stream, &view)?;
    // From here every change reaches this client: tests wait for this line before changing the files.
    tracing::info!("event stream opened");
    loop {
        match hub.next_after(generation, KEEPALIVE) {
            Some((g, view)) => {
                generation = g;
                write_event(&mut stream, &view)?;
            }
            None => {
                stream.write_all(b": keepalive\n\n")?;
                stream.flush()?;
            }
        }
    }
}

/// One event: the view is one JSON line, so one `data:` field.
fn write_event(stream: &mut TcpStream, view: &str) -> std::io::Result<()> {
    stream.write_all(format!("data: {view}\n\n").as_bytes())?;
    stream.flush()
}
