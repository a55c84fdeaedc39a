//! The model-facing `apply_patch` tool: a custom (free-form) tool with a grammar for
//! Responses models, a function taking the patch text for Chat Completions models.

use super::target::apply_in_sandbox;
use crate::{Effects, Tool, ToolContext, ToolError, ToolFuture};
use cordon_core::ToolSpec;
use cordon_sandbox::Sandbox;
use std::sync::Arc;

/// The patch format as a Lark grammar, so providers that constrain custom tools can.
const GRAMMAR: &str = r#"start: begin_patch hunk+ end_patch
begin_patch: "*** Begin Patch" LF
end_patch: "*** End Patch" LF?
hunk: add_hunk | delete_hunk | update_hunk
add_hunk: "*** Add File: " filename LF add_line+
delete_hunk: "*** Delete File: " filename LF
update_hunk: "*** Update File: " filename LF change_move? change
filename: /(.+)/
add_line: "+" /(.*)/ LF
change_move: "*** Move to: " filename LF
change: (change_context | change_line)+ eof_line?
change_context: ("@@" | "@@ " /(.+)/) LF
change_line: ("+" | "-" | " ") /(.*)/ LF
eof_line: "*** End of File" LF
%import common.LF
"#;

const DESCRIPTION: &str = "Edits files in the workspace with a patch. Format: '*** Begin Patch', then for each file '*** Add File: PATH' (every line prefixed '+'), '*** Delete File: PATH', or '*** Update File: PATH' (optionally '*** Move to: NEW_PATH') followed by hunks: '@@ LINE' lines name an anchor line to find first (several narrow it down), then lines prefixed ' ' (context, about 3 before and after), '-' (remove) or '+' (add); '*** End of File' ties a hunk to the file's end. End with '*** End Patch'. Paths are relative to the workspace. The patch applies entirely or not at all.";

/// `apply_patch` over a sandbox.
pub struct ApplyPatch {
    sandbox: Arc<dyn Sandbox>,
}

impl ApplyPatch {
    /// The tool, editing files in `sandbox`.
    pub fn new(sandbox: Arc<dyn Sandbox>) -> Arc<Self> {
        Arc::new(ApplyPatch { sandbox })
    }
}

/// What the model is told about `apply_patch`: a custom tool with the patch grammar.
pub fn spec() -> ToolSpec {
    ToolSpec::custom(
        "apply_patch",
        DESCRIPTION,
        Some(serde_json::json!({ "type": "grammar", "syntax": "lark", "definition": GRAMMAR })),
    )
}

impl Tool for ApplyPatch {
    fn spec(&self) -> ToolSpec {
        spec()
    }

    fn effects(&self) -> Effects {
        Effects::Workspace
    }

    fn call<'a>(&'a self, _ctx: &'a ToolContext, input: &'a str) -> ToolFuture<'a> {
        Box::pin(async move {
            apply_in_sandbox(self.sandbox.as_ref(), input)
                .await
                .map(|summary| format!("Done. {}", summary.join(", ")).into())
                .map_err(|e| ToolError::Failed(format!("{e}. No file was changed.")))
        })
    }
}
