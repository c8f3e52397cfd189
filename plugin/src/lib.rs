//! Neural Trio: a MIDI effect that streams lead, arp and bass composed by a neural model in time
//! with the host. This file only wires the pieces together:
//!
//! - `playback/` is the audio thread (`process()`): scheduling, note-offs, transport;
//! - `generator/` is the background thread that owns ONNX Runtime and the sampler (one per group of
//!   linked instances; an instance with Link Off is a group of its own);
//! - `link.rs` is the only thing the threads share: one end per thread (`AudioEnd`, `GeneratorEnd`,
//!   `EditorEnd`) over lock-free queues and atomics;
//! - `music/` is the model contract: parts, phrases, the token vocabulary, MIDI files.

pub mod generator;
pub mod music;

#[cfg(feature = "plugin")]
pub(crate) mod editor;
#[cfg(feature = "plugin")]
pub mod link;
#[cfg(feature = "plugin")]
pub mod params;
#[cfg(feature = "plugin")]
pub(crate) mod persist;
#[cfg(feature = "plugin")]
pub(crate) mod playback;

#[cfg(feature = "plugin")]
pub use plugin::NeuralTrio;

#[cfg(feature = "plugin")]
mod plugin {
    use crate::generator::group::{self, Member};
    use crate::link::{AudioEnd, EditorEnd};
    use crate::music::Part;
    use crate::params::GroupKnobs;
    use crate::params::TrioParams;
    use crate::playback::input::{InputNote, InputRouter, Route, MAX_PLAYED_PER_BLOCK};
    use crate::playback::{BlockInput, BlockSettings, EventKind, Playback};
    use nice_plug::midi::{Channel, Key as MidiKey, VoiceID};
    use nice_plug::prelude::*;
    use std::sync::Arc;

    pub struct NeuralTrio {
        params: Arc<TrioParams>,
        /// This instance's end of the link to its group's generator.
        link: AudioEnd,
        /// Handed (cloned) to every editor window.
        editor_link: EditorEnd,
        /// What the group sees of this instance; joins on first activation.
        member: Member,
        /// Audio-thread state: bar table, sounding notes, timeline.
        playback: Playback,
        /// Joined its group (which starts the group's generator) on first activation, not at
        /// instantiation (hosts instantiate to scan).
        joined: bool,
        /// The Regenerate parameter as last block saw it (None before the first block: a project saved
        /// with it on does not regenerate when it loads).
        regenerate_switch: Option<bool>,
        /// Last block's generation knobs, to tell the generator (and Offline waits) they changed.
        last_knobs: Option<GroupKnobs>,
        /// The model choice's revision as last block saw it: a new choice makes the bars ahead stale.
        last_model_revision: Option<u32>,
        sample_rate: f32,
        offline: bool,
        /// Where played notes leave the plugin (a followed part's channel), so each note-off follows its on.
        router: InputRouter,
        /// The part the player played as of the last block: when Follow leaves it, the played notes
        /// held on its channel are ended (the model's part takes the channel back).
        followed: Option<Part>,
        /// This block's played note events, kept so Follow hears them before the block's ticks play.
        /// Fixed capacity (no allocation): a block with more played note events than that loses the rest.
        played: Vec<InputNote>,
        /// Test hook for the allocation check's negative control (debug alloc-check builds only).
        allocate_in_process: bool,
    }

    impl Default for NeuralTrio {
        fn default() -> Self {
            let (link, generator_link, editor_link) = crate::link::channel();
            let member = Member::new(generator_link, Arc::new(TrioParams::default()));
            NeuralTrio {
                params: member.params.clone(),
                link,
                editor_link,
                member,
                playback: Playback::default(),
                joined: false,
                regenerate_switch: None,
                last_knobs: None,
                last_model_revision: None,
                sample_rate: 48_000.0,
                offline: false,
                router: InputRouter::default(),
                followed: None,
                played: Vec::with_capacity(MAX_PLAYED_PER_BLOCK),
                allocate_in_process: cfg!(feature = "assert_process_allocs")
                    && std::env::var_os("NEURAL_TRIO_TEST_ALLOCATE_IN_PROCESS").is_some(),
            }
        }
    }

