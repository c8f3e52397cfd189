//! The controls, grouped the way a producer thinks about them: **Generate** (what the model writes),
//! **Parts** (which voices play, where, and which to keep) and **Output** (where the notes go).
//! Every change goes through the host's `ParamSetter` with begin/set/end, so hosts record it as
//! automation and show it as one undo step.

use super::{part_label, part_tint, part_title};
use crate::generator::resources::{self, ModelChoice};
use crate::link::{Command, EditorEnd, EngineStatus};
use crate::music::harmony::Progression;
use crate::music::vocab::Key;
use crate::music::Part;
use crate::params::{
    key_lock_key, ArpMotionChoice, BassDriveChoice, Compute, Follow, GroupKnobs, LinkGroup, Mode, MoodChoice,
    PartOutput, TrioParams,
};
use egui::{Color32, DragValue, RichText, Ui};
use nice_plug::prelude::*;
use nice_plug_egui::widgets::ParamSlider;

/// Width of the sliders in the side panel.
const SLIDER_WIDTH: f32 = 150.0;

/// A group's heading: small caps-like label with a rule under it.
fn heading(ui: &mut Ui, text: &str) {
    ui.label(RichText::new(text).strong().size(14.0).color(Color32::from_rgb(225, 228, 235)));
    ui.separator();
}

/// Sets a parameter as one complete gesture (a click, a menu choice).
fn set_once<P: Param>(setter: &ParamSetter, param: &P, value: P::Plain) {
    setter.begin_set_parameter(param);
    setter.set_parameter(param, value);
    setter.end_set_parameter(param);
}

/// Turns this member's generation knobs to its linked group's, where they differ (the host records it
/// as a change made here, as Scaler-style linked plugins do).
pub fn follow_group_knobs(params: &TrioParams, setter: &ParamSetter, knobs: &GroupKnobs) {
    fn follow<P: Param>(setter: &ParamSetter, param: &P, value: P::Plain)
    where
        P::Plain: PartialEq,
    {
        if param.modulated_plain_value() != value {
            set_once(setter, param, value);
        }
    }
    follow(setter, &params.temperature, knobs.temperature);
    follow(setter, &params.top_p, knobs.top_p);
    follow(setter, &params.seed, knobs.seed);
    follow(setter, &params.mode, knobs.mode);
    follow(setter, &params.loop_bars, knobs.loop_bars);
    follow(setter, &params.key_lock, knobs.key_lock);
    follow(setter, &params.mood, knobs.mood);
    follow(setter, &params.follow, knobs.follow);
    follow(setter, &params.compute, knobs.compute);
    follow(setter, &params.style, knobs.style);
    follow(setter, &params.arp_motion, knobs.arp_motion);
    follow(setter, &params.bass_drive, knobs.bass_drive);
    for (part, (on, low, high)) in Part::ALL.into_iter().zip(knobs.parts) {
        let p = params.part(part);
        follow(setter, &p.on, on);
        follow(setter, &p.low, low);
        follow(setter, &p.high, high);
        follow(setter, &p.density, knobs.density[part.index()]);
    }
}

/// One button per variant; the current one is highlighted.
fn enum_buttons<T: Enum + PartialEq + Copy + 'static>(ui: &mut Ui, setter: &ParamSetter, param: &EnumParam<T>) {
    ui.horizontal(|ui| {
        let current = param.value();
        for (index, name) in T::variants().iter().enumerate() {
            let variant = T::from_index(index);
            if ui.selectable_label(current == variant, *name).clicked() && current != variant {
                set_once(setter, param, variant);
            }
        }
    });
}

/// A drop-down of an enum parameter's variants.
fn enum_combo<T: Enum + PartialEq + Copy + 'static>(ui: &mut Ui, id: &str, setter: &ParamSetter, param: &EnumParam<T>) {
    let current = param.value();
    egui::ComboBox::from_id_salt(id).width(SLIDER_WIDTH).selected_text(T::variants()[current.to_index()]).show_ui(
        ui,
        |ui| {
            for (index, name) in T::variants().iter().enumerate() {
                let variant = T::from_index(index);
                if ui.selectable_label(current == variant, *name).clicked() && current != variant {
                    set_once(setter, param, variant);
                }
            }
        },
    );
}

