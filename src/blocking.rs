//! A bounded pool for CPU-heavy work (bcrypt, image decoding): at most one job per core at a
//! time, a bounded queue behind it (429 past that), and never on an async worker.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::web;
use tokio::sync::Semaphore;

use crate::error::{ApiError, ApiResult};

pub struct BoundedPool {
    name: &'static str,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
}

impl BoundedPool {
    pub fn new(name: &'static str, threads: usize, max_waiting: usize) -> Self {
        Self {
            name,
            permits: Arc::new(Semaphore::new(threads.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiting,
        }
    }

    /// Sized to the machine: one job per core, 64 waiting per core.
    pub fn per_core(name: &'static str) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new(name, cores, cores * 64)
    }

    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> ApiResult<T> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Err(ApiError::TooManyRequests {
                        detail: format!("too much {} work is queued; retry shortly", self.name),
                        retry_after_secs: 1,
                    });
                }
                let acquired = self.permits.clone().acquire_owned().await;
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                acquired.map_err(|_| ApiError::Unavailable("shutting down".to_owned()))?
            }
        };
        let result = web::block(move || {
            let out = job();
            drop(permit);
            out
        })
        .await?;
        Ok(result)
    }
}
