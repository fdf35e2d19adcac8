//! The benchmark's WebSocket client: just enough RFC 6455 to open a session, read the
//! server's frames and close. One read buffer per connection, frames parsed in place.
//!
//! Why not tokio-tungstenite: at 10k connections x 50 broadcasts the client, on one core,
//! must stay well ahead of the server on the other core, or the run measures the client.
//! Reading a whole socket buffer per syscall and finding the broadcast number without
//! allocating or decoding JSON keeps it there. It does not check `Sec-WebSocket-Accept`,
//! and masks its few frames (pong, close) with a zero key, which the RFC allows.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Connections per source address before moving to the next (the ephemeral range holds
/// about 28k ports; earlier runs' sockets may still sit in TIME_WAIT).
const PER_SOURCE: u64 = 4000;
static OPENED: AtomicU64 = AtomicU64::new(0);

/// The next client source address: 127.0.0.2, .3, ... (loopback answers for all of 127/8),
/// rotating so that consecutive runs use fresh addresses.
pub fn next_source() -> Ipv4Addr {
    let n = OPENED.fetch_add(1, Ordering::Relaxed);
    Ipv4Addr::new(127, 0, 0, 2 + ((n / PER_SOURCE) % 250) as u8)
}

/// Opcodes the client acts on.
const OP_TEXT: u8 = 0x1;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;

/// One open WebSocket.
pub struct WsConn {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// What [`WsConn::next_text`] found.
pub enum Frame<'a> {
    /// A text frame's payload.
    Text(&'a [u8]),
    /// The server closed (a close frame or EOF).
    Closed,
}

impl WsConn {
    /// Connect from `source` to `server`, upgrade at `path` (with its query), and return the
    /// connection once the server's first text frame (`connected`) arrived.
    pub async fn open(source: Ipv4Addr, server: SocketAddr, path: &str) -> anyhow::Result<Self> {
        let socket = TcpSocket::new_v4()?;
        // Source addresses are reused across runs while old sockets sit in TIME_WAIT.
        socket.set_reuseaddr(true)?;
        socket
            .bind(SocketAddr::from((source, 0)))
            .with_context(|| format!("bind {source}"))?;
        let stream = socket
            .connect(server)
            .await
            .with_context(|| format!("connect {source} -> {server}"))?;
        stream.set_nodelay(true)?;
        let mut conn = WsConn {
            stream,
            buf: vec![0; 4096],
            start: 0,
            end: 0,
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {server}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: pitchey-v1\r\n\r\n"
        );
        conn.stream.write_all(request.as_bytes()).await?;
        let head_end = loop {
            if let Some(i) = conn.buf[..conn.end]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
            {
                break i + 4;
            }
            if conn.end == conn.buf.len() {
                bail!("upgrade response headers too long");
            }
            let n = conn.stream.read(&mut conn.buf[conn.end..]).await?;
            if n == 0 {
                bail!("server closed during the upgrade");
            }
            conn.end += n;
        };
        let head = String::from_utf8_lossy(&conn.buf[..head_end]);
        if !head.starts_with("HTTP/1.1 101") {
            let status = head.lines().next().unwrap_or_default().to_owned();
            bail!("upgrade refused: {status}");
        }
        conn.start = head_end;
        match conn.next_text().await? {
            Frame::Text(t) if t.windows(11).any(|w| w == b"\"connected\"") => Ok(conn),
            Frame::Text(t) => bail!(
                "first frame is not `connected`: {}",
                String::from_utf8_lossy(t)
            ),
            Frame::Closed => bail!("closed before `connected`"),
        }
    }

