//! `healthweb alert test RECEIVER`: sends one test notification to an `[[alert]]`
//! receiver of the config file, as the server would (signed, in the receiver's
//! form), once, and prints what the receiver said.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use healthweb_server::{
    alert::{
        deliver::{Answer, Sender, test_notification},
        now_ms,
    },
    config::ConfigFile,
};

use crate::{exit::Exit, say};

#[derive(Subcommand)]
pub enum AlertCommand {
    /// Send a test notification to RECEIVER and print its answer. Exit codes: 0
    /// taken (2xx), 1 bad config or no such receiver, 2 no answer, 3 refused.
    Test(TestArgs),
}

#[derive(Args)]
pub struct TestArgs {
    /// The config file that names the receiver.
    #[arg(long, env = "HEALTHWEB_CONFIG", value_name = "FILE")]
    config: PathBuf,
    /// The `[[alert]]` receiver's name.
    receiver: String,
}

pub async fn run(command: AlertCommand) -> Exit {
    let AlertCommand::Test(args) = command;
    let file = match ConfigFile::load(&args.config) {
        Ok(file) => file,
        Err(error) => {
            say(format_args!("healthweb: {error}"));
            return Exit::BadArguments;
        }
    };
    let Some(receiver) = file.alert.into_iter().find(|r| r.name == args.receiver) else {
        say(format_args!(
            "healthweb: {} has no [[alert]] named {:?}",
            args.config.display(),
            args.receiver
        ));
        return Exit::BadArguments;
    };
    let timeout = receiver.timeout;
    let name = receiver.name.clone();
    let sender = match Sender::new(receiver) {
        Ok(sender) => sender,
        Err(error) => {
            say(format_args!("healthweb: alert {name:?}: {error}"));
            return Exit::BadArguments;
        }
    };
    let notification = test_notification(now_ms(), file.public_url.as_deref());
    let answer = sender.send(&notification, timeout).await;
    println!("{name}: {answer}");
    match answer {
        _ if answer.is_success() => Exit::Success,
        Answer::Http(..) => Exit::RpcFailure,
        Answer::None(_) => Exit::ConnectionFailure,
    }
}
