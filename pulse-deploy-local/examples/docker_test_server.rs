//! A tiny HTTP server used by the Docker orchestrator's tests, built statically into a `FROM scratch`
//! image. It answers on `$PORT`:
//!
//! - `GET /health`: `200 ok`;
//! - `GET /whoami`: `$PULSE_APP $PULSE_VERSION $PULSE_INSTANCE_ID`;
//! - `GET /secret-check` with header `x-candidate: VALUE`: `200 match` when the file named by
//!   `$PULSE_DRAIN_SECRET_FILE` holds VALUE, `403 mismatch` otherwise, `500` when it cannot be read;
//! - `GET /env-names`: the names of its environment variables, one per line.
//!
//! On SIGTERM it stops accepting and exits 0, unless `TEST_IGNORE_SIGTERM=1` (then only SIGKILL ends it).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8000);
    let listener = TcpListener::bind(("0.0.0.0", port)).await?;
    let ignore_term = std::env::var("TEST_IGNORE_SIGTERM").is_ok_and(|v| v == "1");
    let mut term = signal(SignalKind::terminate())?;
    println!("listening on port {port}");
    loop {
        tokio::select! {
            _ = term.recv() => {
                if ignore_term {
                    println!("SIGTERM received, ignored");
                    continue;
                }
                println!("SIGTERM received, exiting");
                return Ok(());
            }
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(serve(stream));
                }
            }
        }
    }
}

async fn serve(mut stream: TcpStream) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let head = loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break String::from_utf8_lossy(&buf[..end]).into_owned();
                }
                if buf.len() > 16 * 1024 {
                    return;
                }
            }
            _ => return,
        }
    };
    let mut lines = head.lines();
    let path = lines.next().and_then(|l| l.split_whitespace().nth(1)).unwrap_or("/").to_owned();
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let (status, body) = match path.as_str() {
        "/health" => ("200 OK", "ok".to_owned()),
        "/whoami" => {
            let var = |k: &str| std::env::var(k).unwrap_or_default();
            ("200 OK", format!("{} {} {}", var("PULSE_APP"), var("PULSE_VERSION"), var("PULSE_INSTANCE_ID")))
        }
        "/secret-check" => match std::env::var("PULSE_DRAIN_SECRET_FILE").map(std::fs::read_to_string) {
            Ok(Ok(held)) if Some(held.trim().to_owned()) == header("x-candidate") => {
                ("200 OK", "match".into())
            }
            Ok(Ok(_)) => ("403 Forbidden", "mismatch".into()),
            _ => ("500 Internal Server Error", "secret file unreadable".into()),
        },
        "/env-names" => ("200 OK", std::env::vars().map(|(k, _)| k + "\n").collect()),
        _ => ("404 Not Found", "not found".into()),
    };
    let response =
        format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
