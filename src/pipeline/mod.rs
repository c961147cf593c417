//! The parallel file pipeline behind WAL intake (and, later, base-backup
//! copy and restore):
//!
//! ```text
//!  lister ──(bounded channel)──▶ rayon pool: N workers ──(bounded)──▶ committer
//!    ▲                           per-worker state (codec contexts)      │ in order,
//!    └──────────────── tokens: at most `window` items in flight ◀──────┘ in batches
//! ```
//!
//! - The lister hands out items only against a token; the committer returns
//!   a token per item it has committed. Whatever the number of files, at most
//!   `window` items (and their buffers) exist at once: memory is bounded.
//! - Workers do the CPU and I/O heavy part (read, validate, hash, compress,
//!   stage) with reusable per-worker state.
//! - The committer runs on the calling thread, gets results back **in input
//!   order**, and receives them in batches (every result ready in order), so
//!   it can rename a batch, fsync each directory once, and record it.
//! - When the committer asks to stop, no new item starts; items already
//!   worked are dropped (their staged files are removed by `Drop`).

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};

/// How wide the pipeline is.
#[derive(Debug, Clone, Copy)]
pub struct Width {
    /// Worker threads (the rayon pool's size).
    pub workers: usize,
    /// Items in flight at most (queued, in work, or awaiting commit).
    pub window: usize,
    /// Group commit: the committer waits up to `linger` for `batch` results
    /// in order, so one batch shares its directory and catalog fsyncs.
    pub batch: usize,
    pub linger: Duration,
}

impl Width {
    /// An item in flight between worker and committer holds no data (it is
    /// staged on disk), only a descriptor and a name; the window is wide so
    /// workers keep going while the committer fsyncs, and batches grow
    /// (fewer fsyncs) when the disk is the bottleneck.
    pub fn new(workers: usize) -> Width {
        let workers = workers.max(1);
        let window = (workers * 8).max(32);
        Width {
            workers,
            window,
            batch: window / 2,
            linger: Duration::from_millis(20),
        }
    }
}