    impl Drop for NeuralTrio {
        fn drop(&mut self) {
            // The last member of a group ends its generator (joined before the library can unload).
            group::leave(self.member.id);
        }
    }

    impl Plugin for NeuralTrio {
        const NAME: &'static str = "Neural Trio";
        const VENDOR: &'static str = "Neural Trio";
        const URL: &'static str = "https://example.invalid/neural-trio";
        const EMAIL: &'static str = "support@example.invalid";
        const VERSION: &'static str = env!("CARGO_PKG_VERSION");

        const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[
            // A pure MIDI effect.
            AudioIOLayout { main_input_channels: None, main_output_channels: None, ..AudioIOLayout::const_default() },
            // Stereo pass-through, for hosts (Ableton Live) that refuse plugins without audio.
            AudioIOLayout {
                main_input_channels: NonZeroU32::new(2),
                main_output_channels: NonZeroU32::new(2),
                ..AudioIOLayout::const_default()
            },
        ];
        // Notes only: CC input would expose thousands of hidden parameters that hosts replay.
        const MIDI_INPUT: MidiConfig = MidiConfig::Basic;
        const MIDI_OUTPUT: MidiConfig = MidiConfig::Basic;
        const SAMPLE_ACCURATE_AUTOMATION: bool = false;

        type Editor = crate::editor::TrioEditor;
        type SysExMessage = ();
        type BackgroundTask = ();

        fn params(&self) -> Arc<dyn Params> {
            self.params.clone()
        }

        fn filter_state(state: &mut PluginState) {
            // Saved before there was a model choice: the shipped model, as the project was made with.
            crate::persist::add_missing_model_field(&mut state.fields);
        }

        fn editor(&mut self, _async_executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
            crate::editor::create_editor(self.params.clone(), self.editor_link.clone())
        }

        fn activate(
            &mut self,
            _audio_io_layout: &AudioIOLayout,
            buffer_config: &BufferConfig,
            _context: &mut impl ActivateContext<Self>,
        ) -> bool {
            self.sample_rate = buffer_config.sample_rate;
            self.offline = buffer_config.process_mode == ProcessMode::Offline;
            if !std::mem::replace(&mut self.joined, true) {
                group::join(self.member.clone(), crate::generator::worker::spawn);
            }
            self.playback.reset();
            true
        }

        fn reset(&mut self) {
            self.playback.reset();
        }

