//! Reading a code from the person at the keyboard.
//!
//! On a terminal the answer is read with echo off, a byte at a time with the terminal's
//! signal keys turned off, so that Ctrl-C is seen here: the terminal is put back as it
//! was and the command stops having changed nothing (a Ctrl-C that killed us would leave
//! the terminal without echo). Otherwise (a pipe, a file) a plain line is read.

use nix::sys::termios::{self, LocalFlags, SetArg, SpecialCharacterIndices as Cc, Termios};
use pam_totp::secret::SecretString;
use std::io::{self, BufRead, IsTerminal, Read, Write};
use zeroize::Zeroizing;

/// No code, secret or recovery code is anywhere near this long.
const MAX_ANSWER: usize = 1024;

/// What the person did at a prompt.
pub enum Input {
    Answer(SecretString),
    /// Ctrl-C or Ctrl-\ at the terminal.
    Interrupted,
    /// End of input: Ctrl-D on an empty line, a closed terminal, or the end of a pipe.
    Closed,
}

/// Asks `prompt` (on standard error) and reads one answer from standard input.
pub fn ask(prompt: &str) -> io::Result<Input> {
    let stdin = io::stdin();
    if stdin.is_terminal() {
        ask_terminal(prompt)
    } else {
        ask_line(prompt)
    }
}

fn ask_line(prompt: &str) -> io::Result<Input> {
    show(prompt)?;
    let mut line = Zeroizing::new(String::new());
    if io::stdin().lock().read_line(&mut line)? == 0 {
        show("\n")?;
        return Ok(Input::Closed);
    }
    // The answer came from a pipe or file and was not echoed: end the prompt's line.
    show("\n")?;
    let answer = line.trim_end_matches(['\n', '\r']);
    Ok(Input::Answer(SecretString::new(answer.to_owned())))
}

/// Puts the terminal back as it was when dropped, on every path (errors, panics).
struct Restore(Termios);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(io::stdin(), SetArg::TCSANOW, &self.0);
    }
}

fn ask_terminal(prompt: &str) -> io::Result<Input> {
    let saved = termios::tcgetattr(io::stdin()).map_err(io::Error::from)?;
    let mut quiet = saved.clone();
    quiet.local_flags &=
        !(LocalFlags::ECHO | LocalFlags::ICANON | LocalFlags::ISIG | LocalFlags::IEXTEN);
    quiet.control_chars[Cc::VMIN as usize] = 1;
    quiet.control_chars[Cc::VTIME as usize] = 0;
    let key = |index: Cc| saved.control_chars[index as usize];
    let (intr, quit, eof, erase, kill) = (
        key(Cc::VINTR),
        key(Cc::VQUIT),
        key(Cc::VEOF),
        key(Cc::VERASE),
        key(Cc::VKILL),
    );
    let restore = Restore(saved.clone());
    // TCSAFLUSH: anything typed before the prompt appeared is not taken as the answer.
    termios::tcsetattr(io::stdin(), SetArg::TCSAFLUSH, &quiet).map_err(io::Error::from)?;
    show(prompt)?;
    let mut answer = Zeroizing::new(Vec::new());
    let mut stdin = io::stdin().lock();
    let input = loop {
        let mut byte = [0u8; 1];
        match stdin.read(&mut byte) {
            Ok(0) => break Input::Closed,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // EIO: the terminal went away (hung up).
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break Input::Closed,
            Err(e) => return Err(e),
        }
        match byte[0] {
            b'\n' | b'\r' => break Input::Answer(take(&mut answer)?),
            b if b == intr || b == quit || b == 0x03 => break Input::Interrupted,
            b if (b == eof || b == 0x04) && answer.is_empty() => break Input::Closed,
            b if b == eof || b == 0x04 => {}
            b if b == erase || b == 0x7f || b == 0x08 => {
                // Drop one whole UTF-8 character: continuation bytes, then its lead byte.
                while answer.last().is_some_and(|&b| b & 0xC0 == 0x80) {
                    answer.pop();
                }
                answer.pop();
            }
            b if b == kill || b == 0x15 => answer.clear(),
            b if b < 0x20 => {}
            b if answer.len() < MAX_ANSWER => answer.push(b),
            _ => {}
        }
    };
    drop(stdin);
    drop(restore);
    // Echo was off, so the person's Enter did not move to a new line.
    show("\n")?;
    Ok(input)
}

fn take(bytes: &mut Zeroizing<Vec<u8>>) -> io::Result<SecretString> {
    SecretString::from_utf8(bytes).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "the answer is not valid UTF-8 text",
        )
    })
}

fn show(text: &str) -> io::Result<()> {
    let mut stderr = io::stderr().lock();
    stderr.write_all(text.as_bytes())?;
    stderr.flush()
}
