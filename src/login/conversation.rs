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
    /// The remote host the service says the person comes from (PAM_RHOST), if any; what
    /// `grace_period` remembers. `None` where the front end has no such thing.
    fn remote_host(&mut self) -> Option<String> {
        None
    }
    /// The service the login is for (PAM_SERVICE: `sshd`, `sudo`), if known; a remembered
    /// host is remembered for one service. `None`: no host is remembered.
    fn service(&mut self) -> Option<String> {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationFailed;

#[cfg(any(test, feature = "testing"))]
pub use scripted::{Exchange, ScriptedConversation};

#[cfg(any(test, feature = "testing"))]
mod scripted {
    use super::{Conversation, ConversationFailed};
    use crate::secret::SecretString;
    use std::collections::VecDeque;

    /// One expected step of a conversation.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Exchange {
        /// A prompt with this text and echo, and the answer to give (`None`: no answer;
        /// `Err`: the conversation fails).
        Prompt {
            text: String,
            echo: bool,
            answer: Result<Option<String>, ConversationFailed>,
        },
        Info(String),
        Error(String),
        /// The module hands this password on.
        SetAuthtok(String),
    }

    /// A conversation that replays a queue of expected exchanges, in order, and fails the
    /// test on anything else, or when dropped with exchanges left over.
    #[derive(Debug, Default)]
    pub struct ScriptedConversation {
        script: VecDeque<Exchange>,
        authtok: Option<String>,
        rhost: Option<String>,
        service: Option<String>,
    }

    impl ScriptedConversation {
        pub fn new() -> Self {
            Self::default()
        }

        /// PAM_AUTHTOK as an earlier module left it.
        pub fn with_authtok(mut self, token: &str) -> Self {
            self.authtok = Some(token.to_owned());
            self
        }

        /// PAM_RHOST as the service set it.
        pub fn with_rhost(mut self, rhost: &str) -> Self {
            self.rhost = Some(rhost.to_owned());
            self
        }

        /// PAM_SERVICE as the application set it.
        pub fn with_service(mut self, service: &str) -> Self {
            self.service = Some(service.to_owned());
            self
        }

        pub fn prompt(mut self, text: &str, answer: &str) -> Self {
            self.script.push_back(Exchange::Prompt {
                text: text.to_owned(),
                echo: false,
                answer: Ok(Some(answer.to_owned())),
            });
            self
        }

        pub fn expect(mut self, exchange: Exchange) -> Self {
            self.script.push_back(exchange);
            self
        }

        pub fn info(self, text: &str) -> Self {
            self.expect(Exchange::Info(text.to_owned()))
        }

        pub fn error(self, text: &str) -> Self {
            self.expect(Exchange::Error(text.to_owned()))
        }

        pub fn set_authtok(self, token: &str) -> Self {
            self.expect(Exchange::SetAuthtok(token.to_owned()))
        }

        fn next(&mut self, got: &str) -> Exchange {
            match self.script.pop_front() {
                Some(exchange) => exchange,
                None => panic!("unexpected {got}: the script is over"),
            }
        }
    }

    impl Conversation for ScriptedConversation {
        fn prompt(
            &mut self,
            text: &str,
            echo: bool,
        ) -> Result<Option<SecretString>, ConversationFailed> {
            match self.next(&format!("prompt {text:?}")) {
                Exchange::Prompt {
                    text: expected,
                    echo: expected_echo,
                    answer,
                } => {
                    assert_eq!((text, echo), (expected.as_str(), expected_echo), "prompt");
                    answer.map(|a| a.map(SecretString::new))
                }
                other => panic!("prompt {text:?} where {other:?} was expected"),
            }
        }

        fn info(&mut self, text: &str) {
            let next = self.next(&format!("info {text:?}"));
            assert_eq!(next, Exchange::Info(text.to_owned()));
        }

        fn error(&mut self, text: &str) {
            let next = self.next(&format!("error {text:?}"));
            assert_eq!(next, Exchange::Error(text.to_owned()));
        }

        fn authtok(&mut self) -> Option<SecretString> {
            self.authtok.clone().map(SecretString::new)
        }

        fn set_authtok(&mut self, token: &SecretString) -> bool {
            let next = self.next("set_authtok");
            assert_eq!(next, Exchange::SetAuthtok(token.expose().to_owned()));
            self.authtok = Some(token.expose().to_owned());
            true
        }

        fn remote_host(&mut self) -> Option<String> {
            self.rhost.clone()
        }

        fn service(&mut self) -> Option<String> {
            self.service.clone()
        }
    }

    impl Drop for ScriptedConversation {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                assert!(
                    self.script.is_empty(),
                    "the login ended with exchanges left: {:?}",
                    self.script
                );
            }
        }
    }
}