/// A compact draggable number for an integer parameter, shown and typed in the parameter's own
/// text format (note names for registers). Dragging is one gesture; typing a value is another.
fn int_drag(ui: &mut Ui, setter: &ParamSetter, param: &IntParam, speed: f64) -> egui::Response {
    let range = match param.range() {
        IntRange::Linear { min, max } => min..=max,
        IntRange::Reversed(inner) => match *inner {
            IntRange::Linear { min, max } => min..=max,
            IntRange::Reversed(_) => 0..=127,
        },
    };
    let mut value = param.value();
    let response = ui.add(
        DragValue::new(&mut value)
            .range(range)
            .speed(speed)
            .custom_formatter(|v, _| param.normalized_value_to_string(param.preview_normalized(v.round() as i32), true))
            .custom_parser(|text| param.string_to_normalized_value(text).map(|n| param.preview_plain(n) as f64)),
    );
    if response.drag_started() {
        setter.begin_set_parameter(param);
    }
    if response.changed() && value != param.value() {
        if response.dragged() {
            setter.set_parameter(param, value);
        } else {
            set_once(setter, param, value);
        }
    }
    if response.drag_stopped() {
        setter.end_set_parameter(param);
    }
    response
}

fn slider<'a, P: Param>(param: &'a P, setter: &'a ParamSetter<'a>) -> ParamSlider<'a, P> {
    ParamSlider::for_param(param, setter).with_width(SLIDER_WIDTH)
}

/// Whether a part keeps its notes on Regenerate, as the saved session holds it (so it survives
/// reopening the project and the editor). Only the generator writes it, on every SetLock.
pub fn is_locked(params: &TrioParams, part: Part) -> bool {
    params.session.locked(part)
}

fn set_locked(link: &EditorEnd, part: Part, locked: bool) {
    link.send(Command::SetLock { part, locked });
}

/// Hold freezes the phrase: regenerating then does nothing, so the buttons say why they are off.
fn regenerate_allowed(params: &TrioParams) -> bool {
    params.mode.value() != Mode::Hold
}

/// "Regenerate all": new notes for every part that is not locked.
pub fn regenerate_all_button(ui: &mut Ui, params: &TrioParams, link: &EditorEnd) {
    let allowed = regenerate_allowed(params);
    let button = egui::Button::new(RichText::new("Regenerate all").strong()).min_size(egui::vec2(130.0, 24.0));
    let response = ui.add_enabled(allowed, button);
    let response = if allowed {
        response.on_hover_text("New notes for every part that is not locked, with the same settings.")
    } else {
        response.on_disabled_hover_text("Hold mode freezes the phrase. Switch to Loop or Endless to regenerate.")
    };
    if response.clicked() {
        link.send(Command::Regenerate { part: None });
    }
}

/// Takes one Variations click makes.
pub const VARIATION_COUNT: usize = 4;

/// Variations take the loop again, so they need Loop mode (Hold freezes, Endless has no loop).
fn variations_allowed(params: &TrioParams) -> bool {
    params.mode.value() == Mode::Loop
}

/// "Variations" (several new takes of the loop at once) and the flipper through them.
/// Laid out right to left, beside Regenerate all.
pub fn variations_buttons(ui: &mut Ui, params: &TrioParams, status: &EngineStatus, link: &EditorEnd) {
    if status.variations > 1 {
        let shown = status.variation_shown.min(status.variations - 1);
        if ui.add_enabled(shown + 1 < status.variations, egui::Button::new("▶")).on_hover_text("Next take.").clicked()
        {
            link.send(Command::ShowVariation { index: shown + 1 });
        }
        let label = if shown == 0 { "Before".to_string() } else { format!("Take {shown}/{}", status.variations - 1) };
        ui.label(RichText::new(label).monospace()).on_hover_text(format!(
            "The {} takes were made together in {:.0} ms. \"Before\" is the phrase they started from.",
            status.variations - 1,
            status.variations_ms
        ));
        if ui.add_enabled(shown > 0, egui::Button::new("◀")).on_hover_text("Previous take.").clicked() {
            link.send(Command::ShowVariation { index: shown - 1 });
        }
    }
    let allowed = variations_allowed(params);
    let response = ui.add_enabled(allowed, egui::Button::new(format!("{VARIATION_COUNT} Variations")));
    let response = if allowed {
        response.on_hover_text(
            "Several new takes of the loop at once (locked parts stay). Flip through them with ◀ ▶; \
             the one you leave playing stays. Undo brings back the phrase before.",
        )
    } else {
        response.on_disabled_hover_text("Variations take the loop again: switch Mode to Loop.")
    };
    if response.clicked() {
        link.send(Command::Variations { part: None, count: VARIATION_COUNT });
    }
}

