//! Shows the window's frames on an X server through shared memory (MIT-SHM), in place of the
//! Vulkan swapchain, when the GPU is a software rasteriser.
//!
//! Why: lavapipe's swapchain on an X server without DRI3 (Xvfb, a remote or plain X server)
//! sends every frame, 4 MB at 1280x800, through the X socket with `PutImage`; the kernel
//! copies it in and out of the socket in both processes, which cost about 12 ms of CPU a
//! redraw, more than drawing it (BENCHMARKS.md, tenth measurement). Here the frame is drawn
//! into a texture, read back, written into a memfd the server has mapped, and shown with one
//! `ShmPutImage`. No memory is mapped on this side (the frame goes in with `pwrite`), so no
//! unsafe code is needed. Where the server cannot take it (no MIT-SHM 1.2, not local, a pixel
//! layout other than 32-bit BGRX), the window keeps the swapchain.

use super::damage::{Damage, PixelRect};
use eframe::wgpu;
use egui_winit::winit::raw_window_handle::{HasWindowHandle, RawWindowHandle};
use egui_winit::winit::window::Window;
use std::fs::File;
use std::os::unix::fs::FileExt;
use x11rb::connection::Connection;
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, ConnectionExt as _, ImageFormat, ImageOrder};
use x11rb::rust_connection::RustConnection;

/// The only texture format whose bytes are the server's pixels (checked in `connect`).
pub const FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Bgra8Unorm;

/// The texture a frame is drawn into and the buffer it is read back through.
struct Frame {
    texture: wgpu::Texture,
    view: wgpu::TextureView,
    readback: wgpu::Buffer,
    size: [u32; 2],
    /// Bytes per row in the buffer: wgpu wants copies in rows of 256-byte multiples.
    stride: u32,
}

/// A memfd the server has attached as a shared-memory segment.
struct Segment {
    id: shm::Seg,
    file: File,
    len: u64,
}

pub struct ShmPresenter {
    connection: RustConnection,
    window: xproto::Window,
    gc: xproto::Gcontext,
    depth: u8,
    frame: Option<Frame>,
    segment: Option<Segment>,
    /// A `ShmPutImage` was sent that the server may still be reading.
    put_in_flight: bool,
    /// Rows of the read-back buffer copied from the frame since the segment was last written.
    rows_to_write: Vec<std::ops::Range<u32>>,
}

