//! The audio mixer: sums the sound of the sources that are on air into one 48 kHz stereo
//! stream, block by block, on the same clock as the video. Each source has a channel strip:
//! sync offset, filters, fader, mute, balance, monitoring choice and a meter; the master bus
//! has a meter too. A second bus collects what the operator monitors on headphones.

pub mod filters;
pub mod meter;
pub mod monitor;

pub use filters::{db_to_gain, gain_to_db, FilterState};
pub use meter::{Levels, Meter};

use crate::base::{Pacing, AUDIO_CHANNELS, SAMPLE_RATE};
use crate::scene::{AudioSettings, Collection, Monitoring, SourceKind};
use crate::sources::RunningSource;
use std::collections::{HashMap, HashSet};

/// Meter readings of every channel strip and the master bus.
#[derive(Debug, Clone, PartialEq)]
pub struct MixerLevels {
    pub master: Levels,
    /// Source id and reading, in the collection's order.
    pub sources: Vec<(String, Levels)>,
}

struct Channel {
    source: String,
    /// Mixed whatever scene is on air (global audio devices).
    always_on: bool,
    settings: AudioSettings,
    filters: Vec<FilterState>,
    meter: Meter,
}

impl Channel {
    fn new(source: &str, settings: &AudioSettings, always_on: bool) -> Self {
        Self {
            source: source.to_string(),
            always_on,
            settings: settings.clone(),
            filters: settings.filters.iter().map(FilterState::new).collect(),
            meter: Meter::new(),
        }
    }

    /// Samples to shift the source by: positive plays it later.
    fn offset_samples(&self) -> i64 {
        i64::from(self.settings.sync_offset_ms) * i64::from(SAMPLE_RATE) / 1000
    }

    /// Fader and balance as one gain per channel: -1 is left only, +1 right only.
    fn channel_gains(&self) -> [f32; 2] {
        if self.settings.muted {
            return [0.0, 0.0];
        }
        let fader = db_to_gain(self.settings.volume_db);
        let balance = self.settings.balance.clamp(-1.0, 1.0);
        [
            fader * (1.0 - balance).min(1.0),
            fader * (1.0 + balance).min(1.0),
        ]
    }
}

pub struct Mixer {
    channels: Vec<Channel>,
    master: Meter,
    block: Vec<f32>,
    monitor: Vec<f32>,
    scratch: Vec<f32>,
}

