//! The commit wait's timer. tokio's fires on whole milliseconds (its wheel ticks each
//! millisecond and its runtime parks for whole ones), so a wait of 250 µs lasted 1 to 2 ms and
//! any `CHAT_COMMIT_WAIT_US` under a millisecond cost a millisecond or two of latency. On
//! Linux a timerfd in the runtime's reactor wakes the writer when the wait is up, to the
//! microsecond; elsewhere, or should the timerfd not open, tokio's timer is used.

use std::fs::File;
use std::io::Read;
use std::time::Duration;

use tokio::io::unix::AsyncFd;

/// Sleeps for a duration, to the microsecond where it can. Its timerfd is opened by the first
/// wait (on the runtime, whose reactor it joins), so a writer with no commit wait holds none.
#[derive(Default)]
pub(super) enum FineSleep {
    #[default]
    Unopened,
    TimerFd(AsyncFd<File>),
    Coarse,
}

impl FineSleep {
    fn open() -> Self {
        match timer_fd() {
            Ok(fd) => Self::TimerFd(fd),
            Err(error) => {
                tracing::warn!(%error, "no timerfd: a commit wait is rounded up to milliseconds");
                Self::Coarse
            }
        }
    }

    pub(super) async fn sleep(&mut self, wait: Duration) {
        if let Self::Unopened = self {
            *self = Self::open();
        }
        if let Self::TimerFd(fd) = self {
            match on_timer_fd(fd, wait).await {
                Ok(()) => return,
                Err(error) => tracing::warn!(%error, "the commit wait's timer failed"),
            }
        }
        tokio::time::sleep(wait).await;
    }
}

/// Arms the timer and waits until it has fired.
async fn on_timer_fd(fd: &AsyncFd<File>, wait: Duration) -> std::io::Result<()> {
    arm(fd, wait)?;
    loop {
        let mut ready = fd.readable().await?;
        // What it reads is how often the timer fired; that it fired is all that counts. A
        // read that would block (readiness left over from a wait cut short, which arming
        // again cleared) waits again.
        if let Ok(read) = ready.try_io(|fd| fd.get_ref().read(&mut [0; 8])) {
            return read.map(drop);
        }
    }
}

#[cfg(target_os = "linux")]
fn timer_fd() -> std::io::Result<AsyncFd<File>> {
    use std::os::fd::FromRawFd;

    // SAFETY: a system call with no pointers; what it returns is checked before use.
    let raw = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `raw` is a descriptor just opened, owned by nothing else.
    let file = unsafe { File::from_raw_fd(raw) };
    // SAFETY: the File owns the descriptor, keeps it open and names it the same for as long
    // as the AsyncFd that owns the File lives.
    Ok(unsafe { AsyncFd::register_with_interest(file, tokio::io::Interest::READABLE) }?)
}

#[cfg(not(target_os = "linux"))]
fn timer_fd() -> std::io::Result<AsyncFd<File>> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// Sets the timer to fire once, `wait` from now (which also clears any count of firings not
/// read). A zero `wait` would disarm it, so it fires after a nanosecond instead.
#[cfg(target_os = "linux")]
fn arm(fd: &AsyncFd<File>, wait: Duration) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;

    let wait = wait.max(Duration::from_nanos(1));
    let when = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: libc::time_t::try_from(wait.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: libc::c_long::from(wait.subsec_nanos()),
        },
    };
    // SAFETY: `when` outlives the call; the old value is not asked for (null).
    let set = unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &when, std::ptr::null_mut()) };
    match set {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

#[cfg(not(target_os = "linux"))]
fn arm(_: &AsyncFd<File>, _: Duration) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// tokio's timer ends each of these on a millisecond's tick (20 in a row: at least 19
    /// ms); this one after the 200 µs asked for and what it takes the thread to wake.
    #[tokio::test]
    async fn a_wait_under_a_millisecond_is_not_rounded_up_to_one() {
        let mut timer = FineSleep::default();
        let wait = Duration::from_micros(200);
        timer.sleep(wait).await;
        assert!(matches!(timer, FineSleep::TimerFd(_)));
        let started = Instant::now();
        for _ in 0..20 {
            let one = Instant::now();
            timer.sleep(wait).await;
            assert!(one.elapsed() >= wait, "woke early: {:?}", one.elapsed());
        }
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(19),
            "20 waits of 200 µs took {took:?}"
        );
    }

    #[tokio::test]
    async fn a_wait_after_one_cut_short_is_whole() {
        use futures_util::FutureExt;

        let mut timer = FineSleep::default();
        // Armed, then dropped before it fired...
        assert!(
            timer
                .sleep(Duration::from_micros(100))
                .now_or_never()
                .is_none()
        );
        // ...and left unread once the reactor saw it fire (the guard dropped uncleared): the
        // readiness it left must not end the next wait.
        let FineSleep::TimerFd(fd) = &timer else {
            panic!("no timerfd");
        };
        drop(fd.readable().await.unwrap());
        let wait = Duration::from_millis(5);
        let started = Instant::now();
        timer.sleep(wait).await;
        assert!(
            started.elapsed() >= wait,
            "ended after {:?}",
            started.elapsed()
        );
    }
}
