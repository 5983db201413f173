//! `-S2`: the edge's one TCP connection to its current supernode
//! (wire.md §1 framing, behaviour.md §2.2). A background task keeps a
//! connection to the *target* (the core's current supernode, set by the
//! loop after every pass): it connects (bound to the `-p` address, port
//! ignored), reconnects with backoff ([`BACKOFF_MIN`] doubling to
//! [`BACKOFF_MAX`], reset by a connection), and moves to a new target at
//! once when the core fails over to another `-l` supernode. The loop gets
//! [`LinkEvent`]s: `Up` (the core then re-registers at once), each
//! received message, `Down`.
//!
//! Every datagram the core addresses to the target goes over the
//! connection (framed; dropped and counted while it is down or its queue
//! of [`WRITE_QUEUE`] frames is full), never over UDP.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use n2n_proto::wire::tcp::{TcpDeframer, frame_prefix};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};

use super::background::{Background, Tx};

/// First reconnection delay.
pub const BACKOFF_MIN: Duration = Duration::from_millis(250);
/// Longest reconnection delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(8);
/// Connection attempt timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Frames queued for the connection.
pub const WRITE_QUEUE: usize = 512;

/// What the link task reports.
#[derive(Debug)]
pub(super) enum LinkEvent {
    /// Connected to this supernode; frames for it go to the sender.
    Up(SocketAddr, mpsc::Sender<Vec<u8>>),
    /// One message from it (prefix removed).
    Frame(SocketAddr, Vec<u8>),
    /// The connection ended (or could not be made), and why.
    Down(SocketAddr, String),
}

/// The loop's side of the link.
#[derive(Debug)]
pub(super) struct TcpLink {
    target: watch::Sender<Option<SocketAddr>>,
    pub(super) rx: mpsc::Receiver<LinkEvent>,
    writer: Option<(SocketAddr, mpsc::Sender<Vec<u8>>)>,
    /// Datagrams dropped because the connection was down or full.
    pub(super) dropped: u64,
}

impl TcpLink {
    /// Start the link task on the runtime; `bind`: local address to
    /// connect from (`None`: any).
    pub(super) fn new(bind: Option<IpAddr>, bg: &Background) -> Self {
        let (target, target_rx) = watch::channel(None);
        let (tx, rx) = bg.channel(1024);
        bg.spawn(link_task(target_rx, tx, bind));
        Self {
            target,
            rx,
            writer: None,
            dropped: 0,
        }
    }

    /// Follow the core's current supernode.
    pub(super) fn set_target(&self, a: Option<SocketAddr>) {
        self.target.send_if_modified(|t| {
            let changed = *t != a;
            *t = a;
            changed
        });
    }

    /// Does a datagram for `dst` go over the connection?
    pub(super) fn routes(&self, dst: SocketAddr) -> bool {
        *self.target.borrow() == Some(dst)
    }

    /// Whether connected, and to which supernode.
    pub(super) fn connected(&self) -> Option<SocketAddr> {
        self.writer.as_ref().map(|(a, _)| *a)
    }

    pub(super) fn up(&mut self, a: SocketAddr, w: mpsc::Sender<Vec<u8>>) {
        self.writer = Some((a, w));
    }

    pub(super) fn down(&mut self, a: SocketAddr) {
        if self.connected() == Some(a) {
            self.writer = None;
        }
    }

    /// Queue one message (framed) for the connection.
    pub(super) fn send(&mut self, msg: &[u8]) {
        let ok = match (&self.writer, frame_prefix(msg.len())) {
            (Some((_, w)), Ok(p)) => {
                let mut f = Vec::with_capacity(p.len() + msg.len());
                f.extend_from_slice(&p);
                f.extend_from_slice(msg);
                w.try_send(f).is_ok()
            }
            _ => false,
        };
        if !ok {
            self.dropped += 1;
        }
    }
}

async fn connect(dst: SocketAddr, bind: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let s = if dst.is_ipv6() {
        TcpSocket::new_v6()?
    } else {
        TcpSocket::new_v4()?
    };
    if let Some(ip) = bind
        && ip.is_ipv4() == dst.is_ipv4()
    {
        s.bind(SocketAddr::new(ip, 0))?;
    }
    let st = tokio::time::timeout(CONNECT_TIMEOUT, s.connect(dst))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    st.set_nodelay(true)?;
    Ok(st)
}

async fn link_task(
    mut target: watch::Receiver<Option<SocketAddr>>,
    tx: Tx<LinkEvent>,
    bind: Option<IpAddr>,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let Some(dst) = *target.borrow_and_update() else {
            if target.changed().await.is_err() {
                return;
            }
            continue;
        };
        let why = match connect(dst, bind).await {
            Ok(st) => {
                backoff = BACKOFF_MIN;
                run_connection(st, dst, &tx, &mut target).await
            }
            Err(e) => format!("connect failed: {e}"),
        };
        if tx.send(LinkEvent::Down(dst, why)).await.is_err() {
            return;
        }
        // Wait before the next attempt, unless the target changes.
        tokio::select! {
            r = target.changed() => if r.is_err() { return },
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Until the connection ends or the target changes; the reason.
async fn run_connection(
    st: TcpStream,
    dst: SocketAddr,
    tx: &Tx<LinkEvent>,
    target: &mut watch::Receiver<Option<SocketAddr>>,
) -> String {
    let (mut rd, mut wr) = st.into_split();
    let (wtx, mut wrx) = mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(f) = wrx.recv().await {
            if wr.write_all(&f).await.is_err() {
                break;
            }
        }
    });
    if tx.send(LinkEvent::Up(dst, wtx)).await.is_err() {
        writer.abort();
        return "stopping".into();
    }
    let mut de = Box::new(TcpDeframer::new());
    let why = 'conn: loop {
        let space = de.read_space();
        tokio::select! {
            r = rd.read(space) => match r {
                Ok(0) => break 'conn "closed by the supernode".to_owned(),
                Err(e) => break 'conn format!("read failed: {e}"),
                Ok(n) => de.commit(n),
            },
            r = target.changed() => {
                if r.is_err() || *target.borrow() != Some(dst) {
                    break 'conn "switching supernode".to_owned();
                }
                continue;
            }
        }
        loop {
            match de.next_frame() {
                Ok(Some(f)) => {
                    if tx.send(LinkEvent::Frame(dst, f.to_vec())).await.is_err() {
                        break 'conn "stopping".to_owned();
                    }
                }
                Ok(None) => break,
                Err(e) => break 'conn format!("framing error: {e}"),
            }
        }
    };
    writer.abort();
    why
}
