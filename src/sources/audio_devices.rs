//! Sound devices: which inputs and outputs the machine has, and finding the one a scene names.
//!
//! PulseAudio (or PipeWire's PulseAudio server) is preferred because it lists the "monitor" of
//! every output, which is how desktop audio is captured; plain ALSA is the fallback. A device
//! is named in a scene by its id (the sound server's name for it, stable across restarts), by
//! its description, or as `default` / `desktop`.

use cpal::traits::{DeviceTrait, HostTrait};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Input,
    Output,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioDeviceInfo {
    /// What a scene file names it by.
    pub id: String,
    pub name: String,
    pub direction: Direction,
    pub channels: u16,
    pub sample_rate: u32,
    /// An output's monitor: captures what the machine plays.
    pub is_monitor: bool,
    pub is_default: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AudioDeviceError {
    #[error("no sound server or sound card answers ({0}); start PulseAudio or PipeWire, or check that this user may open /dev/snd")]
    NoHost(cpal::Error),
    #[error("no audio {direction} named `{wanted}`; {available}")]
    NotFound {
        direction: &'static str,
        wanted: String,
        available: String,
    },
    #[error("audio device `{device}`: {cause}")]
    Device {
        device: String,
        cause: StreamProblem,
    },
}

/// Why a sound stream on a device did not open or play.
#[derive(Debug, thiserror::Error)]
pub enum StreamProblem {
    #[error("{}", explain(.0))]
    Cpal(#[from] cpal::Error),
    #[error("the sound server: {0}")]
    Pulse(#[from] pulseaudio::ClientError),
    #[error("the device name contains a NUL byte")]
    NulInName,
}

/// A cpal error with what the operator can do about it.
fn explain(error: &cpal::Error) -> String {
    use cpal::ErrorKind;
    let hint = match error.kind() {
        ErrorKind::DeviceBusy => "it is busy: close the other program using it, or capture it through the sound server (PulseAudio/PipeWire) which shares it",
        ErrorKind::DeviceNotAvailable => "it is not available: is it plugged in? `tally devices` lists what is",
        ErrorKind::PermissionDenied => "access was denied: add this user to the `audio` group or allow microphone access",
        ErrorKind::UnsupportedConfig => "it offers no format Tally can use (mono or stereo, 16-bit or float)",
        ErrorKind::HostUnavailable => "the sound server is not running: start PulseAudio or PipeWire",
        _ => "",
    };
    if hint.is_empty() {
        error.to_string()
    } else {
        format!("{error} ({hint})")
    }
}

/// The sound server, if one answers, else the platform's default host.
pub fn host() -> cpal::Host {
    #[cfg(target_os = "linux")]
    if cpal::available_hosts().contains(&cpal::HostId::PulseAudio) {
        if let Ok(host) = cpal::host_from_id(cpal::HostId::PulseAudio) {
            return host;
        }
    }
    cpal::default_host()
}

pub fn is_pulse(host: &cpal::Host) -> bool {
    #[cfg(target_os = "linux")]
    return host.id() == cpal::HostId::PulseAudio;
    #[cfg(not(target_os = "linux"))]
    return false;
}

/// The sound server's own name for a device (a PulseAudio source or sink name).
pub fn device_id(device: &cpal::Device) -> String {
    device
        .id()
        .map(|id| id.id().to_string())
        .unwrap_or_else(|_| device_name(device))
}

fn device_name(device: &cpal::Device) -> String {
    device
        .description()
        .map(|description| description.name().to_string())
        .unwrap_or_else(|_| "unnamed device".into())
}

/// Every input and output the host offers, defaults first.
pub fn list() -> Result<Vec<AudioDeviceInfo>, AudioDeviceError> {
    let host = host();
    let pulse = is_pulse(&host);
    let default_input = host.default_input_device().map(|d| device_id(&d));
    let default_output = host.default_output_device().map(|d| device_id(&d));
    let mut devices = Vec::new();
    let inputs = host.input_devices().map_err(AudioDeviceError::NoHost)?;
    for device in inputs {
        // ALSA lists plugins that cannot capture anything; leave out what cannot open.
        let Ok(config) = device.default_input_config() else {
            continue;
        };
        let id = device_id(&device);
        devices.push(AudioDeviceInfo {
            is_monitor: pulse && id.ends_with(".monitor"),
            is_default: default_input.as_deref() == Some(id.as_str()),
            id,
            name: device_name(&device),
            direction: Direction::Input,
            channels: config.channels(),
            sample_rate: config.sample_rate(),
        });
    }
    let outputs = host.output_devices().map_err(AudioDeviceError::NoHost)?;
    for device in outputs {
        let Ok(config) = device.default_output_config() else {
            continue;
        };
        let id = device_id(&device);
        devices.push(AudioDeviceInfo {
            is_monitor: false,
            is_default: default_output.as_deref() == Some(id.as_str()),
            id,
            name: device_name(&device),
            direction: Direction::Output,
            channels: config.channels(),
            sample_rate: config.sample_rate(),
        });
    }
    devices.sort_by_key(|device| (device.direction == Direction::Output, !device.is_default));
    Ok(devices)
}

/// The input a scene names: an id, a description, `default`, or `desktop` (the monitor of the
/// default output).
pub fn find_input(host: &cpal::Host, wanted: &str) -> Result<cpal::Device, AudioDeviceError> {
    let inputs: Vec<cpal::Device> = host
        .input_devices()
        .map_err(AudioDeviceError::NoHost)?
        .collect();
    let found = match wanted {
        "default" => host.default_input_device(),
        "desktop" => {
            let monitor = host
                .default_output_device()
                .map(|sink| format!("{}.monitor", device_id(&sink)));
            inputs
                .iter()
                .find(|device| Some(device_id(device)) == monitor)
                .cloned()
        }
        _ => pick(&inputs, wanted),
    };
    found.ok_or_else(|| AudioDeviceError::NotFound {
        direction: "input",
        wanted: wanted.to_string(),
        available: available(&inputs, is_pulse(host)),
    })
}

/// The output a scene or setting names: an id, a description or `default`.
pub fn find_output(host: &cpal::Host, wanted: &str) -> Result<cpal::Device, AudioDeviceError> {
    let outputs: Vec<cpal::Device> = host
        .output_devices()
        .map_err(AudioDeviceError::NoHost)?
        .collect();
    let found = match wanted {
        "default" => host.default_output_device(),
        _ => pick(&outputs, wanted),
    };
    found.ok_or_else(|| AudioDeviceError::NotFound {
        direction: "output",
        wanted: wanted.to_string(),
        available: available(&outputs, false),
    })
}

/// By id first (exact), then by description (exact, then case-insensitive).
fn pick(devices: &[cpal::Device], wanted: &str) -> Option<cpal::Device> {
    devices
        .iter()
        .find(|device| device_id(device) == wanted)
        .or_else(|| devices.iter().find(|device| device_name(device) == wanted))
        .or_else(|| {
            devices
                .iter()
                .find(|device| device_name(device).eq_ignore_ascii_case(wanted))
        })
        .cloned()
}

fn available(devices: &[cpal::Device], pulse: bool) -> String {
    if devices.is_empty() {
        return "this machine has none (is a sound server running?)".into();
    }
    let names: Vec<String> = devices.iter().map(device_id).collect();
    let mut text = format!("available: {}", names.join(", "));
    if pulse {
        text.push_str(" (`default`, and `desktop` for what the computer plays, work too)");
    }
    text
}
