//! The `wa-sentinel` binary: parse the command line, run the command, map the
//! outcome to an exit code (0 ok, 1 runtime failure, 2 bad usage or invalid config).
//! Logging is set up by the command, once it knows the config's `[log]`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = wa_sentinel::cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(wa_sentinel::cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