/// Undo and Redo of regenerations (the generator keeps the phrases; the buttons only ask).
pub fn history_buttons(ui: &mut Ui, status: &EngineStatus, link: &EditorEnd) {
    // Laid out right to left: Redo sits right of Undo.
    if ui
        .add_enabled(status.can_redo, egui::Button::new("Redo"))
        .on_hover_text("Bring back the phrase Undo took away.")
        .clicked()
    {
        link.send(Command::Redo);
    }
    if ui
        .add_enabled(status.can_undo, egui::Button::new("Undo"))
        .on_hover_text("Back to the phrase before the last Regenerate or Variations.")
        .clicked()
    {
        link.send(Command::Undo);
    }
}

/// The Model selector's "Open…" field while it is being typed, and why a path was refused.
#[derive(Debug, Default)]
pub struct ModelMemory {
    pub path: String,
    pub error: Option<String>,
}

/// Generate: which model writes, and how (mode, loop length, temperature, top-p, seed, key, mood).
pub fn generate_group(
    ui: &mut Ui,
    params: &TrioParams,
    setter: &ParamSetter,
    _link: &EditorEnd,
    memory: &mut ModelMemory,
) {
    heading(ui, "Generate");
    egui::Grid::new("trio-generate").num_columns(2).spacing([10.0, 6.0]).show(ui, |ui| {
        let folder = resources::user_models_dir();
        let folder_text = folder.as_ref().map_or("(no models folder)".to_string(), |d| d.display().to_string());
        ui.label("Model").on_hover_text(format!(
            "The model that writes the trio: the shipped trio-base, or one of your own (`cargo xtask finetune` \
             puts them in {folder_text}). A new model takes over at the next bar; the choice is saved with the \
             project."
        ));
        ui.vertical(|ui| model_selector(ui, params, folder.as_deref(), memory));
        ui.end_row();

        ui.label("Mode").on_hover_text(
            "Loop repeats a phrase of Loop Length bars; Endless keeps writing new bars; Hold freezes what is there.",
        );
        enum_buttons(ui, setter, &params.mode);
        ui.end_row();

        ui.label("Loop length");
        ui.add_enabled_ui(params.mode.value() != Mode::Endless, |ui| {
            ui.add(slider(&params.loop_bars, setter));
        });
        ui.end_row();

        ui.label("Temperature").on_hover_text("Low is safe and repetitive, high is adventurous.");
        ui.add(slider(&params.temperature, setter));
        ui.end_row();

        ui.label("Top-p").on_hover_text("Only the most likely notes that together hold this much probability.");
        ui.add(slider(&params.top_p, setter));
        ui.end_row();

        ui.label("Seed").on_hover_text("Same seed and settings, same notes: a project renders the same twice.");
        ui.horizontal(|ui| {
            int_drag(ui, setter, &params.seed, 1.0);
            if ui.button("New seed").on_hover_text("Pick another seed at random.").clicked() {
                set_once(setter, &params.seed, random_seed(params.seed.value()));
            }
        });
        ui.end_row();

        ui.label("Key lock").on_hover_text("Keeps every note in the key's scale (natural minor for minor keys).");
        key_lock_combo(ui, setter, &params.key_lock);
        ui.end_row();

        ui.label("Mood");
        enum_combo::<MoodChoice>(ui, "trio-mood", setter, &params.mood);
        ui.end_row();

        ui.label("Style").on_hover_text(
            "Pop: piano-pop arrangements (POP909). Dance: a lead hook on top, a 16th/8th arpeggio, a pulsing \
             or offbeat bass.",
        );
        enum_buttons(ui, setter, &params.style);
        ui.end_row();

        ui.label("Arp motion")
            .on_hover_text("Block chords, broken chords or an arpeggio in every bar; Auto: the model picks.");
        enum_combo::<ArpMotionChoice>(ui, "trio-arp-motion", setter, &params.arp_motion);
        ui.end_row();

        ui.label("Bass drive")
            .on_hover_text("Held roots, a pulse, offbeats or 16ths in every bar; Auto: the model picks.");
        enum_combo::<BassDriveChoice>(ui, "trio-bass-drive", setter, &params.bass_drive);
        ui.end_row();

        for part in Part::ALL {
            ui.label(RichText::new(format!("{} density", part_title(part))).color(part_tint(part)))
                .on_hover_text("Notes per bar asked of the part; Auto: the model picks.");
            ui.add(slider(&params.part(part).density, setter));
            ui.end_row();
        }

        ui.label("Compute").on_hover_text(
            "Where the model runs. Auto: the faster of CPU and GPU for each kind of work, measured on this \
             machine. GPU needs the GPU bundle, an NVIDIA driver, CUDA 13 and cuDNN 9.",
        );
        enum_combo::<Compute>(ui, "trio-compute", setter, &params.compute);
        ui.end_row();
    });
}

