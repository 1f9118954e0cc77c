//! Replies as JavaScript objects: List's `StatusMap`, History's `ServiceHistory` and
//! WatchAll's `FleetUpdate` (see the typings), statuses and causes as their names, times as Unix milliseconds.
//!
//! The replies go from protobuf's wire format to JavaScript objects in one pass, led by
//! a table per message (field number, JavaScript name, kind), rather than through
//! prost's generated decoders and then a conversion: one small loop instead of a
//! decoder and a converter per message type (and prost's map decoding, with a hash
//! table, for List), which is what keeps the browser module within its budget.
//! Check and Watch, whose one status the core itself reads, stay with prost.
//!
//! The tables restate `health.proto`, `history.proto` and `statuses.proto` by field number: a change
//! there must be made here too. The browser tests (`tests/browser.rs`) read every field
//! of the typings from a real server's replies, so a table that drifts fails them.

use healthweb_proto::pb::health_check_response::ServingStatus;
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};

use crate::{EncodedHistory, Error, core::undecodable};

/// The `StatusMap` of an encoded `HealthListResponse`: `{ [service]: status }`.
pub fn statuses(reply: &[u8]) -> Result<JsValue, Error> {
    let list = Object::new();
    fill(&list, reply, LIST)?;
    Ok(Reflect::get(&list, &"statuses".into()).unwrap_or_default())
}

/// The `ServiceHistory` object: `transitions` and `truncated` from the Transitions
/// reply, `uptime` from Uptime's, `latency` from Latency's minutes.
pub fn history(replies: &EncodedHistory) -> Result<JsValue, Error> {
    let history = Object::new();
    fill(&history, &replies.transitions, TRANSITIONS)?;
    let uptime = Object::new();
    fill(&uptime, &replies.uptime, UPTIME)?;
    set(&history, "uptime", uptime.into());
    fill(&history, &replies.latency, LATENCY)?;
    Ok(history.into())
}

/// A `FleetUpdate` from an encoded `WatchAllResponse` (from nothing: every field at
/// its zero value, for a failed attempt's report).
pub fn fleet_update(reply: &[u8]) -> Result<Object, Error> {
    let update = Object::new();
    fill(&update, reply, WATCH_ALL)?;
    Ok(update)
}

