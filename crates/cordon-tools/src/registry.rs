//! One registry of tools: each declares its name, description, schema, effects and what it
//! needs from a run, and is built from the registry when a run starts. The built-in tools
//! register here exactly as user tools do.
//!
//! ```
//! use cordon_tools::registry::{Registry, ToolEnv};
//! use cordon_tools::{FunctionTool, ToolError};
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//! use std::sync::Arc;
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct Shout {
//!     /// What to shout.
//!     text: String,
//! }
//!
//! let mut tools = Registry::builtin();
//! tools
//!     .add(Arc::new(FunctionTool::new("shout", "Upper-cases text.", |a: Shout| async move {
//!         Ok::<_, ToolError>(a.text.to_uppercase())
//!     })))
//!     .unwrap();
//! let names = vec!["calculator".to_string(), "shout".to_string()];
//! assert!(!tools.needs_sandbox(&names).unwrap());
//! let built = tools.build(&names, &ToolEnv::without_sandbox()).unwrap();
//! assert_eq!(built.len(), 2);
//! ```

use crate::shell::{EXEC_DESCRIPTION, ExecArgs, ShellTools, WRITE_DESCRIPTION, WriteArgs};
use crate::{Effects, Tool};
use cordon_core::ToolSpec;
use cordon_sandbox::Sandbox;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// What a tool needs from a run before it can be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Nothing: it can be offered in any run.
    Nothing,
    /// The run's sandbox: its calls run commands or touch files there.
    Sandbox,
}

/// What a run offers the tools built for it.
pub struct ToolEnv {
    sandbox: Option<Arc<dyn Sandbox>>,
    command_timeout: Duration,
    shell: OnceLock<Arc<ShellTools>>,
}

impl ToolEnv {
    /// A run with a sandbox; no command may run longer than `command_timeout`.
    pub fn with_sandbox(sandbox: Arc<dyn Sandbox>, command_timeout: Duration) -> Self {
        ToolEnv {
            sandbox: Some(sandbox),
            command_timeout,
            shell: OnceLock::new(),
        }
    }

    /// A run without a sandbox: only tools that need nothing can be built.
    pub fn without_sandbox() -> Self {
        ToolEnv {
            sandbox: None,
            command_timeout: Duration::ZERO,
            shell: OnceLock::new(),
        }
    }

    /// The run's sandbox, if it has one.
    pub fn sandbox(&self) -> Option<&Arc<dyn Sandbox>> {
        self.sandbox.as_ref()
    }

    /// The run's shell sessions, shared by `exec_command` and `write_stdin` (so a session one
    /// starts, the other can talk to).
    pub fn shell(&self) -> Option<&Arc<ShellTools>> {
        let sandbox = self.sandbox.as_ref()?;
        Some(
            self.shell
                .get_or_init(|| ShellTools::new(sandbox.clone(), self.command_timeout)),
        )
    }
}

/// Builds a registered tool for a run; `None` when the run lacks what the tool needs.
pub type BuildTool = dyn Fn(&ToolEnv) -> Option<Arc<dyn Tool>> + Send + Sync;

/// One tool as the registry knows it.
#[derive(Clone)]
pub struct Registration {
    /// What the model is told: name, description, parameters.
    pub spec: ToolSpec,
    /// The most a call can change (a sandbox's tools may report less when its sandbox keeps
    /// them to the workspace).
    pub effects: Effects,
    /// What the tool needs from the run.
    pub needs: Needs,
    build: Arc<BuildTool>,
}

impl Registration {
    /// A tool built for each run by `build`.
    pub fn new(
        spec: ToolSpec,
        effects: Effects,
        needs: Needs,
        build: impl Fn(&ToolEnv) -> Option<Arc<dyn Tool>> + Send + Sync + 'static,
    ) -> Self {
        Registration {
            spec,
            effects,
            needs,
            build: Arc::new(build),
        }
    }

    /// A tool that needs nothing from the run: the same instance serves every run.
    pub fn shared(tool: Arc<dyn Tool>) -> Self {
        let (spec, effects) = (tool.spec(), tool.effects());
        Registration::new(spec, effects, Needs::Nothing, move |_| Some(tool.clone()))
    }

    /// The tool's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }
}

/// Why a registry refused a tool or could not build the ones asked for.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RegistryError {
    /// No tool has this name.
    #[error("unknown tool '{name}'; the tools available are: {}", known.join(", "))]
    Unknown {
        /// The name asked for (cut to 80 characters).
        name: String,
        /// Every registered name.
        known: Vec<String>,
    },
    /// A tool of this name is registered already.
    #[error("a tool named '{0}' is registered already")]
    Duplicate(String),
    /// The tool needs a sandbox and the run has none.
    #[error("the tool '{0}' runs in a sandbox, and this run has none")]
    NeedsSandbox(String),
}

/// The tools a run may be given, by name, in the order they were registered.
#[derive(Clone, Default)]
pub struct Registry {
    tools: Vec<Registration>,
}

impl Registry {
    /// A registry with no tools.
    pub fn empty() -> Self {
        Registry::default()
    }

