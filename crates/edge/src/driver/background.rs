//! The data-path thread's link to the tokio runtime that runs everything
//! else (name resolution, the `-S2` TCP connection, signals, the metrics
//! server, netlink, scripts): tasks are spawned on the runtime's worker,
//! and what they hand to the loop arrives through a [`Tx`], which pokes
//! the loop's [`Waker`] after each message.

use std::sync::Arc;

use n2n_sys::poll::Waker;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

/// The runtime and the loop's waker.
#[derive(Debug, Clone)]
pub(super) struct Background {
    rt: Handle,
    waker: Arc<Waker>,
}

impl Background {
    /// `rt` must keep a worker thread running (a multi-thread runtime):
    /// the loop only blocks on it for the slow steps.
    pub(super) fn new(rt: Handle, waker: Waker) -> Self {
        Self {
            rt,
            waker: Arc::new(waker),
        }
    }

    /// The loop's waker (its descriptor is in the loop's `poll` set).
    pub(super) fn waker(&self) -> &Waker {
        &self.waker
    }

    /// The waker, for threads that wake the loop themselves.
    pub(super) fn waker_arc(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    /// Run `f` on the runtime.
    pub(super) fn spawn<F>(&self, f: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.rt.spawn(f);
    }

    /// Run `f` on the runtime and wait for it (set-up, netlink, scripts:
    /// never per packet).
    pub(super) fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// A channel from tasks to the loop: messages wake it.
    pub(super) fn channel<T>(&self, capacity: usize) -> (Tx<T>, mpsc::Receiver<T>) {
        let (tx, rx) = mpsc::channel(capacity);
        (
            Tx {
                tx,
                waker: self.waker.clone(),
            },
            rx,
        )
    }
}

/// The sending side of [`Background::channel`].
#[derive(Debug)]
pub(super) struct Tx<T> {
    tx: mpsc::Sender<T>,
    waker: Arc<Waker>,
}

impl<T> Clone for Tx<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            waker: self.waker.clone(),
        }
    }
}

impl<T> Tx<T> {
    /// Queue `v` for the loop and wake it; `Err` once the loop is gone.
    pub(super) async fn send(&self, v: T) -> Result<(), ()> {
        self.tx.send(v).await.map_err(drop)?;
        self.waker.wake();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::fd::AsFd as _;
    use std::time::Duration;

    #[test]
    fn a_message_from_a_task_wakes_the_loop() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let bg = Background::new(rt.handle().clone(), Waker::new().unwrap());
        let (tx, mut rx) = bg.channel::<u32>(4);
        bg.spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            tx.send(7).await.unwrap();
        });
        let ready =
            n2n_sys::poll::wait(&[bg.waker().as_fd()], Some(Duration::from_secs(5))).unwrap();
        assert!(ready.is_set(0));
        bg.waker().drain();
        assert_eq!(rx.try_recv().unwrap(), 7);
        // block_on from this (non-runtime) thread: timers work.
        assert_eq!(
            bg.block_on(async {
                tokio::time::sleep(Duration::from_millis(1)).await;
                3
            }),
            3
        );
    }
}
