//! Log and audit lines written by a thread of their own, in batches.
//!
//! A request thread only appends its line to a shared buffer under a lock;
//! the writer thread wakes once per batch (at most every
//! [`GATHER`]) and writes everything gathered with one `write` call. A
//! per-line channel hand-off (what `tracing-appender` does) costs a wake-up
//! of the writer thread and a `write` call for every line, which under load
//! was a measurable share of each call's CPU (BENCHMARKS.md).
//!
//! When the buffer is full, a lossy writer drops the line and counts it; a
//! lossless one (the audit trail) makes the caller wait for room and counts
//! that wait, so a slow log sink shows in the metrics either way.

use std::{
    io::{self, Write},
    sync::{
        Arc, Condvar, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

/// How long the writer gathers lines after the first one of a batch.
const GATHER: Duration = Duration::from_millis(10);
/// A batch this large is written at once, without waiting out [`GATHER`].
const EAGER_BYTES: usize = 256 * 1024;

struct Shared {
    state: Mutex<State>,
    /// Wakes the writer: a batch has begun, grown large, or it is closing.
    work: Condvar,
    /// Wakes callers of a lossless writer waiting for room.
    room: Condvar,
    capacity: usize,
    lossy: bool,
    /// Lines dropped (lossy) or callers that had to wait (lossless).
    fell_behind: Arc<AtomicU64>,
}

struct State {
    pending: Vec<u8>,
    closing: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The handle lines are written to; cheap to clone.
#[derive(Clone)]
pub(crate) struct BatchWriter {
    shared: Arc<Shared>,
}

/// Flushes what is pending and stops the writer thread when dropped.
pub(crate) struct BatchGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl BatchWriter {
    /// Starts the writer thread over `sink`. At most `capacity` bytes wait
    /// to be written.
    pub(crate) fn spawn(
        name: &str,
        sink: impl Write + Send + 'static,
        capacity: usize,
        lossy: bool,
    ) -> io::Result<(BatchWriter, BatchGuard)> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pending: Vec::with_capacity(64 * 1024),
                closing: false,
            }),
            work: Condvar::new(),
            room: Condvar::new(),
            capacity,
            lossy,
            fell_behind: Arc::new(AtomicU64::new(0)),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(move || write_batches(&shared, sink))?
        };
        Ok((
            BatchWriter {
                shared: shared.clone(),
            },
            BatchGuard {
                shared,
                thread: Some(thread),
            },
        ))
    }

    /// Lines dropped (lossy) or waits for room (lossless) so far.
    pub(crate) fn fell_behind(&self) -> Arc<AtomicU64> {
        self.shared.fell_behind.clone()
    }

    /// Queues one whole line (or several).
    pub(crate) fn write_line(&self, line: &[u8]) {
        let shared = &*self.shared;
        let mut state = shared.lock();
        if state.pending.len() + line.len() > shared.capacity && !state.pending.is_empty() {
            shared.fell_behind.fetch_add(1, Ordering::Relaxed);
            if shared.lossy {
                return;
            }
            shared.work.notify_one();
            state = shared
                .room
                .wait_while(state, |s| {
                    !s.closing
                        && !s.pending.is_empty()
                        && s.pending.len() + line.len() > shared.capacity
                })
                .unwrap_or_else(|e| e.into_inner());
        }
        let was_empty = state.pending.is_empty();
        state.pending.extend_from_slice(line);
        let eager = state.pending.len() >= EAGER_BYTES;
        drop(state);
        if was_empty || eager {
            shared.work.notify_one();
        }
    }
}

