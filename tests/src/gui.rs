//! Opening the plugin's editor headless: an X11 parent window (under Xvfb in CI), the CLAP GUI
//! extension (embedded X11, the only kind nice-plug offers), pixel capture with `GetImage`, mouse
//! input with XTest, and a small PNG writer for the screenshot.
//!
//! nice-plug's editor runs its own X11 event thread (baseview) and draws with OpenGL, so under Xvfb
//! it needs Mesa's software GL (`libgl1-mesa-dri`). The window of the editor is a child of the parent
//! window we create; we capture that child directly, since a GL visual may have a different depth
//! from its parent, and `GetImage` on the parent leaves such children undefined.

use crate::host::{HostError, Result, TrioHost};
use clack_extensions::gui::{GuiApiType, GuiConfiguration, GuiSize, PluginGui, Window as ClapWindow};
use std::path::Path;
use std::time::{Duration, Instant};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{self, ConnectionExt as _, CreateWindowAux, ImageFormat, WindowClass};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(HostError(msg.into()))
}

/// A connection to the X server named by `DISPLAY`.
pub struct X11Display {
    /// The connection parent windows are created and captured on.
    conn: RustConnection,
    /// The screen whose root window parents our windows.
    screen: usize,
}

impl X11Display {
    /// Connects to `$DISPLAY`; an error (not a skip) when there is none, with the way to get one.
    pub fn connect() -> Result<Self> {
        let display = std::env::var("DISPLAY").unwrap_or_default();
        if display.is_empty() {
            return err("DISPLAY is not set: the GUI test needs an X server. Run it under Xvfb, e.g. \
                 `xvfb-run -a -s '-screen 0 1600x1000x24' cargo test -p trio_tests --release --test gui`, \
                 or use `cargo xtask test`, which starts Xvfb.");
        }
        let (conn, screen) = x11rb::connect(None)
            .map_err(|e| HostError(format!("cannot connect to the X server at DISPLAY={display}: {e}")))?;
        Ok(X11Display { conn, screen })
    }

    /// A mapped top-level window to embed the editor in.
    pub fn create_parent(&self, width: u32, height: u32) -> Result<u32> {
        let screen = &self.conn.setup().roots[self.screen];
        let id = self.conn.generate_id().map_err(|e| HostError(format!("X11 id: {e}")))?;
        self.conn
            .create_window(
                x11rb::COPY_DEPTH_FROM_PARENT,
                id,
                screen.root,
                0,
                0,
                width.clamp(1, u16::MAX as u32) as u16,
                height.clamp(1, u16::MAX as u32) as u16,
                0,
                WindowClass::INPUT_OUTPUT,
                x11rb::COPY_FROM_PARENT,
                &CreateWindowAux::new().background_pixel(screen.black_pixel),
            )
            .map_err(|e| HostError(format!("X11 create_window: {e}")))?;
        self.conn.map_window(id).map_err(|e| HostError(format!("X11 map_window: {e}")))?;
        // A round trip, so the window exists on the server before the plugin's own connection
        // (a different client, whose requests may otherwise overtake ours) reparents into it.
        self.conn.sync().map_err(|e| HostError(format!("X11 sync: {e}")))?;
        Ok(id)
    }

    /// Destroys a window we created.
    pub fn destroy_window(&self, id: u32) {
        let _ = self.conn.destroy_window(id);
        let _ = self.conn.sync();
    }

    /// The windows embedded in `parent` (the editor's window once `set_parent` ran).
    pub fn children(&self, parent: u32) -> Result<Vec<u32>> {
        let tree = self
            .conn
            .query_tree(parent)
            .map_err(|e| HostError(format!("X11 query_tree: {e}")))?
            .reply()
            .map_err(|e| HostError(format!("X11 query_tree: {e}")))?;
        Ok(tree.children)
    }

    /// A window's size in pixels.
    pub fn window_size(&self, window: u32) -> Result<(u32, u32)> {
        let g = self
            .conn
            .get_geometry(window)
            .map_err(|e| HostError(format!("X11 get_geometry: {e}")))?
            .reply()
            .map_err(|e| HostError(format!("X11 get_geometry: {e}")))?;
        Ok((g.width as u32, g.height as u32))
    }