        fn process(
            &mut self,
            buffer: &mut Buffer,
            _aux: &mut AuxiliaryBuffers,
            context: &mut impl ProcessContext<Self>,
        ) -> ProcessStatus {
            if self.allocate_in_process {
                // Deliberate: proves the allocation check catches an allocation here.
                std::hint::black_box(Box::new(self.sample_rate));
            }
            // Audio passes through (stereo layout); subnormals are flushed on the way, as strict hosts expect.
            for channel in buffer.as_slice() {
                for sample in channel.iter_mut().filter(|s| s.is_subnormal()) {
                    *sample = 0.0;
                }
            }
            self.link.count_block();
            let knobs = self.params.knobs();
            let regenerate = self.params.regenerate.value();
            let pressed = self.regenerate_switch.replace(regenerate) == Some(false) && regenerate;
            if pressed {
                self.link.press_regenerate();
            }
            // A new model choice (the editor, a project load) takes over at the next bar: an offline
            // block waits for the bars the chosen model makes.
            let model_revision = self.params.model.revision();
            let model_changed = self.last_model_revision.replace(model_revision) != Some(model_revision);
            if self.last_knobs != Some(knobs) || pressed || model_changed {
                self.last_knobs = Some(knobs);
                self.link.bump_settings_rev();
            }

            let transport = context.transport();
            let input = BlockInput {
                playing: transport.playing,
                tempo_bpm: transport.tempo,
                pos_beats: transport.tempo.and(transport.pos_beats()),
                samples: buffer.samples() as u32,
                sample_rate: self.sample_rate,
                offline: self.offline,
                loop_range_beats: transport.loop_range_beats(),
            };
            let block_settings = self.params.block_settings(self.link.capture_armed());
            // Follow left a part: the played notes held on its channel end first (the model's part
            // takes the channel back this block).
            if block_settings.followed != self.followed {
                self.followed = block_settings.followed;
                self.router.release_rerouted(|channel, pitch| {
                    let off =
                        crate::playback::OutEvent { offset: 0, kind: EventKind::NoteOff, channel, pitch, velocity: 0 };
                    send(context, &off);
                });
            }
            // The notes played this block (CC and other input is not passed on: see MIDI_INPUT), each
            // routed as it arrives, so the router always knows what is held.
            let events = std::iter::from_fn(|| context.next_event());
            let (params, settings) = (&self.params, &block_settings);
            self.router.read_block(events, &mut self.played, |note| route_for_block(params, settings, note));
            let generated = self.playback.process(&self.link, &input, &block_settings, &self.played);

            // Merge the notes the user plays (passed through, or on a followed part's channel) with
            // ours, in time order.
            let mut generated = generated.iter().peekable();
            for played in &self.played {
                while let Some(ours) = generated.next_if(|g| g.offset <= played.offset) {
                    send(context, ours);
                }
                if let Some(channel) = played.out_channel {
                    let kind = if played.on { EventKind::NoteOn } else { EventKind::NoteOff };
                    let velocity = played.velocity;
                    let event = crate::playback::OutEvent {
                        offset: played.offset,
                        kind,
                        channel,
                        pitch: played.pitch,
                        velocity,
                    };
                    send(context, &event);
                }
            }
            for ours in generated {
                send(context, ours);
            }
            ProcessStatus::KeepAlive
        }
    }

    /// Where a played note-on leaves: a followed part's notes on that part's channel (or not at all when
    /// the part is routed to another instance or off); everything else as it came.
    fn route_for_block(params: &TrioParams, settings: &BlockSettings, note: &InputNote) -> Route {
        match settings.followed {
            Some(part) if settings.listen.hears(note.channel) => {
                let only = params.part_output.value().only();
                if params.part(part).on.value() && only.is_none_or(|o| o == part) {
                    Route::Channel(settings.parts[part.index()].channel)
                } else {
                    Route::Drop
                }
            }
            _ => Route::Through,
        }
    }

    fn send(context: &mut impl ProcessContext<NeuralTrio>, event: &crate::playback::OutEvent) {
        let (channel, key) = (Channel::Number(event.channel), MidiKey::Number(event.pitch));
        let note = match event.kind {
            EventKind::NoteOn => NoteEvent::NoteOn {
                timing: event.offset,
                voice_id: VoiceID::Wildcard,
                channel,
                key,
                velocity: event.velocity as f32 / 127.0,
            },
            EventKind::NoteOff => {
                NoteEvent::NoteOff { timing: event.offset, voice_id: VoiceID::Wildcard, channel, key, velocity: 0.0 }
            }
        };
        let _ = context.try_send_event(note);
    }

    impl ClapPlugin for NeuralTrio {
        const CLAP_ID: &'static str = "com.neural-trio.neural-trio";
        const CLAP_DESCRIPTION: Option<&'static str> =
            Some("Neural lead, arp and bass, streamed in time with the host");
        const CLAP_MANUAL_URL: Option<&'static str> = None;
        const CLAP_SUPPORT_URL: Option<&'static str> = None;
        const CLAP_FEATURES: &'static [ClapFeature] = &[ClapFeature::NoteEffect, ClapFeature::Utility];
    }

    impl Vst3Plugin for NeuralTrio {
        const VST3_CLASS_ID: [u8; 16] = *b"NeuralTrioMidiFx";
        const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] = &[Vst3SubCategory::Instrument, Vst3SubCategory::Tools];
    }

    nice_export_clap!(NeuralTrio);
    nice_export_vst3!(NeuralTrio);
}
