//! `clipsight user …` and `clipsight token …`: editing the library's credential file, which a
//! running server re-reads on its next request.

use std::io::{BufRead, IsTerminal};

use anyhow::{bail, Context, Result};
use clipsight::auth::CredentialFile;
use serde_json::json;

use crate::cli::{Global, TokenCommand, UserCommand};

/// Runs a `user` command.
pub fn user(g: &Global, command: UserCommand) -> Result<()> {
    let file = CredentialFile::of_library(&g.data);
    match command {
        UserCommand::Add { name, role } => {
            let passphrase = read_passphrase()?;
            file.add_user(&name, &passphrase, role.into())?;
            say(g, json!({"user": name, "role": clipsight::auth::Role::from(role)}), &format!("user {name:?} can sign in ({} access)", clipsight::auth::Role::from(role)));
        }
        UserCommand::Remove { name } => {
            file.remove_user(&name)?;
            say(g, json!({"removed": name}), &format!("user {name:?} removed"));
        }
        UserCommand::List => list(g, &file)?,
    }
    Ok(())
}

/// Runs a `token` command.
pub fn token(g: &Global, command: TokenCommand) -> Result<()> {
    let file = CredentialFile::of_library(&g.data);
    match command {
        TokenCommand::Add { name, role } => {
            let secret = file.add_token(&name, role.into())?;
            if g.json {
                println!("{}", json!({"token": name, "role": clipsight::auth::Role::from(role), "secret": secret}));
            } else {
                eprintln!("token {name:?} ({} access) created; it is shown only now:", clipsight::auth::Role::from(role));
                println!("{secret}");
            }
        }
        TokenCommand::Remove { name } => {
            file.remove_token(&name)?;
            say(g, json!({"removed": name}), &format!("token {name:?} removed"));
        }
        TokenCommand::List => list(g, &file)?,
    }
    Ok(())
}

fn list(g: &Global, file: &CredentialFile) -> Result<()> {
    let credentials = file.load()?;
    let users: Vec<_> = credentials.users.iter().map(|u| json!({"name": u.name, "role": u.role})).collect();
    let tokens: Vec<_> = credentials.tokens.iter().map(|t| json!({"name": t.name, "role": t.role})).collect();
    if g.json {
        println!("{}", serde_json::to_string_pretty(&json!({"users": users, "tokens": tokens}))?);
        return Ok(());
    }
    for u in &credentials.users {
        println!("user   {:<24} {}", u.name, u.role);
    }
    for t in &credentials.tokens {
        println!("token  {:<24} {}", t.name, t.role);
    }
    if credentials.is_empty() {
        println!("no users or tokens in {}", file.path().display());
    }
    Ok(())
}

fn say(g: &Global, value: serde_json::Value, text: &str) {
    if g.json {
        println!("{value}");
    } else {
        println!("{text}");
    }
}

/// A passphrase typed twice at the terminal (not echoed), or the first line of standard input.
fn read_passphrase() -> Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("passphrase: ").context("reading the passphrase")?;
        let again = rpassword::prompt_password("again: ").context("reading the passphrase")?;
        if first != again {
            bail!("the two passphrases differ");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading the passphrase from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// The tokens `serve` takes on its command line: `--token` and the first line of `--token-file`.
pub fn serve_tokens(token: Option<String>, token_file: Option<&std::path::Path>) -> Result<Vec<clipsight::auth::Token>> {
    use clipsight::auth::{Role, Token};
    let mut tokens = Vec::new();
    if let Some(secret) = token.filter(|t| !t.is_empty()) {
        tokens.push(Token::from_secret("--token", &secret, Role::Write));
    }
    if let Some(path) = token_file {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading the token file {}", path.display()))?;
        let secret = text.lines().next().unwrap_or("").trim();
        if secret.is_empty() {
            bail!("the token file {} is empty", path.display());
        }
        tokens.push(Token::from_secret("--token-file", secret, Role::Write));
    }
    Ok(tokens)
}
