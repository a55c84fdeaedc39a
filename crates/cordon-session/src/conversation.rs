//! Conversations across runs: a new run that starts from the history of an earlier, ended
//! one (`cordon run --continue RUN`), or from the newest run of a named conversation
//! (`--conversation NAME`). The new run records the history it starts from
//! (`conversation_continued`), so its own log is whole; the earlier run records the link
//! (`continued_by`).

use crate::{ErrorKind, Session, SessionError};
use cordon_core::{EventPayload, Item, RunId, RunStatus};

/// The longest conversation name.
const MAX_NAME: usize = 100;

/// Where a new run's conversation comes from.
pub(crate) struct Continuation {
    /// The run it carries on (none: the conversation's first run).
    from: Option<RunId>,
    /// The conversation's name.
    conversation: Option<String>,
    /// The history carried over.
    items: Vec<Item>,
}

impl Continuation {
    /// The event the new run records before its task.
    pub(crate) fn event(&self) -> EventPayload {
        EventPayload::ConversationContinued {
            from: self.from.as_ref().map(|r| r.as_str().to_string()),
            conversation: self.conversation.clone(),
            items: self.items.clone(),
        }
    }

    /// Records in the earlier run that `run` carries it on.
    pub(crate) async fn link(
        &self,
        store: &cordon_store::Store,
        run: &RunId,
    ) -> Result<(), SessionError> {
        let Some(from) = &self.from else {
            return Ok(());
        };
        // Its owner lock, as `approve` takes it: nobody else appends meanwhile.
        let _owner = store.claim_run(from)?;
        let mut log = store.open_run(from).await?;
        log.append(&EventPayload::ContinuedBy {
            run: run.as_str().to_string(),
        })
        .await?;
        Ok(())
    }
}

impl Session {
    /// What a new run continues: the run `continues` names (`last`, an id or a piece of
    /// one), or the newest run of the conversation `conversation` (a new conversation when
    /// there is none yet).
    pub(crate) async fn continuation(
        &self,
        continues: Option<&str>,
        conversation: Option<&str>,
    ) -> Result<Option<Continuation>, SessionError> {
        if let Some(name) = conversation {
            check_name(name)?;
        }
        let from = match (continues, conversation) {
            (None, None) => return Ok(None),
            (Some(run), _) => Some(self.store().resolve(run).await?),
            (None, Some(name)) => self.store().latest_in_conversation(name).await?,
        };
        let Some(from) = from else {
            return Ok(Some(Continuation {
                from: None,
                conversation: conversation.map(str::to_string),
                items: Vec::new(),
            }));
        };
        self.require_intact(&from).await?;
        let events = self.store().events(&from).await?;
        let state = cordon_core::RunState::fold(&events)?;
        if let Some(tripped) = &state.tripped {
            return Err(SessionError::bad_input(
                format!(
                    "a guardrail stopped run {from} ({tripped}): its history holds what was refused, and is not carried on"
                ),
                "start a new conversation, or continue the run before it",
            ));
        }
        let status = self.store().live_status(&from, state.status);
        if !matches!(
            status,
            RunStatus::Completed | RunStatus::Failed | RunStatus::BudgetExceeded
        ) {
            return Err(SessionError::bad_input(
                format!(
                    "run {from} is {}: only a run that has ended can be continued",
                    status.as_str()
                ),
                format!("`cordon resume {from}` carries it on where it stopped"),
            ));
        }
        // A run of a named conversation passes the name on.
        let named = events.iter().find_map(|e| match e.typed() {
            Ok(EventPayload::ConversationContinued { conversation, .. }) => conversation,
            _ => None,
        });
        if let (Some(asked), Some(had)) = (conversation, &named)
            && asked != had
        {
            return Err(SessionError::bad_input(
                format!("run {from} belongs to the conversation '{had}', not '{asked}'"),
                "name its conversation, or leave out --conversation",
            ));
        }
        Ok(Some(Continuation {
            from: Some(from),
            conversation: conversation.map(str::to_string).or(named),
            items: state.items,
        }))
    }
}

fn check_name(name: &str) -> Result<(), SessionError> {
    if name.trim() != name
        || name.is_empty()
        || name.chars().count() > MAX_NAME
        || name.chars().any(char::is_control)
    {
        let shown: String = name.chars().take(MAX_NAME).collect();
        let cut = if name.chars().count() > MAX_NAME {
            "…"
        } else {
            ""
        };
        return Err(SessionError::new(
            ErrorKind::BadInput,
            format!("'{}{cut}' is not a conversation name", shown.escape_debug()),
        )
        .hint(format!(
            "a conversation's name is 1 to {MAX_NAME} characters, with no control characters and no spaces at either end"
        )));
    }
    Ok(())
}
