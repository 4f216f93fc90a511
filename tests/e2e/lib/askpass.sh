#!/bin/bash
# SSH_ASKPASS helper for tests/e2e/run.sh: answers ssh's keyboard-interactive prompts
# without a terminal, choosing the answer by the prompt's text.
#
# ssh runs it as `askpass "PROMPT"` (with SSH_ASKPASS_REQUIRE=force) and reads the answer
# from its stdout. ssh (OpenSSH >= 8.4) shows keyboard-interactive prompts as
# "(user@host) Password: ", so prompts are matched as substrings.
#
#   E2E_CODE_PROMPT   substring identifying the second-factor prompt (set by run.sh)
#   E2E_CODE          the code to answer it with, or
#   E2E_CODE_FILE     a file whose first line is that code (read when the prompt comes)
#   E2E_PASSWORD      the answer to a password prompt ("...Password: ")
#   E2E_ASKPASS_LOG   if set, every prompt is appended to this file (one per line)
#
# An unexpected prompt, or one with no answer configured, exits 1: ssh then sends an empty
# answer, so the login fails instead of hanging.
set -u
prompt=${1-}
if [[ -n ${E2E_ASKPASS_LOG:-} ]]; then
    printf '%s\n' "$prompt" >>"$E2E_ASKPASS_LOG"
fi
code_prompt=${E2E_CODE_PROMPT:-Verification code:}

# The code prompt first: a stand-in's OTP prompt may well contain the word "password".
if [[ $prompt == *"$code_prompt"* ]]; then
    if [[ -n ${E2E_CODE_FILE:-} ]]; then
        IFS= read -r answer <"$E2E_CODE_FILE" || true
    else
        answer=${E2E_CODE-}
    fi
    if [[ -z ${answer:-} ]]; then
        echo "askpass: no code configured for prompt: $prompt" >&2
        exit 1
    fi
elif [[ $prompt == *[Pp]assword:* ]]; then
    if [[ -z ${E2E_PASSWORD+set} ]]; then
        echo "askpass: no password configured for prompt: $prompt" >&2
        exit 1
    fi
    answer=$E2E_PASSWORD
else
    echo "askpass: unexpected prompt: $prompt" >&2
    exit 1
fi
printf '%s\n' "$answer"