/// The number of cores, the default width.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Runs `work` over every item of `items` on `width.workers` threads, each
/// with its own state from `init`, and hands the results to `commit` in
/// input order, in batches. `commit` returning `Break` stops the run.
pub fn run<T, R, S, I, W, C>(
    width: Width,
    items: I,
    init: impl Fn() -> S + Sync,
    work: W,
    mut commit: C,
) where
    T: Send,
    R: Send,
    I: IntoIterator<Item = T>,
    I::IntoIter: Send,
    W: Fn(&mut S, &T) -> R + Sync,
    C: FnMut(Vec<(T, R)>) -> ControlFlow<()>,
{
    let stop = AtomicBool::new(false);
    let (task_tx, task_rx) = bounded::<(usize, T)>(width.workers);
    let (done_tx, done_rx) = bounded::<(usize, T, R)>(width.window);
    let (token_tx, token_rx) = bounded::<()>(width.window);
    for _ in 0..width.window {
        token_tx.send(()).expect("capacity is window");
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(width.workers)
        .thread_name(|i| format!("barman-worker-{i}"))
        .build()
        .expect("a thread pool");
    let items = items.into_iter();
    std::thread::scope(|scope| {
        let stop = &stop;
        scope.spawn(move || {
            for (seq, item) in items.enumerate() {
                if token_rx.recv().is_err() || stop.load(Ordering::Relaxed) {
                    break;
                }
                if task_tx.send((seq, item)).is_err() {
                    break;
                }
            }
        });
        pool.in_place_scope(|pool_scope| {
            for _ in 0..width.workers {
                let task_rx = task_rx.clone();
                let done_tx = done_tx.clone();
                let (init, work) = (&init, &work);
                pool_scope.spawn(move |_| {
                    let mut state = init();
                    for (seq, item) in task_rx.iter() {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let result = work(&mut state, &item);
                        if done_tx.send((seq, item, result)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop((task_rx, done_tx));

            let mut pending: BTreeMap<usize, (T, R)> = BTreeMap::new();
            let mut next = 0usize;
            while let Ok((seq, item, result)) = done_rx.recv() {
                pending.insert(seq, (item, result));
                // Gather for a short while (until `batch` are ready in order
                // or `linger` passes); everything ready in order is the batch.
                let deadline = Instant::now() + width.linger;
                loop {
                    while let Ok((seq, item, result)) = done_rx.try_recv() {
                        pending.insert(seq, (item, result));
                    }
                    let ready = (next..).take_while(|s| pending.contains_key(s)).count();
                    let now = Instant::now();
                    if ready >= width.batch || now >= deadline {
                        break;
                    }
                    match done_rx.recv_timeout(deadline - now) {
                        Ok((seq, item, result)) => {
                            pending.insert(seq, (item, result));
                        }
                        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                    }
                }
                let mut batch = Vec::new();
                while let Some(ready) = pending.remove(&next) {
                    batch.push(ready);
                    next += 1;
                }
                if batch.is_empty() {
                    continue;
                }
                let n = batch.len();
                if commit(batch).is_break() {
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
                for _ in 0..n {
                    let _ = token_tx.send(());
                }
            }
            // Stopping: unblock the lister, let workers drain and exit.
            stop.store(true, Ordering::Relaxed);
            drop(token_tx);
            drop(pending);
            while done_rx.recv().is_ok() {}
        });
    });
}

/// [`run`] with a committer that takes the results one at a time, in
/// order, and stops the run at its first error, which is returned.
pub fn try_run<T, R, S, I, W, E>(
    width: Width,
    items: I,
    init: impl Fn() -> S + Sync,
    work: W,
    mut commit: impl FnMut(T, R) -> Result<(), E>,
) -> Result<(), E>
where
    T: Send,
    R: Send,
    I: IntoIterator<Item = T>,
    I::IntoIter: Send,
    W: Fn(&mut S, &T) -> R + Sync,
{
    let mut failure = None;
    run(width, items, init, work, |batch| {
        for (item, result) in batch {
            if let Err(e) = commit(item, result) {
                failure = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    failure.map_or(Ok(()), Err)
}

/// Caps how many workers run their CPU-bound part at once. A pool wider
/// than the cores then overlaps one worker's fsync wait with another's
/// compression, without more compressions at once than cores (which only
/// thrashes the caches).
pub struct CpuSlots {
    tx: Sender<()>,
    rx: Receiver<()>,
}

/// A held CPU slot, given back on drop.
pub struct CpuSlot<'a>(&'a Sender<()>);

impl CpuSlots {
    pub fn new(n: usize) -> CpuSlots {
        let (tx, rx) = bounded(n.max(1));
        for _ in 0..n.max(1) {
            tx.send(()).expect("capacity is n");
        }
        CpuSlots { tx, rx }
    }

    pub fn take(&self) -> CpuSlot<'_> {
        self.rx.recv().expect("the sender lives in self");
        CpuSlot(&self.tx)
    }
}

impl Drop for CpuSlot<'_> {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn results_arrive_in_order_in_batches() {
        let mut seen = Vec::new();
        let mut batches = 0;
        run(
            Width::new(4),
            0..1000u32,
            || 0u32,
            |calls, &i| {
                *calls += 1;
                if i % 7 == 0 {
                    std::thread::yield_now();
                }
                i * 2
            },
            |batch| {
                batches += 1;
                seen.extend(batch.into_iter().map(|(i, r)| {
                    assert_eq!(r, i * 2);
                    i
                }));
                ControlFlow::Continue(())
            },
        );
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        assert!(batches >= 1);
    }

    #[test]
    fn in_flight_items_are_bounded() {
        let live = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        struct Guard<'a>(&'a AtomicUsize);
        impl Drop for Guard<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let width = Width::new(3);
        run(
            width,
            0..500u32,
            || (),
            |_, _| {
                let now = live.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                Guard(&live)
            },
            |batch| {
                drop(batch);
                ControlFlow::Continue(())
            },
        );
        assert!(peak.load(Ordering::SeqCst) <= width.window);
        assert_eq!(live.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn break_stops_the_run() {
        let worked = AtomicUsize::new(0);
        let mut committed = 0;
        run(
            Width::new(2),
            0..100_000u32,
            || (),
            |_, _| worked.fetch_add(1, Ordering::SeqCst),
            |batch| {
                committed += batch.len();
                ControlFlow::Break(())
            },
        );
        assert!(committed >= 1);
        assert!(worked.load(Ordering::SeqCst) < 1000);
    }
}