    /// Moves the pointer to `(x, y)` inside `window` (XTest, as if a user moved the mouse).
    pub fn pointer_to(&self, window: u32, x: i32, y: i32) -> Result<()> {
        let root = self.conn.setup().roots[self.screen].root;
        let t = self
            .conn
            .translate_coordinates(window, root, x as i16, y as i16)
            .map_err(|e| HostError(format!("X11 translate_coordinates: {e}")))?
            .reply()
            .map_err(|e| HostError(format!("X11 translate_coordinates: {e}")))?;
        self.conn
            .xtest_fake_input(xproto::MOTION_NOTIFY_EVENT, 0, x11rb::CURRENT_TIME, root, t.dst_x, t.dst_y, 0)
            .map_err(|e| HostError(format!("XTest motion: {e}")))?;
        self.conn.sync().map_err(|e| HostError(format!("X11 sync: {e}")))?;
        std::thread::sleep(Duration::from_millis(40));
        Ok(())
    }

    /// Presses or releases the left mouse button where the pointer is.
    pub fn left_button(&self, press: bool) -> Result<()> {
        let root = self.conn.setup().roots[self.screen].root;
        let kind = if press { xproto::BUTTON_PRESS_EVENT } else { xproto::BUTTON_RELEASE_EVENT };
        self.conn
            .xtest_fake_input(kind, 1, x11rb::CURRENT_TIME, root, 0, 0, 0)
            .map_err(|e| HostError(format!("XTest button: {e}")))?;
        self.conn.sync().map_err(|e| HostError(format!("X11 sync: {e}")))?;
        std::thread::sleep(Duration::from_millis(40));
        Ok(())
    }

    /// Drags with the left button from `from` to `to` inside `window`, in small steps.
    pub fn drag(&self, window: u32, from: (i32, i32), to: (i32, i32)) -> Result<()> {
        self.pointer_to(window, from.0, from.1)?;
        self.left_button(true)?;
        let steps = 8;
        for i in 1..=steps {
            let x = from.0 + (to.0 - from.0) * i / steps;
            let y = from.1 + (to.1 - from.1) * i / steps;
            self.pointer_to(window, x, y)?;
        }
        self.left_button(false)
    }

    /// A left double-click at `at` inside `window`.
    pub fn double_click(&self, window: u32, at: (i32, i32)) -> Result<()> {
        self.pointer_to(window, at.0, at.1)?;
        for _ in 0..2 {
            self.left_button(true)?;
            self.left_button(false)?;
        }
        Ok(())
    }

    /// The pixels of a window, as RGB.
    pub fn capture(&self, window: u32) -> Result<Screenshot> {
        let (width, height) = self.window_size(window)?;
        let image = self
            .conn
            .get_image(ImageFormat::Z_PIXMAP, window, 0, 0, width as u16, height as u16, !0)
            .map_err(|e| HostError(format!("X11 get_image: {e}")))?
            .reply()
            .map_err(|e| HostError(format!("X11 get_image: {e}")))?;
        let setup = self.conn.setup();
        let bpp = setup.pixmap_formats.iter().find(|f| f.depth == image.depth).map(|f| f.bits_per_pixel).unwrap_or(32);
        if bpp != 32 {
            return err(format!(
                "captured image has {bpp} bits per pixel; only 32 is handled (run Xvfb with depth 24)"
            ));
        }
        let visual = setup.roots[self.screen]
            .allowed_depths
            .iter()
            .flat_map(|d| d.visuals.iter())
            .find(|v| v.visual_id == image.visual)
            .or_else(|| {
                // The root visual describes the usual 0xRRGGBB layout.
                let root_visual = setup.roots[self.screen].root_visual;
                setup.roots[self.screen]
                    .allowed_depths
                    .iter()
                    .flat_map(|d| d.visuals.iter())
                    .find(|v| v.visual_id == root_visual)
            });
        let (rm, gm, bm) = visual.map(|v| (v.red_mask, v.green_mask, v.blue_mask)).unwrap_or((0xff0000, 0xff00, 0xff));
        let little = setup.image_byte_order == x11rb::protocol::xproto::ImageOrder::LSB_FIRST;
        let channel = |pixel: u32, mask: u32| -> u8 {
            if mask == 0 {
                return 0;
            }
            let shift = mask.trailing_zeros();
            let bits = (mask >> shift).count_ones();
            let v = (pixel & mask) >> shift;
            if bits >= 8 {
                (v >> (bits - 8)) as u8
            } else {
                ((v * 255) / ((1 << bits) - 1)) as u8
            }
        };
        let mut rgb = Vec::with_capacity((width * height * 3) as usize);
        for px in image.data.chunks_exact(4).take((width * height) as usize) {
            let b = [px[0], px[1], px[2], px[3]];
            let pixel = if little { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) };
            rgb.extend_from_slice(&[channel(pixel, rm), channel(pixel, gm), channel(pixel, bm)]);
        }
        Ok(Screenshot { width, height, rgb })
    }
}

