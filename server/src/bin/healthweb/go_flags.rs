//! Go's flag syntax, as grpc-health-probe's users write it, read by clap.
//!
//! Go's flag package takes `-name`, `--name`, `-name=value` and `-name value` for
//! every flag, and `-name=true` or `-name=false` for a switch. clap reads `-abc` as
//! three short flags and gives a switch no value, so [`respell`] rewrites those
//! spellings into clap's (`--name`, `--name=value`) before clap parses. It goes by
//! the command's own flags and aliases: what it does not know it leaves to clap,
//! which then names it in its error.

use std::ffi::OsString;

use clap::{Arg, Command};

/// `args`, the arguments of `command`, in clap's spelling.
pub fn respell(command: &Command, args: Vec<OsString>) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::with_capacity(args.len());
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            out.push(arg);
            out.extend(args);
            break;
        }
        let Some(spec) = text
            .strip_prefix("--")
            .or_else(|| text.strip_prefix('-'))
            .filter(|spec| !spec.is_empty() && !spec.starts_with('-'))
        else {
            out.push(arg);
            continue;
        };
        let (name, value) = match spec.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (spec, None),
        };
        let Some((flag, takes_value)) = find(command, name).and_then(|a| {
            Some((
                format!("--{}", a.get_long()?),
                a.get_action().takes_values(),
            ))
        }) else {
            // Unknown: as `--name`, clap's error names it whole rather than its first letter.
            out.push(format!("--{spec}").into());
            continue;
        };
        match (takes_value, value) {
            (true, Some(value)) => out.push(format!("{flag}={value}").into()),
            // Go takes the next argument as the value, whatever it starts with.
            (true, None) => match args.next() {
                Some(value) => {
                    let mut joined = OsString::from(format!("{flag}="));
                    joined.push(value);
                    out.push(joined);
                }
                None => out.push(flag.into()),
            },
            (false, None) => out.push(flag.into()),
            (false, Some(value)) => match go_bool(value) {
                Some(true) => out.push(flag.into()),
                // The last one wins: `-tls -tls=false` is no TLS.
                Some(false) => out.retain(|a| *a != *flag),
                // clap says that a switch takes no value.
                None => out.push(format!("{flag}={value}").into()),
            },
        }
    }
    out
}

/// The flag `name` (long, alias, or one-letter short) of `command`.
fn find<'a>(command: &'a Command, name: &str) -> Option<&'a Arg> {
    let mut letters = name.chars();
    let short = letters.next().filter(|_| letters.next().is_none());
    command.get_arguments().find(|arg| {
        arg.get_long() == Some(name)
            || arg.get_all_aliases().is_some_and(|a| a.contains(&name))
            || short.is_some() && arg.get_short() == short
    })
}

/// Go's `strconv.ParseBool`.
fn go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn check(args: &[&str]) -> Vec<String> {
        let mut cli = crate::Cli::command();
        cli.build();
        let check = cli.find_subcommand("check").unwrap();
        respell(check, args.iter().map(OsString::from).collect())
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn respells_go_flags_for_clap() {
        assert_eq!(
            check(&["-addr=:5000", "-rpc-timeout", "2s", "-tls", "-v"]),
            ["--addr=:5000", "--timeout=2s", "--tls", "--verbose"]
        );
        // Go's `-name value` takes the value whatever it looks like.
        assert_eq!(check(&["-service", "-x"]), ["--service=-x"]);
        assert_eq!(
            check(&["-rpc-header=a: b", "--rpc-header", "c:d"]),
            ["--header=a: b", "--header=c:d"]
        );
        assert_eq!(check(&["-tls=true", "-gzip=1"]), ["--tls", "--gzip"]);
        assert_eq!(
            check(&["-tls", "-tls=false", "-gzip=F"]),
            Vec::<String>::new()
        );
        assert_eq!(check(&["-tls=maybe"]), ["--tls=maybe"]);
        // healthweb's own spelling passes as it is, values included.
        assert_eq!(
            check(&["--addr", "http://h:1", "--grpc-web", "-h"]),
            ["--addr=http://h:1", "--grpc-web", "--help"]
        );
        assert_eq!(check(&["-nope", "--", "-tls"]), ["--nope", "--", "-tls"]);
    }
}
