//! Reading secrets from standard input or a prompt, never from the command line.
use std::io::{IsTerminal, Read};

use zeroize::Zeroizing;

use crate::client::{CliError, CliResult};

/// All of standard input, without its final line break.
pub fn read_secret_stdin() -> CliResult<Zeroizing<String>> {
    let mut s = Zeroizing::new(String::new());
    std::io::stdin().read_to_string(&mut s).map_err(|e| CliError::Usage(format!("reading standard input: {e}")))?;
    let trimmed = s.trim_end_matches(['\n', '\r']).len();
    s.truncate(trimmed);
    if s.is_empty() {
        return Err(CliError::Usage("standard input was empty".into()));
    }
    Ok(s)
}

/// `--password-stdin`, or a prompt without echo when standard input is a terminal.
pub fn password(from_stdin: bool, prompt: &str) -> CliResult<Zeroizing<String>> {
    if from_stdin || !std::io::stdin().is_terminal() {
        return read_secret_stdin();
    }
    rpassword::prompt_password(prompt)
        .map(Zeroizing::new)
        .map_err(|e| CliError::Usage(format!("reading the password: {e}")))
}