/// Why the window's frames cannot (or can no longer) go to the X server through shared memory;
/// the window then presents through the swapchain.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    #[error("no window handle: {0}")]
    Handle(#[from] egui_winit::winit::raw_window_handle::HandleError),
    #[error("the window is not on an X server")]
    NotX11,
    #[error("{0}")]
    Connect(#[from] x11rb::errors::ConnectError),
    #[error("{0}")]
    Connection(#[from] x11rb::errors::ConnectionError),
    #[error("{0}")]
    Reply(#[from] x11rb::errors::ReplyError),
    #[error("{0}")]
    Id(#[from] x11rb::errors::ReplyOrIdError),
    #[error("no MIT-SHM: {0}")]
    NoShm(x11rb::errors::ReplyError),
    #[error("MIT-SHM {major}.{minor} cannot take a memfd (1.2 can)")]
    OldShm { major: u16, minor: u16 },
    #[error("the window's pixels are not 32-bit BGRX (depth {depth}, {bits_per_pixel:?} bits, masks {masks:?})")]
    NotBgrx {
        depth: u8,
        bits_per_pixel: Option<u8>,
        masks: Option<(u32, u32, u32)>,
    },
    #[error("the frame could not be read back: {0}")]
    Poll(#[from] wgpu::PollError),
    #[error("the frame could not be read back: {0}")]
    Map(#[from] wgpu::MapRangeError),
    #[error("the frame could not be written for the X server: {0}")]
    Write(std::io::Error),
    #[error("the X server did not take the frame: {0}")]
    NotTaken(x11rb::errors::ReplyError),
    #[error("no memfd for the window's frames: {0}")]
    Memfd(#[from] rustix::io::Errno),
    #[error("no memory for the window's frames: {0}")]
    Memory(std::io::Error),
    #[error("the X server could not map the window's frames: {0:?}")]
    Attach(x11rb::errors::ReplyError),
}

impl ShmPresenter {
    /// Connects to the X server `window` is on and checks that it can take frames this way.
    pub fn connect(window: &Window) -> Result<Self, ShmError> {
        let handle = window.window_handle()?;
        let window_id = match handle.as_raw() {
            RawWindowHandle::Xlib(handle) => handle.window as xproto::Window,
            RawWindowHandle::Xcb(handle) => handle.window.get(),
            _ => return Err(ShmError::NotX11),
        };
        let (connection, _) = x11rb::connect(None)?;
        let version = connection
            .shm_query_version()
            .map_err(|error| ShmError::NoShm(error.into()))?
            .reply()
            .map_err(ShmError::NoShm)?;
        if (version.major_version, version.minor_version) < (1, 2) {
            return Err(ShmError::OldShm {
                major: version.major_version,
                minor: version.minor_version,
            });
        }
        let geometry = connection.get_geometry(window_id)?.reply()?;
        let setup = connection.setup();
        let bits_per_pixel = setup
            .pixmap_formats
            .iter()
            .find(|format| format.depth == geometry.depth)
            .map(|format| format.bits_per_pixel);
        let visual = connection.get_window_attributes(window_id)?.reply()?.visual;
        let masks = setup
            .roots
            .iter()
            .flat_map(|screen| &screen.allowed_depths)
            .flat_map(|depth| &depth.visuals)
            .find(|candidate| candidate.visual_id == visual)
            .map(|visual| (visual.red_mask, visual.green_mask, visual.blue_mask));
        // Bgra8Unorm's bytes, read as little-endian 32-bit pixels, are 0xAARRGGBB.
        if geometry.depth != 24
            || bits_per_pixel != Some(32)
            || setup.image_byte_order != ImageOrder::LSB_FIRST
            || masks != Some((0xff0000, 0xff00, 0xff))
        {
            return Err(ShmError::NotBgrx {
                depth: geometry.depth,
                bits_per_pixel,
                masks,
            });
        }
        let gc = connection.generate_id()?;
        connection
            .create_gc(
                gc,
                window_id,
                &xproto::CreateGCAux::new().graphics_exposures(0),
            )?
            .check()?;
        let mut presenter = Self {
            connection,
            window: window_id,
            gc,
            depth: geometry.depth,
            frame: None,
            segment: None,
            put_in_flight: false,
            rows_to_write: Vec::new(),
        };
        // A server on another machine cannot map the memfd: find out now, not at the first frame.
        presenter.segment_for(4096)?;
        Ok(presenter)
    }

    /// The texture to draw the next frame into, `size` pixels, and whether it is new (made
    /// anew when the size changes), so that none of the last frame is in it. It keeps what
    /// was drawn into it otherwise.
    pub fn target(&mut self, device: &wgpu::Device, size: [u32; 2]) -> (wgpu::TextureView, bool) {
        let size = size.map(|side| side.max(1));
        let new = self.frame.as_ref().is_none_or(|frame| frame.size != size);
        if new {
            self.rows_to_write.clear();
            let texture = device.create_texture(&wgpu::TextureDescriptor {
                label: Some("window frame"),
                size: wgpu::Extent3d {
                    width: size[0],
                    height: size[1],
                    depth_or_array_layers: 1,
                },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: FORMAT,
                usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
                view_formats: &[],
            });
            let stride = (size[0] * 4).next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT);
            let readback = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("window frame"),
                size: u64::from(stride) * u64::from(size[1]),
                usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
                mapped_at_creation: false,
            });
            self.frame = Some(Frame {
                view: texture.create_view(&wgpu::TextureViewDescriptor::default()),
                texture,
                readback,
                size,
                stride,
            });
        }
        (
            self.frame.as_ref().map(|frame| frame.view.clone()).unwrap(),
            new,
        )
    }

    /// Records the copy of what was drawn into [`target`](Self::target) to the read-back
    /// buffer: `damage`, in place there, as the rest of the buffer already holds the rest.
    pub fn read_back(&mut self, encoder: &mut wgpu::CommandEncoder, damage: &Damage) {
        let Some(frame) = &self.frame else {
            return;
        };
        let whole = [PixelRect {
            x: 0,
            y: 0,
            width: frame.size[0],
            height: frame.size[1],
        }];
        let rects = match damage {
            Damage::Everything => &whole[..],
            Damage::Rects(rects) => &rects[..],
        };
        for rect in rects {
            encoder.copy_texture_to_buffer(
                wgpu::TexelCopyTextureInfo {
                    texture: &frame.texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d {
                        x: rect.x,
                        y: rect.y,
                        z: 0,
                    },
                    aspect: wgpu::TextureAspect::All,
                },
                wgpu::TexelCopyBufferInfo {
                    buffer: &frame.readback,
                    layout: wgpu::TexelCopyBufferLayout {
                        offset: u64::from(rect.y) * u64::from(frame.stride) + u64::from(rect.x) * 4,
                        bytes_per_row: Some(frame.stride),
                        rows_per_image: None,
                    },
                },
                wgpu::Extent3d {
                    width: rect.width,
                    height: rect.height,
                    depth_or_array_layers: 1,
                },
            );
        }
        self.rows_to_write
            .extend(rects.iter().map(|rect| rect.y..rect.y + rect.height));
    }

    /// Passes the rows read back since the last frame to the server and shows the whole frame,
    /// once `submitted` (the submission that drew and copied them) is done. The segment keeps
    /// the rest from earlier frames, so the server is always given the whole window: what the
    /// window had drawn is lost whenever the window was covered, and the server keeps none.
    pub fn show(
        &mut self,
        device: &wgpu::Device,
        submitted: wgpu::SubmissionIndex,
    ) -> Result<(), ShmError> {
        let Some(frame) = &self.frame else {
            return Ok(());
        };
        let (readback, stride, [width, height]) =
            (frame.readback.clone(), frame.stride, frame.size);
        let len = readback.size();
        let new_segment = self
            .segment
            .as_ref()
            .is_none_or(|segment| segment.len < len);
        let rows = if new_segment {
            // A new segment has nothing of the earlier frames: all of it, from the buffer.
            std::iter::once(0..height).collect()
        } else {
            merge_row_ranges(std::mem::take(&mut self.rows_to_write))
        };
        self.rows_to_write.clear();
        let slice = readback.slice(..);
        slice.map_async(wgpu::MapMode::Read, |_| ());
        // Only this submission: the engine's, made since, need not be waited for.
        device.poll(wgpu::PollType::Wait {
            submission_index: Some(submitted),
            timeout: None,
        })?;
        // The segment is rewritten only once the server has read the last frame from it.
        self.settle()?;
        let written = {
            let pixels = slice.get_mapped_range()?;
            self.segment_for(len)?;
            let segment = self.segment.as_ref().unwrap();
            rows.iter().try_for_each(|rows| {
                let bytes =
                    (rows.start as usize * stride as usize)..(rows.end as usize * stride as usize);
                segment
                    .file
                    .write_all_at(&pixels[bytes.clone()], bytes.start as u64)
            })
        };
        readback.unmap();
        written.map_err(ShmError::Write)?;
        let segment = self.segment.as_ref().unwrap();
        self.connection.shm_put_image(
            self.window,
            self.gc,
            (stride / 4) as u16,
            height as u16,
            0,
            0,
            width as u16,
            height as u16,
            0,
            0,
            self.depth,
            ImageFormat::Z_PIXMAP.into(),
            false,
            segment.id,
            0,
        )?;
        self.connection.flush()?;
        self.put_in_flight = true;
        Ok(())
    }

    /// Waits (one round trip) until the server has handled every request sent so far.
    fn settle(&mut self) -> Result<(), ShmError> {
        if std::mem::take(&mut self.put_in_flight) {
            self.connection
                .get_input_focus()?
                .reply()
                .map_err(ShmError::NotTaken)?;
        }
        Ok(())
    }

    /// Makes sure a segment of at least `len` bytes is attached.
    fn segment_for(&mut self, len: u64) -> Result<(), ShmError> {
        if self
            .segment
            .as_ref()
            .is_some_and(|segment| segment.len >= len)
        {
            return Ok(());
        }
        if let Some(old) = self.segment.take() {
            let _ = self.connection.shm_detach(old.id);
        }
        let fd = rustix::fs::memfd_create("tally-window", rustix::fs::MemfdFlags::CLOEXEC)?;
        let file = File::from(fd);
        file.set_len(len).map_err(ShmError::Memory)?;
        let server_copy = file.try_clone().map_err(ShmError::Memory)?;
        let id = self.connection.generate_id()?;
        self.connection
            .shm_attach_fd(id, server_copy, true)?
            .check()
            .map_err(ShmError::Attach)?;
        self.segment = Some(Segment { id, file, len });
        Ok(())
    }
}

/// The rows in `ranges`, as few ranges as cover them, in order.
fn merge_row_ranges(mut ranges: Vec<std::ops::Range<u32>>) -> Vec<std::ops::Range<u32>> {
    ranges.sort_by_key(|range| range.start);
    let mut merged: Vec<std::ops::Range<u32>> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    merged
}

impl Drop for ShmPresenter {
    fn drop(&mut self) {
        if let Some(segment) = self.segment.take() {
            let _ = self.connection.shm_detach(segment.id);
        }
        let _ = self.connection.free_gc(self.gc);
        let _ = self.connection.flush();
    }
}