fn write_batches(shared: &Shared, mut sink: impl Write) {
    let mut batch = Vec::with_capacity(64 * 1024);
    loop {
        let mut state = shared
            .work
            .wait_while(shared.lock(), |s| s.pending.is_empty() && !s.closing)
            .unwrap_or_else(|e| e.into_inner());
        if !state.closing {
            // Gather the lines that follow the first, unless plenty wait.
            state = shared
                .work
                .wait_timeout_while(state, GATHER, |s| {
                    !s.closing && s.pending.len() < EAGER_BYTES
                })
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        std::mem::swap(&mut batch, &mut state.pending);
        let closing = state.closing;
        drop(state);
        shared.room.notify_all();
        if !batch.is_empty() {
            // Nowhere to report a failed write of the log itself.
            let _ = sink.write_all(&batch).and_then(|()| sink.flush());
            batch.clear();
            if batch.capacity() > 4 * EAGER_BYTES {
                batch.shrink_to(64 * 1024);
            }
        }
        if closing && shared.lock().pending.is_empty() {
            return;
        }
    }
}

impl Drop for BatchGuard {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.work.notify_one();
        self.shared.room.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Write for BatchWriter {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        self.write_line(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchWriter {
    type Writer = BatchWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A sink that takes nothing until released.
    struct Stalled {
        released: Arc<(Mutex<bool>, Condvar)>,
        out: Sink,
    }

    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let (lock, cvar) = &*self.released;
            drop(cvar.wait_while(lock.lock().unwrap(), |released| !*released));
            self.out.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_in_order_by_the_time_the_guard_drops() {
        let sink = Sink::default();
        let (writer, guard) =
            BatchWriter::spawn("test-writer", sink.clone(), 1 << 20, false).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut writer = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        writer.write_all(format!("{t} {i}\n").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(guard);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 4000);
        for t in 0..4 {
            let mine: Vec<usize> = text
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("{t} ")))
                .map(|i| i.parse().unwrap())
                .collect();
            assert_eq!(mine, (0..1000).collect::<Vec<_>>(), "thread {t} in order");
        }
        assert_eq!(writer.fell_behind().load(Ordering::Relaxed), 0);
    }

    fn stalled() -> (Arc<(Mutex<bool>, Condvar)>, Stalled, Sink) {
        let released = Arc::new((Mutex::new(false), Condvar::new()));
        let out = Sink::default();
        let sink = Stalled {
            released: released.clone(),
            out: out.clone(),
        };
        (released, sink, out)
    }

    fn release(released: &(Mutex<bool>, Condvar)) {
        *released.0.lock().unwrap() = true;
        released.1.notify_all();
    }

    #[test]
    fn a_lossy_writer_drops_and_counts_what_does_not_fit() {
        let (released, sink, out) = stalled();
        let (mut writer, guard) = BatchWriter::spawn("lossy", sink, 16, true).unwrap();
        // The first line is taken by the stalled writer thread (or still
        // pending); either way the buffer fills and later lines are dropped.
        for _ in 0..10 {
            writer.write_all(b"0123456789\n").unwrap();
        }
        assert!(writer.fell_behind().load(Ordering::Relaxed) >= 8);
        release(&released);
        drop(guard);
        let written = out.0.lock().unwrap().len() / 11;
        let dropped = writer.fell_behind().load(Ordering::Relaxed) as usize;
        assert_eq!(written + dropped, 10, "each line written or counted");
    }

    #[test]
    fn a_lossless_writer_makes_callers_wait_and_counts_the_waits() {
        let (released, sink, out) = stalled();
        let (writer, guard) = BatchWriter::spawn("lossless", sink, 16, false).unwrap();
        let caller = {
            let mut writer = writer.clone();
            std::thread::spawn(move || {
                for _ in 0..10 {
                    writer.write_all(b"0123456789\n").unwrap();
                }
            })
        };
        // The caller blocks once the buffer is full, and says so.
        while writer.fell_behind().load(Ordering::Relaxed) == 0 {
            std::thread::yield_now();
        }
        assert!(!caller.is_finished());
        release(&released);
        caller.join().unwrap();
        drop(guard);
        assert_eq!(out.0.lock().unwrap().len(), 110, "nothing lost");
    }
}
