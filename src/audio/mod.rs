//! The audio mixer: sums the sound of the sources that are on air into one 48 kHz stereo
//! stream, block by block, on the same clock as the video, and measures its peak level.

use crate::sources::{Pacing, RunningSource, AUDIO_CHANNELS};

#[derive(Default)]
pub struct Mixer {
    block: Vec<f32>,
}

impl Mixer {
    /// Mixes `samples` samples starting at `first_sample` from `sources`. The result is
    /// interleaved stereo, clipped to [-1, 1].
    pub fn mix<'a>(
        &mut self,
        sources: impl IntoIterator<Item = &'a mut Box<dyn RunningSource>>,
        first_sample: u64,
        samples: usize,
        pacing: Pacing,
    ) -> &[f32] {
        self.block.clear();
        self.block.resize(samples * AUDIO_CHANNELS, 0.0);
        for source in sources {
            source.mix_audio(first_sample, &mut self.block, pacing);
        }
        for sample in &mut self.block {
            *sample = sample.clamp(-1.0, 1.0);
        }
        &self.block
    }
}

/// The highest absolute sample value, in dBFS (-inf for silence).
pub fn peak_dbfs(samples: &[f32]) -> f32 {
    let peak = samples.iter().fold(0.0f32, |peak, s| peak.max(s.abs()));
    20.0 * peak.log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_scale_peak_is_zero_dbfs() {
        assert!((peak_dbfs(&[0.0, -1.0, 0.5]) - 0.0).abs() < 1e-6);
        assert!((peak_dbfs(&[0.5]) + 6.0206).abs() < 1e-3);
        assert!(peak_dbfs(&[0.0; 4]).is_infinite());
    }
}