/// The models to choose from (the shipped one and the user's folder, read while the list is open), and
/// a field and button to open a model file from elsewhere.
fn model_selector(ui: &mut Ui, params: &TrioParams, folder: Option<&std::path::Path>, memory: &mut ModelMemory) {
    let current = params.model.get();
    let shipped_label = format!("{} (shipped)", ModelChoice::Shipped.name());
    let selected = match &current {
        ModelChoice::Shipped => shipped_label.clone(),
        other => other.name(),
    };
    egui::ComboBox::from_id_salt("trio-model").width(SLIDER_WIDTH).selected_text(selected).show_ui(ui, |ui| {
        if ui.selectable_label(current == ModelChoice::Shipped, shipped_label).clicked() {
            params.model.choose(ModelChoice::Shipped);
        }
        let models = folder.map(resources::list_models).unwrap_or_default();
        for model in &models {
            let is_current = matches!(&current, ModelChoice::User { name, .. } if *name == model.name);
            if ui.selectable_label(is_current, &model.name).clicked() && !is_current {
                params.model.choose(ModelChoice::User { name: model.name.clone(), hash: String::new() });
            }
        }
        if let ModelChoice::File { path, name, .. } = &current {
            ui.selectable_label(true, name).on_hover_text(path.display().to_string());
        }
        if models.is_empty() {
            let folder = folder.map_or("no models folder".to_string(), |d| d.display().to_string());
            ui.label(
                RichText::new(format!("No models of your own in {folder}")).small().color(Color32::from_gray(150)),
            );
        }
    });
    ui.horizontal(|ui| {
        let field = egui::TextEdit::singleline(&mut memory.path)
            .desired_width(SLIDER_WIDTH - 52.0)
            .hint_text("/path/model.onnx");
        let edit = ui.add(field).on_hover_text("A model file from elsewhere: its path, then Open.");
        let entered = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if ui.button("Open…").clicked() || entered {
            let path = std::path::PathBuf::from(memory.path.trim());
            memory.error = match path.is_file() {
                true => {
                    params.model.choose(ModelChoice::of_file(&path));
                    memory.path.clear();
                    None
                }
                false => Some(format!("No model file at {}", path.display())),
            };
        }
    });
    if let Some(error) = &memory.error {
        ui.label(RichText::new(error).color(Color32::from_rgb(255, 110, 100)));
    }
}

/// The chord field while it is being typed (applied with Enter or Apply), and why a text was refused.
#[derive(Debug, Default)]
pub struct ProgressionMemory {
    pub editing: Option<String>,
    pub error: Option<String>,
}

/// Writes a progression (already checked) into the project, normalized (`| Am | F | C G |`).
fn apply_progression(params: &TrioParams, text: &str, memory: &mut ProgressionMemory) {
    match Progression::parse(text) {
        Ok(progression) => {
            if let Ok(mut saved) = params.progression.write() {
                *saved = progression.text();
            }
            memory.editing = None;
            memory.error = None;
        }
        Err(e) => memory.error = Some(e),
    }
}

