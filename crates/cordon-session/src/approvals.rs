//! A person's decisions on the tool calls a run waits on, from any process: each is an
//! event in the run's log, which the next resume acts on.

use crate::session::Session;
use crate::{ErrorKind, SessionError};
use cordon_core::state::Awaiting;
use cordon_core::{EventPayload, RunId, RunState};
use cordon_policy::Verdict;

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
        if let (true, Some(why)) = (state.awaiting.is_empty(), &state.waiting_on) {
            // The tree waits for one of its sub-agents' calls.
            return Err(SessionError::bad_input(
                format!("run {run_id} waits for one of its sub-agents, not for a call of its own"),
                why.clone(),
            ));
        }
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

impl Session {
    /// Lets run `run`'s sandbox reach `host` for the rest of the run, through its egress
    /// proxy: what the policy leaves to a person (`ask`) or to its default for unnamed
    /// hosts. A host a rule denies, or a private address no rule names, stays refused. The
    /// grant is an event in the run's log; the next `resume` acts on it. Returns the run's
    /// full id and the host as requests name it.
    pub async fn grant_host(
        &self,
        run: &str,
        host: &str,
        by: &str,
    ) -> Result<(RunId, String), SessionError> {
        let host = cordon_policy::normalize_host(host).map_err(|e| {
            SessionError::bad_input(e, "for example: cordon approve RUN --host pypi.org")
        })?;
        let run_id = self.store.resolve(run).await?;
        let _owner = self.store.claim_run(&run_id)?;
        self.require_intact(&run_id).await?;
        let state = RunState::fold(&self.store.events(&run_id).await?)?;
        if state.status == cordon_core::RunStatus::Completed {
            return Err(SessionError::bad_input(
                format!("run {run_id} has completed: a host allowed now would never be used"),
                "allow hosts in the policy of the next run",
            ));
        }
        let Some(record) = &state.policy else {
            return Err(SessionError::bad_input(
                format!(
                    "run {run_id} runs under no policy, so its sandbox has no network to allow a host on"
                ),
                "start the run with --policy (a pack or a file) whose [[network]] rules or defaults let requests out",
            ));
        };
        let policy = crate::policy::recorded(record, run_id.as_str())?;
        // What a grant cannot change is said now, not discovered by the model later.
        for port in [443, 80] {
            let decision = policy.decide_request(&cordon_policy::Request {
                host: host.clone(),
                port,
                method: None,
            });
            let hard: Vec<String> = decision
                .reasons
                .iter()
                .filter(|r| r.verdict == Verdict::Deny && r.rule != "network:default")
                .map(|r| r.rule.clone())
                .collect();
            if hard.iter().any(|r| r == "network:private-address") {
                return Err(SessionError::bad_input(
                    format!(
                        "{host} is a private, loopback or link-local address (or names one), which only a policy rule that names it can open"
                    ),
                    "name it in a [[network]] rule of the policy, and resume with that policy",
                ));
            }
            if !hard.is_empty() {
                return Err(SessionError::bad_input(
                    format!(
                        "the policy of run {run_id} refuses {host} ({}), and a person's grant cannot override a rule's deny",
                        hard.join(", ")
                    ),
                    "change the policy, or resume with another --policy that allows the host",
                ));
            }
            let approvers = decision.approvers();
            if !approvers.is_empty() && !approvers.iter().any(|a| a == by) {
                return Err(SessionError::bad_input(
                    format!(
                        "{by} may not allow {host} for run {run_id}: the policy lets only {} decide",
                        approvers.join(", ")
                    ),
                    "ask one of them, or decide as one of them with --as NAME",
                ));
            }
        }
        if state.granted_hosts.contains(&host) {
            return Err(SessionError::bad_input(
                format!("{host} is already allowed for run {run_id}"),
                format!("`cordon resume {run_id}` continues it"),
            ));
        }
        let mut log = self.store.open_run(&run_id).await?;
        log.append(&EventPayload::HostGranted {
            host: host.clone(),
            by: by.to_string(),
        })
        .await?;
        Ok((run_id, host))
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
