//! The threads that carry out `waitAsync` where the kernel cannot sleep on
//! many words at once (see `pending`): one per pending wait. Not libuv's pool: a long wait
//! parked there would take one of its four threads from `fs` and `dns`.
//! A thread is reused for the next wait, and ends after a minute idle.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

/// A job gets `idle`, to call once its work is done but before it reports
/// back: the thread is then listed as idle before JavaScript can ask for
/// the next wait, so ping-pong reuses one thread instead of starting one
/// per wait.
pub type Job = Box<dyn FnOnce(&dyn Fn()) + Send>;

const IDLE_LIMIT: Duration = Duration::from_secs(60);
const STACK_SIZE: usize = 64 * 1024;

struct Idle {
  id: u64,
  jobs: Sender<Job>,
}

static IDLE: LazyLock<Mutex<Vec<Idle>>> = LazyLock::new(Mutex::default);
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn idle() -> std::sync::MutexGuard<'static, Vec<Idle>> {
  IDLE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `job` on an idle waiter thread, or a new one. Fails only if no
/// thread can be started.
pub fn run(job: Job) -> std::io::Result<()> {
  let mut job = job;
  while let Some(worker) = idle().pop() {
    match worker.jobs.send(job) {
      Ok(()) => return Ok(()),
      // That thread ended after taking itself off the list; try another.
      Err(mpsc::SendError(returned)) => job = returned,
    }
  }
  let (jobs, receiver) = mpsc::channel::<Job>();
  let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
  jobs.send(job).ok();
  super::slot::THREADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
  let spawned = std::thread::Builder::new()
    .name("posix-shm-wait".into())
    .stack_size(STACK_SIZE)
    .spawn(move || {
      serve(id, jobs, receiver);
      super::slot::THREADS.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    });
  if let Err(error) = spawned {
    super::slot::THREADS.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    return Err(error);
  }
  Ok(())
}

/// A pool thread's life: jobs until a minute passes with none.
fn serve(id: u64, jobs: Sender<Job>, receiver: mpsc::Receiver<Job>) {
  loop {
    match receiver.recv_timeout(IDLE_LIMIT) {
      Ok(job) => {
        let listed = std::cell::Cell::new(false);
        let mark_idle = || {
          if !listed.replace(true) {
            idle().push(Idle {
              id,
              jobs: jobs.clone(),
            });
          }
        };
        job(&mark_idle);
        mark_idle();
      }
      Err(RecvTimeoutError::Timeout) => {
        let mut list = idle();
        match list.iter().position(|w| w.id == id) {
          Some(index) => {
            list.swap_remove(index);
            return;
          }
          // Someone took this thread off the list: a job is on its way.
          None => continue,
        }
      }
      Err(RecvTimeoutError::Disconnected) => return,
    }
  }
}