/// How a field's value becomes a JavaScript value.
#[derive(Clone, Copy)]
enum Kind {
    /// A varint (int64, uint32): a number (times in ms are exact up to 2^53).
    Number,
    /// A `double`.
    Double,
    Bool,
    /// A `string`.
    Text,
    /// A `ServingStatus`: its name.
    Status,
    /// A History `Cause`: its name without the `CAUSE_` prefix.
    Cause,
    /// A message, by its table.
    Message(&'static [Field]),
    /// A repeated message: an array.
    List(&'static [Field]),
    /// A `map<string, HealthCheckResponse>`: an object, each key set to its status.
    Statuses,
}

/// One field of a message: its number, its JavaScript name, its kind.
type Field = (u64, &'static str, Kind);

use Kind::*;

// health.proto's HealthListResponse; a map's entries are messages of a key (field 1)
// and a value (field 2).
const LIST: &[Field] = &[(1, "statuses", Statuses)];
const ENTRY: &[Field] = &[(1, "key", Text), (2, "value", Message(STATUS))];
const STATUS: &[Field] = &[(1, "status", Status)];

// statuses.proto's WatchAllResponse and its ServiceStatus.
const WATCH_ALL: &[Field] = &[
    (1, "reset", Bool),
    (2, "statuses", List(SERVICE_STATUS)),
    (3, "synced", Bool),
    (4, "resumeToken", Text),
];
const SERVICE_STATUS: &[Field] = &[(1, "service", Text), (2, "status", Status)];

// history.proto's messages, field by field.
const TRANSITIONS: &[Field] = &[(1, "transitions", List(TRANSITION)), (2, "truncated", Bool)];
const TRANSITION: &[Field] = &[
    (1, "atUnixMs", Number),
    (2, "from", Status),
    (3, "to", Status),
    (4, "cause", Cause),
    (5, "detail", Text),
    (6, "count", Number),
    (7, "worst", Status),
    (8, "untilUnixMs", Number),
    (9, "replica", Text),
    (10, "inMaintenance", Bool),
];
const UPTIME: &[Field] = &[
    (1, "day", Message(WINDOW)),
    (2, "week", Message(WINDOW)),
    (3, "month", Message(WINDOW)),
    (4, "buckets", List(BUCKET)),
    (5, "current", Status),
    (6, "recordedSinceUnixMs", Number),
];
const WINDOW: &[Field] = &[
    (1, "serving", Double),
    (2, "recordedMs", Number),
    (3, "maintenanceMs", Number),
];
const BUCKET: &[Field] = &[
    (1, "startUnixMs", Number),
    (2, "endUnixMs", Number),
    (3, "worst", Status),
    (4, "serving", Double),
    (5, "changes", Number),
];
// The reply's one field, `minutes`, is the result's `latency`.
const LATENCY: &[Field] = &[(1, "latency", List(MINUTE))];
const MINUTE: &[Field] = &[
    (1, "startUnixMs", Number),
    (2, "probes", Number),
    (3, "p50Ms", Double),
    (4, "p99Ms", Double),
    (5, "maxMs", Double),
];

const CAUSES: [&str; 8] = [
    "UNSPECIFIED",
    "CONFIG",
    "RELOAD",
    "ADMIN",
    "MONITOR",
    "SHUTDOWN",
    "UNCLEAN_STOP",
    "PROGRAM",
];

/// Sets `fields` on `object` from one encoded message: first every field at its zero
/// value (proto3 leaves those out of the wire), then each field that came. Fields not
/// in the table (a newer server's) are skipped, as protobuf wants.
fn fill(object: &Object, mut bytes: &[u8], fields: &'static [Field]) -> Result<(), Error> {
    for &(_, name, kind) in fields {
        let zero = match kind {
            List(_) => Array::new().into(),
            Statuses => Object::new().into(),
            Message(inner) => message(&[], inner)?,
            other => value(other, 0, &[])?,
        };
        set(object, name, zero);
    }
    while !bytes.is_empty() {
        let key = varint(&mut bytes)?;
        // Wire types: 0 varint, 1 eight bytes, 2 length-delimited, 5 four bytes.
        let (number, wire) = (key >> 3, key & 7);
        let (varint, payload) = match wire {
            0 => (varint(&mut bytes)?, &[][..]),
            1 => (0, take(&mut bytes, 8)?),
            2 => {
                let len = varint(&mut bytes)?;
                (0, take(&mut bytes, len)?)
            }
            5 => (0, take(&mut bytes, 4)?),
            _ => return Err(undecodable()),
        };
        let Some(&(_, name, kind)) = fields.iter().find(|f| f.0 == number) else {
            continue;
        };
        let js = value(kind, varint, payload)?;
        let field = || Reflect::get(object, &name.into()).map_err(|_| undecodable());
        match kind {
            List(_) => {
                field()?.unchecked_into::<Array>().push(&js);
            }
            Statuses => {
                let key = Reflect::get(&js, &"key".into()).map_err(|_| undecodable())?;
                let value = Reflect::get(&js, &"value".into()).map_err(|_| undecodable())?;
                let status = Reflect::get(&value, &"status".into()).map_err(|_| undecodable())?;
                Reflect::set(&field()?, &key, &status).map_err(|_| undecodable())?;
            }
            _ => set(object, name, js),
        };
    }
    Ok(())
}

/// A field's value from its varint or its payload, as its kind wants it.
fn value(kind: Kind, varint: u64, payload: &[u8]) -> Result<JsValue, Error> {
    Ok(match kind {
        // int64 is two's complement in ten bytes when negative.
        Number => JsValue::from_f64(varint as i64 as f64),
        Double => match payload.try_into() {
            Ok(bytes) => JsValue::from_f64(f64::from_le_bytes(bytes)),
            // A double that came as a varint (wire type 0) is zero here.
            Err(_) => JsValue::from_f64(0.0),
        },
        Bool => JsValue::from_bool(varint != 0),
        Text => std::str::from_utf8(payload)
            .map_err(|_| undecodable())?
            .into(),
        Status => {
            let status = ServingStatus::try_from(varint as i32).unwrap_or(ServingStatus::Unknown);
            status.as_str_name().into()
        }
        Cause => CAUSES
            .get(varint as usize)
            .copied()
            .unwrap_or(CAUSES[0])
            .into(),
        Message(inner) | List(inner) => message(payload, inner)?,
        Statuses => message(payload, ENTRY)?,
    })
}

fn message(bytes: &[u8], fields: &'static [Field]) -> Result<JsValue, Error> {
    let object = Object::new();
    fill(&object, bytes, fields)?;
    Ok(object.into())
}

fn varint(bytes: &mut &[u8]) -> Result<u64, Error> {
    let mut value = 0;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first().ok_or_else(undecodable)?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(value);
        }
    }
    Err(undecodable())
}

fn take<'a>(bytes: &mut &'a [u8], len: u64) -> Result<&'a [u8], Error> {
    let len = usize::try_from(len).map_err(|_| undecodable())?;
    if len > bytes.len() {
        return Err(undecodable());
    }
    let (taken, rest) = bytes.split_at(len);
    *bytes = rest;
    Ok(taken)
}

fn set(object: &Object, key: &str, value: JsValue) {
    // Setting a property of a fresh plain object cannot fail.
    let _ = Reflect::set(object, &key.into(), &value);
}
