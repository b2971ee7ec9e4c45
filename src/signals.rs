//! The signals that ask Tally to stop, for every front-end: Ctrl-C (SIGINT), `kill`, `docker
//! stop` and `systemctl stop` (SIGTERM), a closed terminal or SSH session (SIGHUP) and Ctrl-\
//! (SIGQUIT). Each of them finishes the recording and the streams as Ctrl-C does, instead of
//! ending the process where it stands with a file that has no end.

use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};

/// Calls `on_signal` with the signal's name (such as "SIGTERM") each time one of the stop
/// signals arrives, on a thread of its own, from now until the process ends. Their default
/// action (ending the process at once) is replaced for good.
pub fn on_stop_signal(on_signal: impl Fn(&'static str) + Send + 'static) -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT])?;
    std::thread::Builder::new()
        .name("stop-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                on_signal(signal_hook::low_level::signal_name(signal).unwrap_or("a signal"));
            }
        })?;
    Ok(())
}
