//! Parameters: their descriptions as the plugin reports them, lookup by name, conversions between
//! values and text, and setting values while inactive.

use super::{err, HostError, Result, TrioHost};
use crate::timeline::ParamChange;
use clack_extensions::params::{ParamInfoBuffer, ParamInfoFlags, PluginParams};
use clack_host::events::event_types::ParamValueEvent;
use clack_host::prelude::*;
use std::ffi::CString;

/// One parameter as the CLAP params extension describes it. Values are CLAP values: for nice-plug
/// that is the normalized value times the step count, so an int parameter `min..=max` goes from 0 to
/// `max - min`, an enum from 0 to `variants - 1`, a bool 0/1 and a float parameter 0..1.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamDesc {
    pub id: u32,
    pub name: String,
    pub module: String,
    pub min: f64,
    pub max: f64,
    pub default: f64,
    pub stepped: bool,
    pub hidden: bool,
    pub automatable: bool,
}

/// Converts plain int values of a parameter with a known `min..=max` range to CLAP values.
#[derive(Debug, Clone, Copy)]
pub struct IntParam {
    pub id: u32,
    pub min: i32,
    pub max: i32,
    /// The plugin's default, as a plain value.
    pub default: i32,
}

impl IntParam {
    pub fn clap(&self, plain: i32) -> f64 {
        assert!((self.min..=self.max).contains(&plain), "{plain} outside {}..={}", self.min, self.max);
        (plain - self.min) as f64
    }

    pub fn plain(&self, clap: f64) -> i32 {
        self.min + clap.round() as i32
    }

    /// A param change event at `offset` in a block.
    pub fn change(&self, plain: i32, offset: u32) -> ParamChange {
        ParamChange { offset, param_id: self.id, value: self.clap(plain) }
    }
}

impl TrioHost {
    pub(super) fn scan_params(&mut self) -> Result<Vec<ParamDesc>> {
        let handle = self.instance.plugin_handle();
        let Some(ext) = handle.get_extension::<PluginParams>() else {
            return err("plugin has no clap.params extension");
        };
        let mut out = Vec::new();
        let mut buf = ParamInfoBuffer::new();
        for i in 0..ext.count(&handle) {
            let Some(info) = ext.get_info(&handle, i, &mut buf) else {
                return err(format!("params.get_info({i}) failed"));
            };
            out.push(ParamDesc {
                id: info.id.get(),
                name: String::from_utf8_lossy(info.name).into_owned(),
                module: String::from_utf8_lossy(info.module).into_owned(),
                min: info.min_value,
                max: info.max_value,
                default: info.default_value,
                stepped: info.flags.contains(ParamInfoFlags::IS_STEPPED),
                hidden: info.flags.contains(ParamInfoFlags::IS_HIDDEN),
                automatable: info.flags.contains(ParamInfoFlags::IS_AUTOMATABLE),
            });
        }
        Ok(out)
    }

    /// Every parameter, in the plugin's order.
    pub fn params(&self) -> &[ParamDesc] {
        &self.params
    }

    /// A parameter by its display name ("Loop Length"; any case, `_` for a space: "loop_length").
    pub fn param(&self, name: &str) -> Result<&ParamDesc> {
        let loose = |p: &&ParamDesc| p.name.eq_ignore_ascii_case(&name.replace('_', " "));
        self.params.iter().find(|p| p.name == name).or_else(|| self.params.iter().find(loose)).ok_or_else(|| {
            let names: Vec<&str> = self.params.iter().filter(|p| !p.hidden).map(|p| p.name.as_str()).collect();
            HostError(format!("no parameter named {name:?}; visible parameters: {names:?}"))
        })
    }

    /// The current CLAP value of a parameter.
    pub fn param_value(&mut self, name: &str) -> Result<f64> {
        let id = self.param(name)?.id;
        let handle = self.instance.plugin_handle();
        let ext: PluginParams = handle.get_extension().ok_or_else(|| HostError("no params ext".into()))?;
        ext.get_value(&handle, ClapId::new(id)).ok_or_else(|| HostError(format!("params.get_value({name}) failed")))
    }

    /// The plugin's text for a CLAP value of a parameter.
    pub fn value_to_text(&mut self, name: &str, value: f64) -> Result<String> {
        let id = self.param(name)?.id;
        let handle = self.instance.plugin_handle();
        let ext: PluginParams = handle.get_extension().ok_or_else(|| HostError("no params ext".into()))?;
        let mut buf = [0u8; 256];
        let text = ext
            .value_to_text(&handle, ClapId::new(id), value, &mut buf)
            .map_err(|_| HostError(format!("params.value_to_text({name}, {value}) failed")))?;
        Ok(String::from_utf8_lossy(text).into_owned())
    }

    /// The CLAP value the plugin parses from `text` for a parameter.
    pub fn text_to_value(&mut self, name: &str, text: &str) -> Result<f64> {
        let id = self.param(name)?.id;
        let handle = self.instance.plugin_handle();
        let ext: PluginParams = handle.get_extension().ok_or_else(|| HostError("no params ext".into()))?;
        let c = CString::new(text).map_err(|_| HostError("text has a NUL".into()))?;
        ext.text_to_value(&handle, ClapId::new(id), &c)
            .ok_or_else(|| HostError(format!("params.text_to_value({name}, {text:?}) failed")))
    }

    /// An int parameter whose plain range the spec fixes as `min..=max`: checks that the plugin's
    /// CLAP range has exactly `max - min` steps and returns a converter.
    pub fn int_param(&self, name: &str, min: i32, max: i32) -> Result<IntParam> {
        let p = self.param(name)?;
        if !p.stepped || p.min != 0.0 || p.max != (max - min) as f64 {
            return err(format!(
                "parameter {name:?}: expected a stepped int range {min}..={max} (CLAP 0..={}), plugin reports {p:?}",
                max - min
            ));
        }
        Ok(IntParam { id: p.id, min, max, default: min + p.default.round() as i32 })
    }

    /// The CLAP value (variant index) of an enum parameter's variant, found by its display text.
    pub fn enum_value(&mut self, name: &str, variant: &str) -> Result<f64> {
        let p = self.param(name)?.clone();
        let mut seen = Vec::new();
        for i in 0..=(p.max.round() as i64) {
            let text = self.value_to_text(name, i as f64)?;
            if text == variant {
                return Ok(i as f64);
            }
            seen.push(text);
        }
        err(format!("enum parameter {name:?} has no variant {variant:?}; variants: {seen:?}"))
    }

    /// Applies parameter values while inactive, through `params.flush()`.
    pub fn flush_params_inactive(&mut self, changes: &[(u32, f64)]) -> Result<()> {
        let mut input = EventBuffer::new();
        for (id, value) in changes {
            input.push(&ParamValueEvent::new(0, ClapId::new(*id), Pckn::match_all(), *value));
        }
        let mut output = EventBuffer::new();
        let ext: PluginParams =
            self.instance.plugin_handle().get_extension().ok_or_else(|| HostError("no params ext".into()))?;
        let Some(mut inactive) = self.instance.inactive_plugin_handle() else {
            return err("flush_params_inactive needs an inactive plugin");
        };
        ext.flush(&mut inactive, &InputEvents::from_buffer(&input), &mut OutputEvents::from_buffer(&mut output));
        self.service_main_thread();
        Ok(())
    }
}
