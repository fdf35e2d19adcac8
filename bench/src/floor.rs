//! The floor of the fan-out scenario: a server that does nothing but the one thing every
//! server must do per delivery, one `write` of one WebSocket frame to one socket.
//!
//! Run as `pitchey-loadgen floor-server --port P` (the load generator starts it like the
//! other servers, pinned to its core). One thread, blocking sockets, no runtime, no JWT
//! check, no replay log, no JSON decoding: it accepts upgrades (and answers with the same
//! `connected` frame shape), and on `POST /api/ws/announce` writes the announcement, encoded
//! once with each user's `seq` spliced in, to every socket in turn before it answers. What
//! a real server spends above this floor is its own; what this costs is the kernel's
//! (`sendto`, the loopback receive path, the reader's wake-up), which no server writing one
//! frame per client per broadcast avoids. BENCHMARKS.md a.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};

use anyhow::Context;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// One upgraded client.
struct Client {
    stream: TcpStream,
    seq: u64,
}

/// Serve on `port` until killed.
pub fn serve(port: u16) -> anyhow::Result<()> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).context("floor server: binding")?;
    let mut clients: Vec<Client> = Vec::new();
    let mut broadcasts = 0u64;
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let Ok((head, body)) = read_request(&mut stream) else {
            continue;
        };
        let first = head.lines().next().unwrap_or_default();
        if first.starts_with("GET /api/ws/health") {
            respond(&mut stream, "ok");
        } else if first.starts_with("GET /api/ws/stats") {
            respond(
                &mut stream,
                &format!(r#"{{"connections":{}}}"#, clients.len()),
            );
        } else if first.starts_with("POST /api/ws/announce") {
            broadcasts += 1;
            let title = json_string(&body, "title").unwrap_or_default();
            let delivered = announce(&mut clients, broadcasts, &title);
            respond(&mut stream, &format!(r#"{{"delivered":{delivered}}}"#));
        } else if first.starts_with("GET /ws")
            && let Some(client) = upgrade(stream, &head)
        {
            clients.push(client);
        }
    }
    Ok(())
}

/// Write broadcast `n` to every client, one `write` each; drops clients that are gone.
fn announce(clients: &mut Vec<Client>, n: u64, title: &str) -> usize {
    let prefix = format!(
        r#"{{"type":"notification","data":{{"id":"n-{n}","type":"system","title":"{title}","message":"fan-out benchmark","createdAt":"2026-01-01T00:00:00.000Z","read":false}},"seq":"#
    );
    let mut frame = Vec::with_capacity(prefix.len() + 32);
    let mut payload = String::with_capacity(prefix.len() + 24);
    clients.retain_mut(|c| {
        c.seq += 1;
        payload.clear();
        payload.push_str(&prefix);
        payload.push_str(&c.seq.to_string());
        payload.push('}');
        frame.clear();
        push_text_frame(&mut frame, payload.as_bytes());
        c.stream.write_all(&frame).is_ok()
    });
    clients.len()
}

/// The 101 answer and the `connected` frame.
fn upgrade(mut stream: TcpStream, head: &str) -> Option<Client> {
    let key = header(head, "sec-websocket-key")?;
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: pitchey-v1\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    let mut out = answer.into_bytes();
    push_text_frame(&mut out, br#"{"type":"connected","data":{"protocol":1}}"#);
    stream.set_nodelay(true).ok()?;
    stream.write_all(&out).ok()?;
    Some(Client { stream, seq: 0 })
}

/// A request's head and its body (by `Content-Length`).
fn read_request(stream: &mut TcpStream) -> anyhow::Result<(String, String)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        anyhow::ensure!(buf.len() < 16 * 1024, "request head too long");
        let n = stream.read(&mut chunk)?;
        anyhow::ensure!(n > 0, "closed before the end of the head");
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    };
    let head = String::from_utf8_lossy(buf.get(..head_end).unwrap_or_default()).into_owned();
    let length: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk)?;
        anyhow::ensure!(n > 0, "closed before the end of the body");
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    let body = String::from_utf8_lossy(buf.get(head_end..).unwrap_or_default()).into_owned();
    Ok((head, body))
}

/// A header's value (names compared without case).
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The string value of `"key":"..."` in a flat JSON body (the load generator's titles have
/// no escapes).
fn json_string(body: &str, key: &str) -> Option<String> {
    let start = body.find(&format!(r#""{key}":""#))? + key.len() + 4;
    let rest = body.get(start..)?;
    Some(rest.get(..rest.find('"')?)?.to_owned())
}

/// A `200` with `body`, then close.
fn respond(stream: &mut TcpStream, body: &str) {
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(answer.as_bytes());
}

/// An unmasked, final text frame around `payload`.
fn push_text_frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.push(0x81);
    match payload.len() {
        n @ 0..=125 => out.push(n as u8),
        n @ 126..=0xffff => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_request_fields() {
        let mut f = Vec::new();
        push_text_frame(&mut f, b"hi");
        assert_eq!(f, [0x81, 2, b'h', b'i']);
        let mut f = Vec::new();
        push_text_frame(&mut f, &[b'x'; 300]);
        assert_eq!(f.get(..4), Some([0x81, 126, 1, 44].as_slice()));
        assert_eq!(
            json_string(r#"{"title":"bench-3","message":"m"}"#, "title").as_deref(),
            Some("bench-3")
        );
        let head = "POST / HTTP/1.1\r\nContent-Length: 12\r\nX: y\r\n\r\n";
        assert_eq!(header(head, "content-length"), Some("12"));
    }
}
