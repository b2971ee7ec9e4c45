//! The show's figures over time, for the app's Stats dock and remote clients' GetStats: frame
//! rate, render time, lagged and skipped frames, and this process's CPU and memory (from
//! /proc), sampled once a second.

use crate::engine::Stats;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Seconds of history the graph shows.
const HISTORY: usize = 60;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    pub fps: f64,
    pub render_ms: f64,
    /// Percent of one core.
    pub cpu_percent: f64,
    pub rss_mb: f64,
    pub lagged: u64,
    pub skipped: u64,
}

#[derive(Debug, Default)]
pub struct StatsHistory {
    pub samples: VecDeque<Sample>,
    last: Option<(Instant, u64, f64)>,
}

impl StatsHistory {
    /// Takes a sample if a second has passed since the last one.
    pub fn update(&mut self, stats: &Stats, now: Instant) {
        if !self.due(now) {
            return;
        }
        let cpu_seconds = process_cpu_seconds().unwrap_or(0.0);
        let Some((then, frames, cpu)) = self.last else {
            self.last = Some((now, stats.frames_rendered, cpu_seconds));
            return;
        };
        let elapsed = now.duration_since(then);
        let seconds = elapsed.as_secs_f64();
        self.samples.push_back(Sample {
            fps: stats.frames_rendered.saturating_sub(frames) as f64 / seconds,
            render_ms: stats.mean_render_time.as_secs_f64() * 1000.0,
            cpu_percent: (cpu_seconds - cpu) / seconds * 100.0,
            rss_mb: process_rss_kb().unwrap_or(0) as f64 / 1024.0,
            lagged: stats.frames_lagged,
            skipped: stats.frames_skipped,
        });
        if self.samples.len() > HISTORY {
            self.samples.pop_front();
        }
        self.last = Some((now, stats.frames_rendered, cpu_seconds));
    }

    /// Whether [`StatsHistory::update`] at `now` takes a sample: the first, or a second after
    /// the last. Callers that pay for the figures ask first.
    pub fn due(&self, now: Instant) -> bool {
        self.last
            .is_none_or(|(then, _, _)| now.duration_since(then) >= Duration::from_secs(1))
    }

    pub fn latest(&self) -> Option<Sample> {
        self.samples.back().copied()
    }

    /// Frames lagged or skipped during the history window, for the amber/red colouring.
    pub fn recent_drops(&self) -> (u64, u64) {
        match (self.samples.front(), self.samples.back()) {
            (Some(first), Some(last)) => (
                last.lagged.saturating_sub(first.lagged),
                last.skipped.saturating_sub(first.skipped),
            ),
            _ => (0, 0),
        }
    }
}

/// User plus system CPU time of this process, in seconds.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start after its ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // The kernel's USER_HZ is 100 on every Linux architecture Tally runs on.
    Some((utime + stime) / 100.0)
}

pub fn process_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_a_second_with_the_frame_rate_over_it() {
        let mut history = StatsHistory::default();
        let start = Instant::now();
        let mut stats = Stats::default();
        history.update(&stats, start);
        stats.frames_rendered = 15;
        history.update(&stats, start + Duration::from_millis(500));
        assert!(history.samples.is_empty(), "not a second yet");
        stats.frames_rendered = 30;
        stats.frames_lagged = 2;
        history.update(&stats, start + Duration::from_secs(1));
        let sample = history.latest().unwrap();
        assert!((sample.fps - 30.0).abs() < 1e-9);
        assert_eq!(history.recent_drops(), (0, 0), "one sample has no span");
        assert!(process_cpu_seconds().is_some() && process_rss_kb().unwrap() > 0);
    }
}
