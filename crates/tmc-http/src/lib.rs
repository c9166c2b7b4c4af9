//! The HTTP both read-only listeners speak (the services' `[metrics]` and `tmc-web`'s page): a request head
//! read within a time and size bound ([`read_request`]), one answer with `Connection: close` ([`respond`]),
//! and a minimal client ([`get`]) for the tests and the demo.
//!
//! Only what a GET without a body needs: the request line's method and path (a query string is dropped), the
//! headers read and ignored. Anything else is a [`Request::Bad`] that the caller answers 400.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The longest request head read (line and headers); a browser's or a scraper's is well under it.
pub const MAX_REQUEST_HEAD: u64 = 8 * 1024;

/// What a client asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// An HTTP/1.x request line: its method and path.
    Target { method: String, path: String },
    /// Not an HTTP/1.x request line (or none before the connection closed).
    Bad,
}

/// Reads the request's line and headers from `stream`, at most [`MAX_REQUEST_HEAD`] bytes, each read within
/// `timeout` (a client that stalls gets an error, not a thread held for ever). A body, if any, is not read.
pub fn read_request(stream: &TcpStream, timeout: Duration) -> io::Result<Request> {
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut reader = BufReader::new(stream.take(MAX_REQUEST_HEAD));
    let mut first = String::new();
    reader.read_line(&mut first)?;
    // The rest of the head is read and ignored: no header changes the answer.
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    Ok(parse_request_line(&first))
}

fn parse_request_line(line: &str) -> Request {
    let mut parts = line.trim_end_matches(['\r', '\n']).split(' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(method), Some(target), Some(version), None)
            if !method.is_empty() && version.starts_with("HTTP/1.") =>
        {
            let path = target.split('?').next().unwrap_or(target);
            Request::Target {
                method: method.to_owned(),
                path: path.to_owned(),
            }
        }
        _ => Request::Bad,
    }
}

/// Writes one whole answer: `status` (e.g. `200 OK`), the content type, `headers` (each line ending in
/// `\r\n`, or empty), and the body; the connection is closed after it.
pub fn respond(
    mut stream: &TcpStream,
    status: &str,
    content_type: &str,
    headers: &str,
    body: &[u8],
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{headers}Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

/// Reads `http://address/path`: the status code and the body (the tests' and the demo's client; the server
/// closes the connection after its answer). Each step is bounded by `timeout`.
pub fn get(address: SocketAddr, path: &str, timeout: Duration) -> io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::other("no end of the response's headers"))?;
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| io::Error::other(format!("not an HTTP status line: {head:?}")))?;
    Ok((code, body.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        let target = |m: &str, p: &str| Request::Target {
            method: m.into(),
            path: p.into(),
        };
        assert_eq!(
            parse_request_line("GET /metrics HTTP/1.1\r\n"),
            target("GET", "/metrics")
        );
        assert_eq!(
            parse_request_line("POST /a?x=1 HTTP/1.0\n"),
            target("POST", "/a")
        );
        for bad in [
            "",
            "\r\n",
            "GET /\r\n",
            "GET / SPDY/3\r\n",
            "GET / HTTP/1.1 extra\r\n",
            " / HTTP/1.1\r\n",
        ] {
            assert_eq!(parse_request_line(bad), Request::Bad, "{bad:?}");
        }
    }

    #[test]
    fn a_head_longer_than_the_bound_is_cut_not_read_for_ever() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            let mut s = TcpStream::connect(address).unwrap();
            let mut head = b"GET /x HTTP/1.1\r\n".to_vec();
            head.extend(std::iter::repeat_n(b'a', 2 * MAX_REQUEST_HEAD as usize));
            // The server stops reading at the bound and answers; the rest may be refused.
            let _ = s.write_all(&head);
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            answer
        });
        let (stream, _) = listener.accept().unwrap();
        let request = read_request(&stream, Duration::from_secs(5)).unwrap();
        assert_eq!(
            request,
            Request::Target {
                method: "GET".into(),
                path: "/x".into()
            }
        );
        respond(&stream, "200 OK", "text/plain", "", b"ok\n").unwrap();
        drop(stream);
        let answer = client.join().unwrap();
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 200 OK\r\n"),
            "{answer}"
        );
    }
}