    /// cordon's built-in tools: `calculator` and `current_time` (need nothing);
    /// `exec_command`, `write_stdin`, `apply_patch` and `view_image` (need a sandbox).
    pub fn builtin() -> Self {
        let mut r = Registry::empty();
        let tools = [
            Registration::shared(crate::builtin::calculator()),
            Registration::shared(crate::builtin::current_time()),
            Registration::new(
                ToolSpec::function(
                    "exec_command",
                    EXEC_DESCRIPTION,
                    crate::function::parameters_schema::<ExecArgs>(),
                ),
                Effects::External,
                Needs::Sandbox,
                |env| Some(env.shell()?.tools()[0].clone()),
            ),
            Registration::new(
                ToolSpec::function(
                    "write_stdin",
                    WRITE_DESCRIPTION,
                    crate::function::parameters_schema::<WriteArgs>(),
                ),
                Effects::External,
                Needs::Sandbox,
                |env| Some(env.shell()?.tools()[1].clone()),
            ),
            Registration::new(
                crate::patch::spec(),
                Effects::Workspace,
                Needs::Sandbox,
                |env| {
                    let tool: Arc<dyn Tool> = crate::patch::ApplyPatch::new(env.sandbox()?.clone());
                    Some(tool)
                },
            ),
            Registration::new(
                ToolSpec::function(
                    "view_image",
                    crate::image::DESCRIPTION,
                    crate::function::parameters_schema::<crate::image::ViewImageArgs>(),
                ),
                Effects::None,
                Needs::Sandbox,
                |env| Some(crate::image::view_image(env.sandbox()?.clone())),
            ),
        ];
        for t in tools {
            r.register(t).expect("built-in tool names are distinct");
        }
        r
    }

    /// Adds a tool; its name must be new.
    pub fn register(&mut self, tool: Registration) -> Result<&mut Self, RegistryError> {
        if self.get(tool.name()).is_some() {
            return Err(RegistryError::Duplicate(tool.name().to_string()));
        }
        self.tools.push(tool);
        Ok(self)
    }

    /// Adds a tool that needs nothing from the run (see [`Registration::shared`]).
    pub fn add(&mut self, tool: Arc<dyn Tool>) -> Result<&mut Self, RegistryError> {
        self.register(Registration::shared(tool))
    }

    /// The registered tool called `name`.
    pub fn get(&self, name: &str) -> Option<&Registration> {
        self.tools.iter().find(|t| t.name() == name)
    }

    /// Every registered name, in order.
    pub fn names(&self) -> Vec<String> {
        self.tools.iter().map(|t| t.name().to_string()).collect()
    }

    /// Every registration, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Registration> {
        self.tools.iter()
    }

    /// Whether any of these tools needs a sandbox; unknown names are an error.
    pub fn needs_sandbox(&self, names: &[String]) -> Result<bool, RegistryError> {
        let mut any = false;
        for name in names {
            any |= self.find(name)?.needs == Needs::Sandbox;
        }
        Ok(any)
    }

    /// Builds these tools for a run, in the order given.
    pub fn build(
        &self,
        names: &[String],
        env: &ToolEnv,
    ) -> Result<Vec<Arc<dyn Tool>>, RegistryError> {
        names
            .iter()
            .map(|name| {
                let r = self.find(name)?;
                (r.build)(env).ok_or_else(|| RegistryError::NeedsSandbox(name.clone()))
            })
            .collect()
    }

    fn find(&self, name: &str) -> Result<&Registration, RegistryError> {
        self.get(name).ok_or_else(|| RegistryError::Unknown {
            name: name.chars().take(80).collect(),
            known: self.names(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_declare_specs_effects_and_needs() {
        let r = Registry::builtin();
        assert_eq!(
            r.names(),
            [
                "calculator",
                "current_time",
                "exec_command",
                "write_stdin",
                "apply_patch",
                "view_image"
            ]
        );
        let exec = r.get("exec_command").unwrap();
        assert_eq!(exec.needs, Needs::Sandbox);
        assert_eq!(exec.effects, Effects::External);
        match &exec.spec.kind {
            cordon_core::ToolKind::Function { parameters, .. } => {
                assert_eq!(parameters["properties"]["cmd"]["type"], "string")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.get("calculator").unwrap().needs, Needs::Nothing);
        assert_eq!(r.get("apply_patch").unwrap().effects, Effects::Workspace);
    }

    #[test]
    fn unknown_duplicate_and_unmet_needs_are_errors() {
        let mut r = Registry::builtin();
        let err = r.needs_sandbox(&["calculatr".into()]).unwrap_err();
        assert!(
            err.to_string().contains("calculator, current_time"),
            "{err}"
        );
        assert_eq!(
            r.add(crate::builtin::calculator()).err(),
            Some(RegistryError::Duplicate("calculator".into()))
        );
        let env = ToolEnv::without_sandbox();
        assert_eq!(
            r.build(&["view_image".into()], &env).err(),
            Some(RegistryError::NeedsSandbox("view_image".into()))
        );
        assert!(r.needs_sandbox(&["apply_patch".into()]).unwrap());
        let built = r.build(&["current_time".into()], &env).unwrap();
        assert_eq!(built[0].spec().name, "current_time");
    }

    #[test]
    fn a_registration_spec_matches_the_tool_it_builds() {
        let r = Registry::builtin();
        let env = ToolEnv::without_sandbox();
        for name in ["calculator", "current_time"] {
            let built = r.build(&[name.into()], &env).unwrap();
            assert_eq!(built[0].spec(), r.get(name).unwrap().spec);
        }
    }
}
