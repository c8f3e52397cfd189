//! The producer's editor: the three parts in a piano roll, the controls that steer them, the
//! buttons that keep or replace them, MIDI export and a status line in plain words.
//!
//! One file per widget: [`piano_roll`], [`controls`], [`export`], [`status`]. This file wires them
//! into a nice-plug-egui editor.
//!
//! Nothing here is the source of truth. Parameter values live in [`TrioParams`] (changed through the
//! host's `ParamSetter`, with begin/set/end gestures so hosts record automation), the phrase and the
//! engine status through its [`EditorEnd`](crate::link::EditorEnd) (read under their own mutexes, which `process()` never touches), the
//! window size and export folder in persisted fields of [`TrioParams`]. Closing and reopening the
//! window therefore loses nothing; what the window itself keeps (text being typed, the last export
//! message) lives in [`EditorMemory`], owned by [`TrioEditor`], which outlives the window.

pub mod chord_lane;
pub mod controls;
pub mod export;
pub mod piano_roll;
pub mod status;

use crate::link::EditorEnd;
use crate::music::Part;
use crate::params::{EditorSize, TrioParams};
use egui::{Color32, RichText};
use nice_plug::prelude::*;
use nice_plug_egui::{create_egui_editor, EguiEditor, EguiEditorState, EguiNiceSettings, NiceEguiApp};
use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Note colour of each part, indexed by [`Part::index`]: distinct hues that stay apart for colour-blind
/// viewers (orange, teal, violet). Notes still to come are painted exactly in these colours; the GUI
/// test looks for them in the screenshot, so nothing else is painted in them.
pub const PART_COLOURS: [Color32; 3] =
    [Color32::from_rgb(255, 138, 31), Color32::from_rgb(43, 217, 200), Color32::from_rgb(180, 92, 255)];

/// The playhead line; also looked for by the GUI test.
pub const PLAYHEAD_COLOUR: Color32 = Color32::from_rgb(255, 240, 60);

/// The editor's background behind the roll.
pub const ROLL_BACKGROUND: Color32 = Color32::from_rgb(21, 23, 28);

/// The note colour of a part.
pub fn part_colour(part: Part) -> Color32 {
    PART_COLOURS[part.index()]
}

/// A lighter shade of a part's colour for labels, swatches and register bands (kept off the exact
/// note colour so a screenshot's note colours come from notes only).
pub fn part_tint(part: Part) -> Color32 {
    let c = part_colour(part);
    let mix = |v: u8| (v as f32 + (255.0 - v as f32) * 0.35).round() as u8;
    Color32::from_rgb(mix(c.r()), mix(c.g()), mix(c.b()))
}

/// A part's name beside a small square of its colour (the default fonts have no "■" glyph).
pub fn part_label(ui: &mut egui::Ui, part: Part, text: &str) -> egui::Response {
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing.x = 5.0;
        let (rect, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
        ui.painter().rect_filled(rect, 2.0, part_tint(part));
        ui.label(RichText::new(text).strong().color(part_tint(part)))
    })
    .inner
}

/// The display name of a part.
pub fn part_title(part: Part) -> &'static str {
    match part {
        Part::Lead => "Lead",
        Part::Arp => "Arp",
        Part::Bass => "Bass",
    }
}

/// What the editor remembers between openings of its window that is not a parameter.
#[derive(Debug, Default)]
pub struct EditorMemory {
    /// The export section's text field and last result.
    pub export: export::ExportMemory,
    /// The chord progression field being typed.
    pub progression: controls::ProgressionMemory,
    /// The Model selector's path field.
    pub model: controls::ModelMemory,
    /// The linked group's knobs as last followed: only a change there turns this member's knobs (a
    /// knob being turned here is not turned back meanwhile).
    pub group_knobs: Option<crate::params::GroupKnobs>,
}

/// The plugin's editor. It builds a fresh egui editor each time the host opens the window, sized
/// from the persisted [`EditorSize`], so a project reopens its window at the size it was left at.
pub struct TrioEditor {
    /// Parameters and persisted fields: everything the controls change.
    params: Arc<TrioParams>,
    /// Phrase, engine status, transport and the command channel to the generator.
    link: EditorEnd,
    /// Survives closing the window (the editor object lives as long as the plugin instance).
    memory: Arc<Mutex<EditorMemory>>,
    /// The egui editor of the open (or last opened) window; `size()` asks it for the live size.
    current: Mutex<Option<EguiEditor<TrioApp>>>,
}

/// Creates the editor; called once per plugin instance from `Plugin::editor`.
pub fn create_editor(params: Arc<TrioParams>, link: EditorEnd) -> Option<TrioEditor> {
    Some(TrioEditor { params, link, memory: Arc::new(Mutex::new(EditorMemory::default())), current: Mutex::new(None) })
}

impl TrioEditor {
    fn resize_hint() -> ResizeHint {
        ResizeHint::resizable().with_min_logical_size(nice_plug::editor::dpi::LogicalSize::new(
            EditorSize::MIN.width as f32,
            EditorSize::MIN.height as f32,
        ))
    }

    fn persisted_size(&self) -> EditorSize {
        let size = self.params.editor_state.load();
        EditorSize { width: size.width.max(EditorSize::MIN.width), height: size.height.max(EditorSize::MIN.height) }
    }
}

impl Editor for TrioEditor {
    type Handle = <EguiEditor<TrioApp> as Editor>::Handle;

