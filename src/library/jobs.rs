//! Indexing jobs: a queue served by one worker thread, so at most one indexing run writes at a
//! time while searches keep answering. Requests that arrive while a job is queued join it.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use utoipa::ToSchema;

use crate::index::IndexSummary;
use crate::sync::lock;

/// Jobs kept for `GET /api/jobs/{id}` after they finish.
const KEEP_FINISHED: usize = 100;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for the running job to finish.
    Queued,
    /// Indexing.
    Running,
    /// Finished; `summary` tells what it did.
    Done,
    /// Stopped by an error; `error` tells why.
    Failed,
}

/// What started a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// `POST /api/index`.
    Api,
    /// A file change under a watched root.
    Watch,
    /// Server start with `--watch`.
    Startup,
}

/// One indexing job.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Job {
    /// Job id (increasing).
    pub id: u64,
    /// Where it is.
    pub state: JobState,
    /// What started it.
    pub trigger: Trigger,
    /// Files processed so far in this run.
    pub done: usize,
    /// Files this run has to process (known once the walk is over).
    pub total: usize,
    /// Seconds since the Unix epoch.
    pub queued_at: u64,
    /// When it started running.
    pub started_at: Option<u64>,
    /// When it finished.
    pub finished_at: Option<u64>,
    /// The run's summary (counts, skipped files with reasons), once done.
    pub summary: Option<IndexSummary>,
    /// Why it failed.
    pub error: Option<String>,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[derive(Default)]
struct Queue {
    next_id: u64,
    jobs: BTreeMap<u64, Job>,
    queued: Option<u64>,
    stopping: bool,
}

/// What the worker is woken for by [`Jobs::next_within`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// A job, now running.
    Job(u64),
    /// The queue stops.
    Stopping,
    /// Nothing happened for the time given.
    Idle,
}

/// The job queue.
#[derive(Default)]
pub struct Jobs {
    queue: Mutex<Queue>,
    wake: Condvar,
}

impl Jobs {
    /// Queues an indexing job, or returns the one already queued (it will see the same files).
    pub fn submit(&self, trigger: Trigger) -> Job {
        let mut q = lock(&self.queue);
        if let Some(job) = q.queued.and_then(|id| q.jobs.get(&id)) {
            return job.clone();
        }
        q.next_id += 1;
        let id = q.next_id;
        let job = Job {
            id,
            state: JobState::Queued,
            trigger,
            done: 0,
            total: 0,
            queued_at: now(),
            started_at: None,
            finished_at: None,
            summary: None,
            error: None,
        };
        q.jobs.insert(id, job.clone());
        q.queued = Some(id);
        while q.jobs.len() > KEEP_FINISHED {
            let oldest = *q.jobs.keys().next().expect("non-empty");
            q.jobs.remove(&oldest);
        }
        self.wake.notify_all();
        job
    }

    /// A job by id.
    pub fn get(&self, id: u64) -> Option<Job> {
        lock(&self.queue).jobs.get(&id).cloned()
    }

    /// The running job, if any.
    pub fn running(&self) -> Option<Job> {
        lock(&self.queue).jobs.values().find(|j| j.state == JobState::Running).cloned()
    }

    /// Whether a job is queued or running.
    pub fn busy(&self) -> bool {
        let q = lock(&self.queue);
        q.queued.is_some() || q.jobs.values().any(|j| j.state == JobState::Running)
    }

    /// Blocks until a job is queued (returns it, now running) or the queue stops (None).
    pub fn next(&self) -> Option<u64> {
        loop {
            match self.next_within(None) {
                Next::Job(id) => return Some(id),
                Next::Stopping => return None,
                Next::Idle => {}
            }
        }
    }

    /// Waits for a job (returns it, now running), the queue's stop, or the end of `idle` (when
    /// given) with neither.
    pub fn next_within(&self, idle: Option<std::time::Duration>) -> Next {
        let deadline = idle.map(|d| std::time::Instant::now() + d);
        let mut q = lock(&self.queue);
        loop {
            if q.stopping {
                return Next::Stopping;
            }
            if let Some(id) = q.queued.take() {
                if let Some(job) = q.jobs.get_mut(&id) {
                    job.state = JobState::Running;
                    job.started_at = Some(now());
                }
                return Next::Job(id);
            }
            q = match deadline {
                None => self.wake.wait(q).unwrap_or_else(std::sync::PoisonError::into_inner),
                Some(deadline) => {
                    let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) else { return Next::Idle };
                    self.wake.wait_timeout(q, left).unwrap_or_else(std::sync::PoisonError::into_inner).0
                }
            };
        }
    }

    /// Records progress of the running job.
    pub fn progress(&self, id: u64, done: usize, total: usize) {
        if let Some(job) = lock(&self.queue).jobs.get_mut(&id) {
            job.done = done;
            job.total = total;
        }
    }

    /// Records the end of a job.
    pub fn finish(&self, id: u64, outcome: Result<IndexSummary, String>) {
        if let Some(job) = lock(&self.queue).jobs.get_mut(&id) {
            job.finished_at = Some(now());
            match outcome {
                Ok(summary) => {
                    job.state = JobState::Done;
                    job.summary = Some(summary);
                }
                Err(e) => {
                    job.state = JobState::Failed;
                    job.error = Some(e);
                }
            }
        }
    }

    /// Makes [`Jobs::next`] return `None`: the worker exits after its current job.
    pub fn stop(&self) {
        lock(&self.queue).stopping = true;
        self.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submissions_while_one_is_queued_join_it() {
        let jobs = Jobs::default();
        let a = jobs.submit(Trigger::Api);
        let b = jobs.submit(Trigger::Watch);
        assert_eq!(a.id, b.id);
        assert_eq!(jobs.next(), Some(a.id));
        assert_eq!(jobs.get(a.id).unwrap().state, JobState::Running);
        let c = jobs.submit(Trigger::Api);
        assert_ne!(c.id, a.id, "a job submitted while one runs is a new job");
        jobs.finish(a.id, Ok(IndexSummary { indexed: 1, ..Default::default() }));
        assert_eq!(jobs.get(a.id).unwrap().state, JobState::Done);
        assert!(jobs.busy());
    }

    #[test]
    fn a_worker_waiting_with_a_limit_is_woken_by_a_job_the_stop_or_the_time() {
        let jobs = Jobs::default();
        let limit = Some(std::time::Duration::from_millis(30));
        assert_eq!(jobs.next_within(limit), Next::Idle, "nothing happened for 30 ms");
        let job = jobs.submit(Trigger::Api);
        assert_eq!(jobs.next_within(limit), Next::Job(job.id));
        jobs.stop();
        assert_eq!(jobs.next_within(None), Next::Stopping, "no limit: the stop ends the wait");
    }

    #[test]
    fn stopping_wakes_the_worker_with_none() {
        let jobs = Jobs::default();
        jobs.stop();
        assert_eq!(jobs.next(), None);
    }
}
