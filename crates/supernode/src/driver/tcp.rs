//! The TCP listener for `-S2` edges (behaviour.md §9.11, wire.md §1): one
//! accept task per listener, one reader and one writer task per
//! connection. Readers deframe ([`TcpDeframer`]) and hand whole messages
//! to the loop over a bounded channel (back-pressure: a reader waits while
//! the loop is busy); the loop's transmits for a connection are framed and
//! queued to its writer (bounded; a full queue drops the datagram, counted
//! as a transmit error, like a full UDP socket buffer would).
//!
//! Hostile peers are bounded: at most `--tcp-max-connections` connections
//! (further ones are closed at once, counted `tcp_connection_limit`); a
//! connection that sends nothing for `--tcp-idle-timeout`, or leaves a
//! frame incomplete for `--tcp-frame-timeout` (half-open, 1-byte
//! slowloris writes), is closed (`tcp_timeout`); a length prefix over the
//! maximum datagram closes it (`tcp_frame_too_long`). Per connection the
//! supernode holds one deframer buffer ([`TCP_DEFRAMER_CAPACITY`] bytes),
//! a writer queue of at most [`WRITE_QUEUE`] frames and two small tasks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use n2n_core::ConnId;
use n2n_core::supernode::DropReason;
use n2n_proto::wire::tcp::{TCP_DEFRAMER_CAPACITY, TcpDeframer, frame_prefix};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Frames queued per connection writer.
pub const WRITE_QUEUE: usize = 256;
/// Messages queued from all readers to the loop.
pub const INPUT_QUEUE: usize = 1024;

/// Limits of the TCP side (`--tcp-*` options).
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    /// Most connections at once.
    pub max_connections: usize,
    /// Close after this long without a byte between frames.
    pub idle_timeout: Duration,
    /// Close when a frame stays incomplete this long.
    pub frame_timeout: Duration,
}

/// What the TCP tasks tell the loop.
#[derive(Debug)]
pub enum TcpInput {
    /// A connection was accepted; frames for it go to the sender.
    Opened(ConnId, SocketAddr, mpsc::Sender<Vec<u8>>),
    /// One message (prefix removed).
    Frame(ConnId, SocketAddr, Vec<u8>),
    /// The connection ended (with the drop reason when the supernode closed it).
    Closed(ConnId, Option<DropReason>),
    /// A connection refused at the limit.
    Refused,
}

/// Accept connections on `listener` until the loop goes away.
pub async fn accept_loop(
    listener: TcpListener,
    tx: mpsc::Sender<TcpInput>,
    limits: TcpLimits,
    active: Arc<AtomicUsize>,
    next_id: Arc<std::sync::atomic::AtomicU64>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!("TCP accept failed: {e}");
                // EMFILE and the like: do not spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if tx.is_closed() {
            return;
        }
        if active.load(Ordering::Relaxed) >= limits.max_connections {
            drop(stream);
            let _ = tx.try_send(TcpInput::Refused);
            continue;
        }
        active.fetch_add(1, Ordering::Relaxed);
        let id = ConnId(next_id.fetch_add(1, Ordering::Relaxed));
        let _ = stream.set_nodelay(true);
        let (wtx, wrx) = mpsc::channel(WRITE_QUEUE);
        if tx.send(TcpInput::Opened(id, peer, wtx)).await.is_err() {
            active.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let tx = tx.clone();
        let active = Arc::clone(&active);
        tokio::spawn(async move {
            let reason = connection(stream, id, peer, &tx, limits, wrx).await;
            active.fetch_sub(1, Ordering::Relaxed);
            let _ = tx.send(TcpInput::Closed(id, reason)).await;
        });
    }
}

/// Read frames until the peer closes, an error, or a limit; the writer
/// runs beside it. The drop reason when the supernode closed it.
async fn connection(
    stream: TcpStream,
    id: ConnId,
    peer: SocketAddr,
    tx: &mpsc::Sender<TcpInput>,
    limits: TcpLimits,
    mut wrx: mpsc::Receiver<Vec<u8>>,
) -> Option<DropReason> {
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        while let Some(f) = wrx.recv().await {
            if wr.write_all(&f).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let mut de = Box::new(TcpDeframer::new());
    let mut frame_started: Option<Instant> = None;
    let mut last = Instant::now();
    let reason = loop {
        let deadline = match frame_started {
            Some(t) => t + limits.frame_timeout,
            None => last + limits.idle_timeout,
        };
        let space = de.read_space();
        let n = tokio::select! {
            r = rd.read(space) => match r {
                Ok(0) | Err(_) => break None,
                Ok(n) => n,
            },
            () = tokio::time::sleep_until(deadline) => break Some(DropReason::TcpTimeout),
        };
        de.commit(n);
        last = Instant::now();
        let mut failed = None;
        loop {
            match de.next_frame() {
                Ok(Some(f)) => {
                    if tx
                        .send(TcpInput::Frame(id, peer, f.to_vec()))
                        .await
                        .is_err()
                    {
                        failed = Some(None);
                        break;
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    failed = Some(Some(DropReason::TcpFrameTooLong));
                    break;
                }
            }
        }
        if let Some(r) = failed {
            break r;
        }
        frame_started = match (de.in_frame(), frame_started) {
            (false, _) => None,
            (true, Some(t)) => Some(t),
            (true, None) => Some(last),
        };
    };
    writer.abort();
    debug_assert!(de.buffered() <= TCP_DEFRAMER_CAPACITY);
    reason
}

/// `msg` with its 2-byte length prefix; `None` if it cannot be framed.
pub fn framed(msg: &[u8]) -> Option<Vec<u8>> {
    let p = frame_prefix(msg.len()).ok()?;
    let mut v = Vec::with_capacity(p.len() + msg.len());
    v.extend_from_slice(&p);
    v.extend_from_slice(msg);
    Some(v)
}
