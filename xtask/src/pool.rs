//! The worker pool xtask's commands share: work items handed out one at a time to a few threads,
//! results back in item order whatever order they finish in.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Worker threads when the user names none: the machine's cores, at most 8.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(1, 8)
}

/// `work` over every item on `threads` threads (counted as in [`map_with`]); results in item order.
pub fn map<T: Sync, R: Send>(items: &[T], threads: usize, work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let Ok(results) = map_with(items, threads, || Ok::<(), Infallible>(()), |(), item| work(item));
    results
}

/// `work` over every item on `threads` threads, each thread with its own state from `start` (a model,
/// say); results in item order. A thread whose `start` fails takes no items, and the run is that
/// error. At least one thread runs, and never more than there are items.
pub fn map_with<T: Sync, S, E: Send, R: Send>(
    items: &[T],
    threads: usize,
    start: impl Fn() -> Result<S, E> + Sync,
    work: impl Fn(&mut S, &T) -> R + Sync,
) -> Result<Vec<R>, E> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let start_error: Mutex<Option<E>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1).min(items.len().max(1)) {
            scope.spawn(|| {
                let mut state = match start() {
                    Ok(state) => state,
                    Err(e) => {
                        *start_error.lock().unwrap() = Some(e);
                        return;
                    }
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let result = work(&mut state, item);
                    results.lock().unwrap()[i] = Some(result);
                }
            });
        }
    });
    if let Some(e) = start_error.into_inner().unwrap() {
        return Err(e);
    }
    // Without a start error every thread ran until the items ran out, so each has its result.
    Ok(results.into_inner().unwrap().into_iter().map(|r| r.expect("every item was mapped")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_item_order() {
        let items: Vec<u64> = (0..200).collect();
        for threads in [0, 1, 3, 8, 500] {
            assert_eq!(map(&items, threads, |&x| x * x), items.iter().map(|x| x * x).collect::<Vec<_>>());
        }
        assert!(map(&[] as &[u8], 4, |&x| x).is_empty());
    }

    #[test]
    fn a_thread_keeps_its_state_and_a_failed_start_is_the_result() {
        let items: Vec<usize> = (0..50).collect();
        // One thread sees every item in turn, counting them in its state.
        let counts = map_with(
            &items,
            1,
            || Ok::<usize, String>(0),
            |seen, _| {
                *seen += 1;
                *seen
            },
        );
        assert_eq!(counts.unwrap(), (1..=50).collect::<Vec<_>>());
        let failed = map_with(&items, 4, || Err::<(), _>("no model".to_string()), |(), &x| x);
        assert_eq!(failed.unwrap_err(), "no model");
    }
}