    /// The next text frame (pings are answered, other control frames skipped).
    pub async fn next_text(&mut self) -> anyhow::Result<Frame<'_>> {
        loop {
            match self.parse_header()? {
                Some((op, at, len)) if self.end - at >= len => {
                    self.start = at + len;
                    match op {
                        OP_TEXT => return Ok(Frame::Text(&self.buf[at..at + len])),
                        OP_CLOSE => return Ok(Frame::Closed),
                        OP_PING => {
                            let payload = self.buf[at..at + len].to_vec();
                            self.write_frame(0xA, &payload).await?;
                        }
                        _ => {}
                    }
                    continue;
                }
                Some((_, at, len)) => self.make_room(at - self.start + len),
                None => self.make_room(14),
            }
            let end = self.end;
            let n = self.stream.read(&mut self.buf[end..]).await?;
            if n == 0 {
                return Ok(Frame::Closed);
            }
            self.end += n;
        }
    }

    /// The frame at `start`: (opcode, payload offset, payload length), or None when the
    /// header is not all here yet.
    fn parse_header(&self) -> anyhow::Result<Option<(u8, usize, usize)>> {
        let b = &self.buf[self.start..self.end];
        if b.len() < 2 {
            return Ok(None);
        }
        if b[1] & 0x80 != 0 {
            bail!("the server masked a frame");
        }
        let (len, hdr) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => {
                let mut l = [0u8; 8];
                l.copy_from_slice(&b[2..10]);
                (usize::try_from(u64::from_be_bytes(l))?, 10)
            }
            126 | 127 => return Ok(None),
            n => (n as usize, 2),
        };
        if len > 16 << 20 {
            bail!("frame of {len} bytes");
        }
        Ok(Some((b[0] & 0x0f, self.start + hdr, len)))
    }

    /// Make the buffer hold `need` bytes from `start`: move the unread bytes to the front,
    /// grow when one frame is larger than the buffer.
    fn make_room(&mut self, need: usize) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if need > self.buf.len() {
            self.buf.resize(need.next_power_of_two(), 0);
        }
    }

    async fn write_frame(&mut self, op: u8, payload: &[u8]) -> anyhow::Result<()> {
        let len = payload.len().min(125);
        let mut f = Vec::with_capacity(6 + len);
        // FIN + opcode, MASK + length, a zero masking key (the payload goes as is).
        f.extend_from_slice(&[0x80 | op, 0x80 | len as u8, 0, 0, 0, 0]);
        f.extend_from_slice(&payload[..len]);
        self.stream.write_all(&f).await?;
        Ok(())
    }

    /// Close with 1000 and end the TCP connection, without waiting for the server's answer
    /// (a client going away; the server must clean up either way).
    pub async fn close(mut self) {
        let _ = self.write_frame(OP_CLOSE, &1000u16.to_be_bytes()).await;
        let _ = self.stream.shutdown().await;
    }
}

/// The broadcast number in an announcement whose title is `bench-<k>`, without decoding the
/// JSON (both servers encode `"title":"bench-<k>"` verbatim).
pub fn broadcast_number(payload: &[u8]) -> Option<u32> {
    const KEY: &[u8] = b"\"title\":\"bench-";
    let at = payload.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = payload[at..].iter().take_while(|c| c.is_ascii_digit());
    let mut k: u32 = 0;
    let mut any = false;
    for d in digits {
        k = k.checked_mul(10)?.checked_add(u32::from(d - b'0'))?;
        any = true;
    }
    any.then_some(k)
}

/// Open `n` connections for users `first_user..first_user + n`, `concurrency` at a time.
pub async fn open_many(
    server: SocketAddr,
    first_user: u64,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<WsConn>> {
    use futures_util::StreamExt;
    let mut tokens = Vec::with_capacity(n);
    for i in 0..n as u64 {
        tokens.push(crate::servers::token(first_user + i, false)?);
    }
    let conns: Vec<anyhow::Result<WsConn>> = futures_util::stream::iter(tokens)
        .map(
            |t| async move { WsConn::open(next_source(), server, &format!("/ws?token={t}")).await },
        )
        .buffered(concurrency.max(1))
        .collect()
        .await;
    conns.into_iter().collect()
}
