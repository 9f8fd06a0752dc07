//! Writing to cargo hot's own stdout and stderr without ever blocking the engine's loop.
//!
//! A terminal that is not read (Ctrl-S), a pipe nobody drains (`cargo hot 2>&1 | sleep 1d`) or
//! a reader slower than a target's output would otherwise stop the loop in a `write` — and
//! with it signals, stop deadlines and restarts — or, with a queue, grow memory without
//! bound. One writer thread does the writing, in order, from a queue bounded in bytes. When
//! the queue is full, a target's output (and cargo's) is dropped and counted, and a notice
//! says how many lines were lost once there is room again; cargo hot's own events are kept up
//! to a larger bound, past which they are dropped and counted too, never waited for.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::process::Stream;

/// Bytes of output that may wait for the writer before lines that can be spared are dropped.
pub const SPARE_LIMIT: usize = 1 << 20;
/// Bytes that may wait at all: past this even events are dropped (and counted).
pub const HARD_LIMIT: usize = 4 << 20;
/// How long the last lines get to reach a slow reader when cargo hot exits.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

enum Chunk {
    Write(Stream, Vec<u8>),
    /// Answered once everything before it is written.
    Flush(Sender<()>),
}

/// Whether a line may be dropped when the reader falls behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// A target's or cargo's output: dropped first, counted.
    Spare,
    /// cargo hot's own events: kept while anything can be.
    Keep,
}

pub struct Sink {
    tx: Option<Sender<Chunk>>,
    queued: Arc<AtomicUsize>,
    dropped: u64,
}

impl Sink {
    /// A sink writing to this process's stdout and stderr.
    pub fn stdio() -> Sink {
        Sink::with_writers(std::io::stdout(), std::io::stderr())
    }

    pub fn with_writers(
        mut out: impl Write + Send + 'static,
        mut err: impl Write + Send + 'static,
    ) -> Sink {
        let (tx, rx): (Sender<Chunk>, Receiver<Chunk>) = crossbeam_channel::unbounded();
        let queued = Arc::new(AtomicUsize::new(0));
        let done = queued.clone();
        let spawned = std::thread::Builder::new()
            .name("hot-output".into())
            .spawn(move || {
                for chunk in rx {
                    match chunk {
                        Chunk::Write(stream, bytes) => {
                            let to: &mut dyn Write = match stream {
                                Stream::Stdout => &mut out,
                                Stream::Stderr => &mut err,
                            };
                            // A closed pipe (`cargo hot | head`) must not kill the
                            // supervisor mid-restart: errors are dropped.
                            let _ = to.write_all(&bytes);
                            let _ = to.flush();
                            done.fetch_sub(bytes.len(), Ordering::SeqCst);
                        }
                        Chunk::Flush(answer) => {
                            let _ = answer.send(());
                        }
                    }
                }
            });
        Sink {
            // Without a writer thread nothing can be written: every line is dropped.
            tx: spawned.ok().map(|_| tx),
            queued,
            dropped: 0,
        }
    }

    /// Queues `line` and a newline for `stream`, or drops it when the reader is too far
    /// behind. Never blocks.
    pub fn line(&mut self, stream: Stream, line: &[u8], priority: Priority) {
        let Some(tx) = &self.tx else {
            self.dropped += 1;
            return;
        };
        let queued = self.queued.load(Ordering::SeqCst);
        let limit = match priority {
            Priority::Spare => SPARE_LIMIT,
            Priority::Keep => HARD_LIMIT,
        };
        if queued + line.len() + 1 > limit {
            self.dropped += 1;
            return;
        }
        if self.dropped > 0 {
            let notice = format!(
                "cargo-hot: {} lines of output were dropped: the terminal or pipe did not keep up\n",
                self.dropped
            );
            self.dropped = 0;
            self.queued.fetch_add(notice.len(), Ordering::SeqCst);
            let _ = tx.send(Chunk::Write(Stream::Stderr, notice.into_bytes()));
        }
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
        self.queued.fetch_add(bytes.len(), Ordering::SeqCst);
        let _ = tx.send(Chunk::Write(stream, bytes));
    }

    /// Waits until everything queued so far is written, for at most `timeout`. False if the
    /// reader did not keep up in time.
    pub fn flush(&self, timeout: Duration) -> bool {
        let Some(tx) = &self.tx else {
            return true;
        };
        let (answer, done) = crossbeam_channel::bounded(1);
        if tx.send(Chunk::Flush(answer)).is_err() {
            return true;
        }
        done.recv_deadline(Instant::now() + timeout).is_ok()
    }

    /// Bytes waiting for the writer.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        // The last lines (the quit event) reach a slow reader as long as it reads, for at
        // most DRAIN_TIMEOUT; a reader that takes nothing for STALLED is not waited for.
        const STALLED: Duration = Duration::from_millis(200);
        let started = Instant::now();
        let mut left = self.queued();
        let mut progress = Instant::now();
        while started.elapsed() < DRAIN_TIMEOUT {
            if self.flush(Duration::from_millis(50)) {
                return;
            }
            let now_left = self.queued();
            if now_left < left {
                left = now_left;
                progress = Instant::now();
            } else if progress.elapsed() >= STALLED {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A writer that blocks until the gate opens, then records what it got.
    #[derive(Clone)]
    struct Gated {
        gate: Receiver<()>,
        got: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gated {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.gate.recv();
            self.got.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// With stderr an unread pipe, SIGTERM waited ~10 s and memory grew with a fast target's
    /// output: writing never blocks now, the queue stays bounded and losses are counted.
    #[test]
    fn a_stuck_reader_never_blocks_and_bounds_the_queue() {
        let (open, gate) = crossbeam_channel::unbounded();
        let got = Arc::new(Mutex::new(Vec::new()));
        let writer = Gated {
            gate,
            got: got.clone(),
        };
        let mut sink = Sink::with_writers(writer.clone(), writer);
        let line = vec![b'x'; 1000];
        let started = Instant::now();
        for _ in 0..100_000 {
            sink.line(Stream::Stdout, &line, Priority::Spare);
        }
        sink.line(Stream::Stderr, b"event", Priority::Keep);
        // 100 MB offered, a bounded amount kept, and all of it without waiting.
        assert!(sink.queued() <= SPARE_LIMIT + 1024, "{}", sink.queued());
        assert!(started.elapsed() < Duration::from_secs(20));
        assert!(
            !sink.flush(Duration::from_millis(10)),
            "the reader is stuck"
        );
        // The reader wakes up: what was kept arrives, then the count of what was not.
        for _ in 0..100_000 {
            let _ = open.send(());
        }
        sink.line(Stream::Stdout, b"after", Priority::Spare);
        assert!(sink.flush(Duration::from_secs(30)));
        let text = String::from_utf8_lossy(&got.lock().unwrap()).into_owned();
        assert!(text.contains("event\n"), "events are kept");
        let dropped = text
            .lines()
            .find_map(|l| l.strip_prefix("cargo-hot: "))
            .and_then(|l| l.split(' ').next())
            .and_then(|n| n.parse::<usize>().ok())
            .expect("a notice counts the dropped lines");
        let written = text.lines().filter(|l| l.starts_with('x')).count();
        assert_eq!(written + dropped, 100_000);
        assert!(text.ends_with("after\n"));
    }
}
