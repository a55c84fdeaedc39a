//! A person's decisions on the tool calls a run waits on, from any process: each is an
//! event in the run's log, which the next resume acts on.

use crate::session::Session;
use crate::{ErrorKind, SessionError};
use cordon_core::state::Awaiting;
use cordon_core::{EventPayload, RunId, RunState};

/// One call an approval covered.
#[derive(Debug, Clone)]
pub struct Approved {
    /// The call's id.
    pub call_id: String,
    /// What was waiting: the tool, its arguments, the rules that asked.
    pub waiting: Awaiting,
    /// The rules approved for the rest of the run (with `always`; empty otherwise or when
    /// the request recorded none).
    pub always_rules: Vec<String>,
}

impl Session {
    /// The calls a run waits on, by call id.
    pub async fn waiting(
        &self,
        run: &str,
    ) -> Result<(RunId, std::collections::BTreeMap<String, Awaiting>), SessionError> {
        let (run_id, state) = self.waiting_state(run).await?;
        Ok((run_id, state.awaiting))
    }

    async fn waiting_state(&self, run: &str) -> Result<(RunId, RunState), SessionError> {
        let run_id = self.store.resolve(run).await?;
        self.require_intact(&run_id).await?;
        let state = RunState::fold(&self.store.events(&run_id).await?)?;
        if state.awaiting.is_empty() {
            return Err(SessionError::bad_input(
                format!("run {run_id} is not waiting for any approval"),
                "`cordon approvals` lists every call that waits for a person",
            ));
        }
        Ok((run_id, state))
    }

    /// Approves one waiting call (`call`), or every one (`None`); with `always`, also every
    /// later call in the run that matches exactly the rules this one matched. `by` names the
    /// person.
    pub async fn approve(
        &self,
        run: &str,
        call: Option<&str>,
        always: bool,
        by: &str,
    ) -> Result<(RunId, Vec<Approved>), SessionError> {
        // Decided while no process drives the run, on the state as it is then.
        let run_id = self.store.resolve(run).await?;
        let _owner = self.store.claim_run(&run_id)?;
        let (run_id, state) = self.waiting_state(run_id.as_str()).await?;
        let targets: Vec<(String, Awaiting)> = match call {
            Some(c) => match state.awaiting.get(c) {
                Some(v) => vec![(c.to_string(), v.clone())],
                None => return Err(not_waiting_on(&run_id, c, &state)),
            },
            None => state
                .awaiting
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        // The policy names who may approve some calls; the person must be one of them.
        for (call_id, waiting) in &targets {
            if !waiting.approvers.is_empty() && !waiting.approvers.iter().any(|a| a == by) {
                return Err(SessionError::bad_input(
                    format!(
                        "{by} may not approve call {call_id} of run {run_id}: the policy lets only {} approve it",
                        waiting.approvers.join(", ")
                    ),
                    "ask one of them, or approve as one of them with --as NAME",
                ));
            }
        }
        let mut log = self.store.open_run(&run_id).await?;
        let mut approved = Vec::new();
        for (call_id, waiting) in targets {
            // An "always" covers the rules this call matched, and nothing wider.
            let always_rules = if always {
                waiting.rules.clone()
            } else {
                Vec::new()
            };
            log.append(&EventPayload::ApprovalGranted {
                call_id: call_id.clone(),
                arguments_hash: waiting.arguments_hash.clone(),
                by: by.to_string(),
                always,
                always_rules: always_rules.clone(),
            })
            .await?;
            approved.push(Approved {
                call_id,
                waiting,
                always_rules,
            });
        }
        Ok((run_id, approved))
    }

    /// Rejects a waiting call; the model is told, with `message` if given. Returns the run's
    /// full id and what was waiting.
    pub async fn reject(
        &self,
        run: &str,
        call: &str,
        message: &str,
        by: &str,
    ) -> Result<(RunId, Awaiting), SessionError> {
        let run_id = self.store.resolve(run).await?;
        let _owner = self.store.claim_run(&run_id)?;
        let (run_id, state) = self.waiting_state(run_id.as_str()).await?;
        let Some(waiting) = state.awaiting.get(call).cloned() else {
            return Err(not_waiting_on(&run_id, call, &state));
        };
        let mut log = self.store.open_run(&run_id).await?;
        log.append(&EventPayload::ApprovalRejected {
            call_id: call.to_string(),
            by: by.to_string(),
            message: message.to_string(),
        })
        .await?;
        Ok((run_id, waiting))
    }
}

/// The error for a call the run is not waiting on, naming those it is.
fn not_waiting_on(run_id: &RunId, call: &str, state: &RunState) -> SessionError {
    let shown: String = call.chars().take(80).collect();
    SessionError::new(
        ErrorKind::BadInput,
        format!("run {run_id} is not waiting on a call '{shown}'"),
    )
    .hint(format!(
        "it waits on: {}",
        state
            .awaiting
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    ))
}