    fn spawn(
        &self,
        parent: Option<ParentWindowHandle>,
        wait_for_parent: bool,
        fallback_scale_factor: Option<f64>,
        gui_context: nice_plug::context::gui::GuiContext,
        host: Option<nice_plug::editor::HostMethods>,
    ) -> Result<nice_plug::editor::SpawnedEditor<Self::Handle>, Box<dyn Error>> {
        let size = self.persisted_size();
        let state = EguiEditorState::from_size(
            nice_plug::editor::dpi::LogicalSize::new(size.width as f32, size.height as f32),
            1.0,
        );
        let settings = EguiNiceSettings::new().with_tile("Neural Trio").with_resize_hint(Self::resize_hint());
        let app =
            TrioApp { params: self.params.clone(), link: self.link.clone(), memory: self.memory.clone(), gui: None };
        let editor = create_egui_editor(state, Default::default(), settings, app)
            .ok_or("the egui editor could not be created")?;
        let spawned = editor.spawn(parent, wait_for_parent, fallback_scale_factor, gui_context, host)?;
        if let Ok(mut current) = self.current.lock() {
            *current = Some(editor);
        }
        Ok(spawned)
    }

    fn size(&self) -> nice_plug::editor::dpi::NativeSize<u32> {
        if let Some(editor) = self.current.lock().ok().as_ref().and_then(|c| c.as_ref()) {
            return editor.size();
        }
        let size = self.persisted_size();
        nice_plug::editor::dpi::NativeSize { width: size.width, height: size.height }
    }

    fn resize_hint(&self) -> ResizeHint {
        Self::resize_hint()
    }
}

/// The egui app of one open window. Rebuilt at every opening; holds no state of its own.
pub struct TrioApp {
    /// Parameters and persisted fields.
    params: Arc<TrioParams>,
    /// Phrase, status, transport, commands.
    link: EditorEnd,
    /// Text fields and messages that outlive the window.
    memory: Arc<Mutex<EditorMemory>>,
    /// The host connection for parameter gestures; set in `build`, before the first frame.
    gui: Option<nice_plug::context::gui::GuiContext>,
}

impl NiceEguiApp for TrioApp {
    fn build(
        &mut self,
        egui_ctx: egui::Context,
        nice_gui_ctx: nice_plug::context::gui::GuiContext,
        _frame: &mut nice_plug_egui::Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        self.gui = Some(nice_gui_ctx);
        egui_ctx.set_visuals(visuals());
        Ok(())
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut nice_plug_egui::Frame) {
        let Some(gui) = self.gui.as_ref() else { return };
        let setter = gui.param_setter();
        let params = &*self.params;
        let link = &self.link;
        let mut memory = match self.memory.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };

        let snapshot = link.phrase();
        let status = link.status();
        if status.group_knobs != memory.group_knobs {
            memory.group_knobs = status.group_knobs;
            if let Some(knobs) = status.group_knobs {
                controls::follow_group_knobs(params, &setter, &knobs);
            }
        }
        let view = piano_roll::RollView::from_link(params, link, &snapshot);

        egui::Panel::top("trio-header").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label(RichText::new("NEURAL TRIO").strong().size(18.0).color(Color32::from_rgb(235, 235, 240)));
                ui.add_space(12.0);
                for part in Part::ALL {
                    part_label(ui, part, part_title(part));
                }
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    controls::regenerate_all_button(ui, params, link);
                    ui.add_space(6.0);
                    controls::variations_buttons(ui, params, &status, link);
                    ui.add_space(6.0);
                    controls::history_buttons(ui, &status, link);
                });
            });
        });
        egui::Panel::bottom("trio-status").show(ui, |ui| {
            status::status_line(ui, &status, link);
        });
        egui::Panel::right("trio-controls").default_size(340.0).min_size(300.0).resizable(true).show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                controls::generate_group(ui, params, &setter, link, &mut memory.model);
                ui.add_space(8.0);
                controls::jam_group(ui, params, &setter, &status, &mut memory.progression);
                ui.add_space(8.0);
                controls::output_group(ui, params, &setter, &status);
                ui.add_space(8.0);
                export::export_group(ui, params, link, &snapshot, &view, &mut memory.export);
            });
        });
        egui::CentralPanel::default_margins().show(ui, |ui| {
            controls::parts_group(ui, params, &setter, link);
            ui.add_space(6.0);
            piano_roll::piano_roll(ui, params, &setter, &snapshot, &view);
        });

        // The playhead moves and the generator publishes bars on its own: keep redrawing.
        let playing = link.playing();
        ui.ctx().request_repaint_after(Duration::from_millis(if playing { 33 } else { 200 }));
    }

    fn resized(&mut self, new_size: nice_plug_egui::baseview::WindowSize) {
        let (width, height) = (new_size.logical.width.round(), new_size.logical.height.round());
        if width >= 1.0 && height >= 1.0 {
            self.params.editor_state.store(EditorSize { width: width as u32, height: height as u32 });
        }
    }

    fn editor_closed(&mut self) {
        self.gui = None;
    }
}

/// Dark theme with a little more air than egui's default.
fn visuals() -> egui::Visuals {
    let mut v = egui::Visuals::dark();
    v.panel_fill = Color32::from_rgb(30, 32, 38);
    v.extreme_bg_color = ROLL_BACKGROUND;
    v.selection.bg_fill = Color32::from_rgb(70, 96, 150);
    v
}
