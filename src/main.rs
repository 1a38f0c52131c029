//! The `clipsight` binary: parses the command line and runs one command.

mod auth_commands;
mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if !matches!(cli.command, cli::Command::Serve(_) | cli::Command::Index(_)) {
        quiet_exit_on_closed_stdout();
    }
    let level = match cli.global.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLIPSIGHT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},ort=warn"))),
        )
        .with_writer(std::io::stderr)
        .init();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit_code(&e)
        }
    }
}

/// `clipsight search … | head` ends quietly when `head` closes the pipe, as other Unix tools do,
/// instead of panicking on the next print (Rust ignores SIGPIPE by default). Not for `serve`,
/// whose sockets must never kill the process, nor `index`, whose run must not die with a pager.
fn quiet_exit_on_closed_stdout() {
    // SAFETY: restoring a signal's default disposition at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The one place errors become exit codes: 2 for what the command itself got wrong (a bad
/// query, an unknown image, an unreadable file, nothing to index), 3 when another process owns
/// the library, 1 for everything else.
fn exit_code(e: &anyhow::Error) -> ExitCode {
    use clipsight::auth::AuthError;
    use clipsight::library::LibraryError;
    use clipsight::store::StoreError;
    let code = match (e.downcast_ref::<LibraryError>(), e.downcast_ref::<StoreError>()) {
        (Some(LibraryError::BadQuery(_) | LibraryError::NotFound(_) | LibraryError::Image(_) | LibraryError::NoRoots | LibraryError::OutsideRoots(_)), _) => 2,
        (Some(LibraryError::ReadOnly), _) | (_, Some(StoreError::InUse { .. })) => 3,
        _ if e.downcast_ref::<clipsight::search::QueryError>().is_some() => 2,
        _ if matches!(e.downcast_ref::<AuthError>(), Some(AuthError::WeakPassphrase | AuthError::BadName(_) | AuthError::Exists(_) | AuthError::Unknown(_))) => 2,
        _ if matches!(e.downcast_ref::<clipsight::server::ServeError>(), Some(clipsight::server::ServeError::Access(AuthError::Unprotected))) => 2,
        _ => 1,
    };
    ExitCode::from(code)
}