/// Jam: what played notes do (Follow), the channel listened to, Capture, and the chord progression.
pub fn jam_group(
    ui: &mut Ui,
    params: &TrioParams,
    setter: &ParamSetter,
    status: &EngineStatus,
    memory: &mut ProgressionMemory,
) {
    heading(ui, "Jam");
    egui::Grid::new("trio-jam").num_columns(2).spacing([10.0, 6.0]).show(ui, |ui| {
        ui.label("Follow").on_hover_text(
            "Chords: the notes you play set the harmony. Part: the notes you play are that part; the trio \
             writes the other two around them. Off: your notes pass through.",
        );
        enum_combo::<Follow>(ui, "trio-follow", setter, &params.follow);
        ui.end_row();

        ui.label("Input channel").on_hover_text("The MIDI channel Follow listens to (Any: every channel).");
        int_drag(ui, setter, &params.input_channel, 0.05);
        ui.end_row();

        let follow = params.follow.value();
        let can_capture =
            params.mode.value() == Mode::Loop && matches!(follow, Follow::Chords | Follow::Arp | Follow::Bass);
        ui.label("Capture");
        let capture = params.capture.value();
        let label = if status.capturing {
            "Recording…"
        } else if capture {
            "Armed (done)"
        } else {
            "Capture"
        };
        let response = ui.add_enabled(can_capture || capture, egui::Button::selectable(capture, label));
        let response = if can_capture {
            response.on_hover_text(
                "Play your chords through one pass of the loop from its first bar: they become the loop's \
                 progression, and the trio keeps playing over them when you let go. Click again to switch it off.",
            )
        } else {
            response.on_disabled_hover_text("Capture needs Loop mode and Follow set to Chords, Arp or Bass.")
        };
        if response.clicked() {
            set_once(setter, &params.capture, !capture);
        }
        ui.end_row();

        ui.label("Chords").on_hover_text(
            "A progression the trio plays over: one chord a bar (\"Am F C G\"), or bars between bar lines with \
             several chords spread over a bar (\"| Am | F | C G |\"). Saved with the project.",
        );
        let saved = params.progression.read().map(|t| t.clone()).unwrap_or_default();
        ui.vertical(|ui| {
            let mut text = memory.editing.clone().unwrap_or_else(|| saved.clone());
            let edit =
                ui.add(egui::TextEdit::singleline(&mut text).desired_width(SLIDER_WIDTH).hint_text("| Am | F | C G |"));
            if edit.changed() {
                memory.editing = Some(text.clone());
            }
            let entered = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            ui.horizontal(|ui| {
                if ui.button("Apply").clicked() || entered {
                    apply_progression(params, &text, memory);
                }
                if ui.add_enabled(!saved.is_empty(), egui::Button::new("Clear")).clicked() {
                    apply_progression(params, "", memory);
                }
            });
            if let Some(error) = &memory.error {
                ui.label(RichText::new(error).color(Color32::from_rgb(255, 110, 100)));
            }
        });
        ui.end_row();

        ui.label("Key");
        ui.label(status.key.clone().unwrap_or_else(|| "the model's".into()));
        ui.end_row();
    });
}

fn key_lock_combo(ui: &mut Ui, setter: &ParamSetter, param: &IntParam) {
    let name = |value: i32| match key_lock_key(value) {
        Some(key) => key_name(key),
        None => "Off".to_string(),
    };
    let current = param.value();
    egui::ComboBox::from_id_salt("trio-key-lock")
        .width(SLIDER_WIDTH)
        .selected_text(name(current))
        .height(320.0)
        .show_ui(ui, |ui| {
            for value in 0..=24 {
                if ui.selectable_label(current == value, name(value)).clicked() && current != value {
                    set_once(setter, param, value);
                }
            }
        });
}

fn key_name(key: Key) -> String {
    format!("{} {}", crate::music::phrase::NOTE_NAMES[key.tonic as usize], if key.minor { "minor" } else { "major" })
}

/// A new seed in the parameter's range, different from the current one.
fn random_seed(current: i32) -> i32 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut x = (nanos as u64) ^ 0x9e37_79b9_7f4a_7c15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    let seed = 1 + (x % 9999) as i32;
    if seed == current {
        seed % 9999 + 1
    } else {
        seed
    }
}