/// An RGB image.
#[derive(Debug, Clone)]
pub struct Screenshot {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Row-major RGB bytes, 3 per pixel.
    pub rgb: Vec<u8>,
}

impl Screenshot {
    /// Pixels within `tolerance` (per channel) of `colour`.
    pub fn count_near(&self, colour: [u8; 3], tolerance: u8) -> usize {
        self.rgb.chunks_exact(3).filter(|p| (0..3).all(|i| p[i].abs_diff(colour[i]) <= tolerance)).count()
    }

    /// Pixels within `tolerance` of `colour` inside `region` (x0, y0, x1, y1; exclusive ends).
    pub fn find(&self, colour: [u8; 3], tolerance: u8, region: (u32, u32, u32, u32)) -> Vec<(u32, u32)> {
        let mut found = Vec::new();
        for y in region.1..region.3.min(self.height) {
            for x in region.0..region.2.min(self.width) {
                let i = ((y * self.width + x) * 3) as usize;
                if (0..3).all(|c| self.rgb[i + c].abs_diff(colour[c]) <= tolerance) {
                    found.push((x, y));
                }
            }
        }
        found
    }

    /// Distinct colours in the image (a blank or black window has one or two).
    pub fn distinct_colours(&self) -> usize {
        let mut seen = std::collections::HashSet::new();
        for p in self.rgb.chunks_exact(3) {
            seen.insert([p[0], p[1], p[2]]);
        }
        seen.len()
    }

    /// Writes the image as PNG, creating the folder.
    pub fn save_png(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, encode_png(self.width, self.height, &self.rgb))
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (n, slot) in t.iter_mut().enumerate() {
            let mut c = n as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            }
            *slot = c;
        }
        t
    });
    let mut c = 0xffff_ffffu32;
    for &b in bytes {
        c = table[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    c ^ 0xffff_ffff
}

/// An 8-bit RGB PNG (filter 0 on every row, zlib-compressed).
pub fn encode_png(width: u32, height: u32, rgb: &[u8]) -> Vec<u8> {
    let mut raw = Vec::with_capacity((width as usize * 3 + 1) * height as usize);
    for row in rgb.chunks_exact(width as usize * 3).take(height as usize) {
        raw.push(0);
        raw.extend_from_slice(row);
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8; 4], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &header);
    chunk(b"IDAT", &miniz_oxide::deflate::compress_to_vec_zlib(&raw, 8));
    chunk(b"IEND", &[]);
    out
}

/// The plugin's editor, open and embedded in a parent window of ours.
#[derive(Debug, Clone, Copy)]
pub struct OpenEditor {
    /// Our parent window.
    pub parent: u32,
    /// The size the plugin asked for (`gui.get_size`).
    pub size: (u32, u32),
}

fn plugin_gui(host: &mut TrioHost) -> Result<PluginGui> {
    host.instance_mut()
        .plugin_handle()
        .get_extension::<PluginGui>()
        .ok_or_else(|| HostError("plugin has no clap.gui".into()))
}