impl Mixer {
    /// A channel strip for every source of the collection that has sound.
    pub fn new(collection: &Collection) -> Self {
        let channels = collection
            .sources
            .iter()
            .filter_map(|source| {
                let always_on =
                    matches!(&source.kind, SourceKind::AudioInput(input) if input.always_on);
                let settings = source.kind.audio()?;
                Some(Channel::new(&source.id, settings, always_on))
            })
            .collect();
        Self {
            channels,
            master: Meter::new(),
            block: Vec::new(),
            monitor: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Takes every strip's settings from `collection` (strips come and go with its sources).
    /// A strip that stays keeps its meter, and its filters' state (a gate's or a compressor's
    /// envelope) while its chain is unchanged, so moving a fader neither resets the meters'
    /// loudness windows nor makes a filter jump.
    pub fn update(&mut self, collection: &Collection) {
        let mut before: HashMap<String, Channel> = self
            .channels
            .drain(..)
            .map(|channel| (channel.source.clone(), channel))
            .collect();
        self.channels = Mixer::new(collection).channels;
        for channel in &mut self.channels {
            if let Some(old) = before.remove(&channel.source) {
                channel.meter = old.meter;
                if old.settings.filters == channel.settings.filters {
                    channel.filters = old.filters;
                }
            }
        }
    }

    /// Whether any strip sends sound to the monitoring device.
    pub fn monitors_anything(&self) -> bool {
        self.channels
            .iter()
            .any(|channel| channel.settings.monitoring != Monitoring::Off)
    }

    /// The monitoring bus for the samples of the last [`Mixer::mix`], interleaved stereo.
    pub fn monitor_block(&self) -> &[f32] {
        &self.monitor
    }

    /// Mixes `samples` samples from `first_sample` of the sources in `on_air`. The result is
    /// interleaved stereo, clipped to [-1, 1].
    pub fn mix(
        &mut self,
        sources: &mut HashMap<String, Box<dyn RunningSource>>,
        on_air: &HashSet<&str>,
        first_sample: u64,
        samples: usize,
        pacing: Pacing,
    ) -> &[f32] {
        self.block.clear();
        self.block.resize(samples * AUDIO_CHANNELS, 0.0);
        self.monitor.clear();
        self.monitor.resize(samples * AUDIO_CHANNELS, 0.0);
        for channel in &mut self.channels {
            self.scratch.clear();
            self.scratch.resize(samples * AUDIO_CHANNELS, 0.0);
            let live = channel.always_on || on_air.contains(channel.source.as_str());
            if let (true, Some(source)) = (live, sources.get_mut(&channel.source)) {
                // A delayed source reads from earlier in its timeline; before its start: silence.
                let start = first_sample as i64 - channel.offset_samples();
                let skip = (-start).clamp(0, samples as i64) as usize;
                let from = start.max(0) as u64;
                source.mix_audio(from, &mut self.scratch[skip * AUDIO_CHANNELS..], pacing);
                for filter in &mut channel.filters {
                    filter.process(&mut self.scratch);
                }
                let gains = channel.channel_gains();
                for frame in self.scratch.chunks_exact_mut(AUDIO_CHANNELS) {
                    frame[0] *= gains[0];
                    frame[1] *= gains[1];
                }
            }
            channel.meter.add(&self.scratch);
            let monitoring = channel.settings.monitoring;
            if monitoring != Monitoring::MonitorOnly {
                for (mixed, sample) in self.block.iter_mut().zip(&self.scratch) {
                    *mixed += sample;
                }
            }
            if monitoring != Monitoring::Off {
                for (monitored, sample) in self.monitor.iter_mut().zip(&self.scratch) {
                    *monitored += sample;
                }
            }
        }
        for sample in self.block.iter_mut().chain(self.monitor.iter_mut()) {
            *sample = sample.clamp(-1.0, 1.0);
        }
        self.master.add(&self.block);
        &self.block
    }

    /// Meter readings since the last call.
    pub fn take_levels(&mut self) -> MixerLevels {
        MixerLevels {
            master: self.master.take(),
            sources: self
                .channels
                .iter_mut()
                .map(|channel| (channel.source.clone(), channel.meter.take()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::{FrameRef, Tick};

    /// A source whose sound is a known function of the sample index (a ramp per channel).
    struct Ramp;

    impl RunningSource for Ramp {
        fn size(&self) -> [u32; 2] {
            [1, 1]
        }
        fn video(&mut self, _tick: Tick) -> Option<FrameRef> {
            None
        }
        fn mix_audio(&mut self, first_sample: u64, out: &mut [f32], _pacing: Pacing) {
            for (i, frame) in out.chunks_exact_mut(AUDIO_CHANNELS).enumerate() {
                let value = ((first_sample + i as u64) % 1000) as f32 / 1000.0 * 0.5;
                frame[0] += value;
                frame[1] += value;
            }
        }
    }

    fn collection_with(settings: AudioSettings) -> Collection {
        Collection::with_one_media_source("ramp", "unused", settings)
    }

    fn mixer_with(settings: AudioSettings) -> (Mixer, HashMap<String, Box<dyn RunningSource>>) {
        let mut sources: HashMap<String, Box<dyn RunningSource>> = HashMap::new();
        sources.insert("ramp".into(), Box::new(Ramp));
        (Mixer::new(&collection_with(settings)), sources)
    }

    fn on_air() -> HashSet<&'static str> {
        ["ramp"].into_iter().collect()
    }

    #[test]
    fn fader_mute_and_balance_shape_the_channel() {
        let (mut mixer, mut sources) = mixer_with(AudioSettings {
            volume_db: -6.0206,
            balance: 0.5,
            ..AudioSettings::default()
        });
        let block = mixer
            .mix(&mut sources, &on_air(), 400, 1, Pacing::Deterministic)
            .to_vec();
        // Ramp value at sample 400 is 0.2; fader halves it; balance +0.5 halves the left.
        assert!(
            (block[0] - 0.05).abs() < 1e-4 && (block[1] - 0.1).abs() < 1e-4,
            "{block:?}"
        );

        let (mut mixer, mut sources) = mixer_with(AudioSettings {
            muted: true,
            ..AudioSettings::default()
        });
        assert!(mixer
            .mix(&mut sources, &on_air(), 400, 10, Pacing::Deterministic)
            .iter()
            .all(|s| *s == 0.0));
    }

    #[test]
    fn sync_offset_shifts_the_sound_against_the_clock() {
        // +100 ms: what the source made at sample 0 is heard at sample 4800.
        let (mut mixer, mut sources) = mixer_with(AudioSettings {
            sync_offset_ms: 100,
            ..AudioSettings::default()
        });
        let early = mixer
            .mix(&mut sources, &on_air(), 0, 4800, Pacing::Deterministic)
            .to_vec();
        assert!(
            early.iter().all(|s| *s == 0.0),
            "nothing before the source starts"
        );
        let later = mixer
            .mix(
                &mut sources,
                &on_air(),
                4800 + 400,
                1,
                Pacing::Deterministic,
            )
            .to_vec();
        assert!(
            (later[0] - 0.2).abs() < 1e-4,
            "sample 5200 plays the source's sample 400"
        );

        // -100 ms: sample 0 plays the source's sample 4800.
        let (mut mixer, mut sources) = mixer_with(AudioSettings {
            sync_offset_ms: -100,
            ..AudioSettings::default()
        });
        let ahead = mixer
            .mix(&mut sources, &on_air(), 0, 1, Pacing::Deterministic)
            .to_vec();
        assert!((ahead[0] - 0.4).abs() < 1e-4, "{ahead:?}");
    }

    #[test]
    fn monitoring_routes_to_the_monitor_bus_and_optionally_the_program() {
        for (monitoring, in_program, in_monitor) in [
            (Monitoring::Off, true, false),
            (Monitoring::MonitorOnly, false, true),
            (Monitoring::MonitorAndOutput, true, true),
        ] {
            let (mut mixer, mut sources) = mixer_with(AudioSettings {
                monitoring,
                ..AudioSettings::default()
            });
            assert_eq!(mixer.monitors_anything(), in_monitor);
            let program = mixer
                .mix(&mut sources, &on_air(), 400, 1, Pacing::Deterministic)
                .to_vec();
            let monitor = mixer.monitor_block().to_vec();
            assert_eq!(program[0] != 0.0, in_program, "{monitoring:?} program");
            assert_eq!(monitor[0] != 0.0, in_monitor, "{monitoring:?} monitor");
            // Monitor-only sound is still metered: the operator sees what they hear.
            let levels = mixer.take_levels();
            assert!(levels.sources[0].1.sample_peak_dbfs.is_finite());
        }
    }

    #[test]
    fn an_update_takes_the_new_settings_and_keeps_the_meter() {
        let (mut mixer, mut sources) = mixer_with(AudioSettings::default());
        mixer.mix(&mut sources, &on_air(), 400, 1, Pacing::Deterministic);
        mixer.update(&collection_with(AudioSettings {
            volume_db: -6.0206,
            ..AudioSettings::default()
        }));
        // The sample mixed before the update is still in the strip's reading: 0.2 at sample 400.
        let levels = mixer.take_levels();
        assert!(
            (levels.sources[0].1.sample_peak_dbfs - gain_to_db(0.2)).abs() < 0.01,
            "{levels:?}"
        );
        let block = mixer
            .mix(&mut sources, &on_air(), 400, 1, Pacing::Deterministic)
            .to_vec();
        assert!((block[0] - 0.1).abs() < 1e-4, "{block:?}");
    }

    #[test]
    fn sources_off_air_are_silent_but_still_metered() {
        let (mut mixer, mut sources) = mixer_with(AudioSettings::default());
        let block = mixer
            .mix(&mut sources, &HashSet::new(), 0, 480, Pacing::Deterministic)
            .to_vec();
        assert!(block.iter().all(|s| *s == 0.0));
        let levels = mixer.take_levels();
        assert_eq!(levels.sources.len(), 1);
        assert!(levels.sources[0].1.sample_peak_dbfs.is_infinite());
    }
}