/// Parts: per part on/off, register (lowest and highest note), Regenerate or take again this part, Lock.
pub fn parts_group(ui: &mut Ui, params: &TrioParams, setter: &ParamSetter, link: &EditorEnd) {
    heading(ui, "Parts");
    let allowed = regenerate_allowed(params);
    egui::Grid::new("trio-parts").num_columns(6).spacing([12.0, 4.0]).show(ui, |ui| {
        for part in Part::ALL {
            let p = params.part(part);
            let locked = is_locked(params, part);
            part_label(ui, part, part_title(part));

            let on = p.on.value();
            if ui
                .selectable_label(on, if on { "On" } else { "Off" })
                .on_hover_text("Off silences the part at once and leaves it out of generation.")
                .clicked()
            {
                set_once(setter, &p.on, !on);
            }

            ui.horizontal(|ui| {
                ui.label("Low");
                int_drag(ui, setter, &p.low, 0.15).on_hover_text("Lowest note the part may play (C4 = MIDI 60).");
                ui.label("High");
                int_drag(ui, setter, &p.high, 0.15).on_hover_text("Highest note the part may play.");
            });

            let regenerate = ui.add_enabled(allowed && !locked && on, egui::Button::new("Regenerate"));
            let regenerate = if allowed && !locked && on {
                regenerate.on_hover_text(format!("New notes for the {}; the other parts stay.", part.name()))
            } else {
                regenerate.on_disabled_hover_text(if !allowed {
                    "Hold mode freezes the phrase."
                } else if locked {
                    "This part is locked: unlock it to regenerate it."
                } else {
                    "This part is off."
                })
            };
            if regenerate.clicked() {
                link.send(Command::Regenerate { part: Some(part) });
            }
            let takes_allowed = variations_allowed(params) && !locked && on;
            let takes = ui.add_enabled(takes_allowed, egui::Button::new("Takes"));
            let takes = if takes_allowed {
                takes.on_hover_text(format!(
                    "{VARIATION_COUNT} new takes of the {} at once over the other parts; flip with ◀ ▶ at the top.",
                    part.name()
                ))
            } else {
                takes.on_disabled_hover_text("Takes need Loop mode, and the part on and unlocked.")
            };
            if takes.clicked() {
                link.send(Command::Variations { part: Some(part), count: VARIATION_COUNT });
            }

            let lock_text = if locked {
                RichText::new("Locked").strong().color(Color32::from_rgb(255, 214, 120))
            } else {
                RichText::new("Lock")
            };
            if ui
                .selectable_label(locked, lock_text)
                .on_hover_text("A locked part keeps its notes when the others are regenerated.")
                .clicked()
            {
                set_locked(link, part, !locked);
            }
            ui.end_row();
        }
    });
}

/// Output: which parts leave the plugin and on which MIDI channels, and the group it is linked in.
pub fn output_group(ui: &mut Ui, params: &TrioParams, setter: &ParamSetter, status: &EngineStatus) {
    heading(ui, "Output");
    let only = params.part_output.value().only();
    egui::Grid::new("trio-output").num_columns(2).spacing([10.0, 6.0]).show(ui, |ui| {
        ui.label("Link").on_hover_text(
            "Instances in the same group play one trio: one phrase, one set of settings, one history. \
             Give each track its instance, the same group, and one part out (Ableton Live).",
        );
        enum_combo::<LinkGroup>(ui, "trio-link", setter, &params.link);
        ui.end_row();

        ui.label("Parts out").on_hover_text(
            "For hosts that merge MIDI channels (Ableton Live: one instance per track, each sending one part).",
        );
        enum_combo::<PartOutput>(ui, "trio-part-output", setter, &params.part_output);
        ui.end_row();

        for part in Part::ALL {
            ui.label(RichText::new(format!("{} channel", part_title(part))).color(part_tint(part)));
            ui.horizontal(|ui| match only {
                None => {
                    int_drag(ui, setter, &params.part(part).channel, 0.05);
                }
                Some(o) if o == part => {
                    ui.label("channel 1 (only this part)");
                }
                Some(_) => {
                    ui.label(RichText::new("not sent").color(Color32::from_gray(140)));
                }
            });
            ui.end_row();
        }
    });
    if let Some(linked) = &status.linked {
        ui.label(RichText::new(linked).small().color(Color32::from_gray(170)));
    }
}