/// Asks the editor for its size, embeds it into a new parent window of that size and shows it.
pub fn open_editor(host: &mut TrioHost, display: &X11Display) -> Result<OpenEditor> {
    let gui = plugin_gui(host)?;
    let config = GuiConfiguration { api_type: GuiApiType::X11, is_floating: false };
    {
        let instance = host.instance_mut();
        let handle = instance.plugin_handle();
        if !gui.is_api_supported(&handle, config) {
            return err("the plugin does not support embedded X11 editors");
        }
        gui.create(&handle, config).map_err(|e| HostError(format!("gui.create failed: {e:?}")))?;
        let _ = gui.set_scale(&handle, 1.0);
    }
    let size = {
        let instance = host.instance_mut();
        gui.get_size(&instance.plugin_handle()).ok_or_else(|| HostError("gui.get_size failed".into()))?
    };
    let parent = display.create_parent(size.width, size.height)?;
    let result = {
        let instance = host.instance_mut();
        let handle = instance.plugin_handle();
        // SAFETY: the parent window lives until `close_editor` destroys it after `gui.destroy`.
        unsafe { gui.set_parent(&handle, ClapWindow::from_x11_handle(parent as std::ffi::c_ulong)) }
            .map_err(|e| HostError(format!("gui.set_parent failed: {e:?}")))
            .and_then(|_| gui.show(&handle).map_err(|e| HostError(format!("gui.show failed: {e:?}"))))
    };
    if let Err(e) = result {
        gui.destroy(&host.instance_mut().plugin_handle());
        display.destroy_window(parent);
        return Err(e);
    }
    host.service_main_thread();
    Ok(OpenEditor { parent, size: (size.width, size.height) })
}

/// Asks the open editor to take a new size (as a host does when the user drags its frame).
pub fn resize_editor(host: &mut TrioHost, width: u32, height: u32) -> Result<()> {
    let gui = plugin_gui(host)?;
    let instance = host.instance_mut();
    let handle = instance.plugin_handle();
    if !gui.can_resize(&handle) {
        return err("the editor says it cannot be resized");
    }
    gui.set_size(&handle, GuiSize { width, height }).map_err(|e| HostError(format!("gui.set_size failed: {e:?}")))
}

/// The size the plugin reports for its editor (`gui.get_size`), editor open or not (after `create`).
pub fn editor_size(host: &mut TrioHost) -> Result<(u32, u32)> {
    let gui = plugin_gui(host)?;
    let instance = host.instance_mut();
    let size = gui.get_size(&instance.plugin_handle()).ok_or_else(|| HostError("gui.get_size failed".into()))?;
    Ok((size.width, size.height))
}

/// Hides and destroys the editor, then our parent window.
pub fn close_editor(host: &mut TrioHost, display: &X11Display, editor: OpenEditor) -> Result<()> {
    let gui = plugin_gui(host)?;
    {
        let instance = host.instance_mut();
        let handle = instance.plugin_handle();
        let _ = gui.hide(&handle);
        gui.destroy(&handle);
    }
    // baseview tears its window down on its own thread after `destroy` returns; give it a moment
    // before the parent (and with it any child still there) goes.
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(60));
        host.service_main_thread();
    }
    display.destroy_window(editor.parent);
    Ok(())
}

/// The editor's own window inside our parent (the parent itself if the editor made none).
pub fn editor_window(display: &X11Display, editor: &OpenEditor) -> Result<u32> {
    Ok(display.children(editor.parent)?.first().copied().unwrap_or(editor.parent))
}

/// Captures the editor's window until `accept` is satisfied or `timeout` passes, answering the
/// plugin's main-thread callbacks meanwhile; returns the last capture either way.
pub fn capture_editor_until(
    host: &mut TrioHost,
    display: &X11Display,
    editor: &OpenEditor,
    timeout: Duration,
    mut accept: impl FnMut(&Screenshot) -> bool,
) -> Result<Screenshot> {
    let started = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(250));
        host.service_main_thread();
        let shot = display.capture(editor_window(display, editor)?)?;
        if accept(&shot) || started.elapsed() >= timeout {
            return Ok(shot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_is_well_formed() {
        let png = encode_png(2, 1, &[255, 0, 0, 0, 255, 0]);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(crc32(b"IEND"), 0xae42_6082);
        assert!(png.ends_with(&[0xae, 0x42, 0x60, 0x82]));
    }
}
