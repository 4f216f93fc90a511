//! The conversation with the person logging in, as the login sees it: the PAM front end
//! supplies libpam's, tests a [`ScriptedConversation`].

use crate::secret::SecretString;

/// The conversation with the person logging in.
pub trait Conversation {
    /// Asks a question; `Ok(None)` when the application gave no answer.
    fn prompt(
        &mut self,
        text: &str,
        echo: bool,
    ) -> std::result::Result<Option<SecretString>, ConversationFailed>;
    fn info(&mut self, text: &str);
    fn error(&mut self, text: &str);
    /// The token an earlier module asked for (PAM_AUTHTOK), if any.
    fn authtok(&mut self) -> Option<SecretString>;
    /// Hands the password on to later modules (`forward_pass`).
    fn set_authtok(&mut self, token: &SecretString) -> bool;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationFailed;
