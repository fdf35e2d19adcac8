//! A WebSocket client by hand, for what a well-behaved library will not do: never answer
//! pings, send unmasked or non-UTF-8 frames.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Open `/ws?token=` with a hand-written handshake; returns the stream after the 101 head.
pub async fn open(addr: std::net::SocketAddr, token: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.expect("tcp connect");
    let req = format!(
        "GET /ws?token={token} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(req.as_bytes())
        .await
        .expect("write handshake");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).await.expect("read handshake");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    tcp
}

/// One frame from the server: (opcode, payload). `None` at the end of the stream.
pub async fn read_frame(tcp: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    tcp.read_exact(&mut h).await.ok()?;
    let mut len = u64::from(h[1] & 0x7f);
    if len == 126 {
        let mut l = [0u8; 2];
        tcp.read_exact(&mut l).await.ok()?;
        len = u64::from(u16::from_be_bytes(l));
    } else if len == 127 {
        let mut l = [0u8; 8];
        tcp.read_exact(&mut l).await.ok()?;
        len = u64::from_be_bytes(l);
    }
    let mut payload = vec![0u8; len as usize];
    tcp.read_exact(&mut payload).await.ok()?;
    Some((h[0] & 0x0f, payload))
}

/// Read frames until the server's close frame; its code (`None`: the stream ended without one).
pub async fn close_code(tcp: &mut TcpStream) -> Option<u16> {
    while let Some((op, payload)) = read_frame(tcp).await {
        if op == 0x8 {
            return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
        }
    }
    None
}

/// Write one frame with FIN set; masked as a client must, unless `masked` is false.
pub async fn write_frame(tcp: &mut TcpStream, opcode: u8, payload: &[u8], masked: bool) {
    let mut f = vec![0x80 | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    assert!(payload.len() < 126);
    f.push(mask_bit | payload.len() as u8);
    if masked {
        let key = [1u8, 2, 3, 4];
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        f.extend_from_slice(payload);
    }
    tcp.write_all(&f).await.expect("write frame");
}
