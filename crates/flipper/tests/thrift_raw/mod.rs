//! Hand-made Thrift messages (binary protocol, unframed) for the server tests: calls with
//! arguments the Rust client never sends, and replies read field by field.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use thrift::protocol::{
    TBinaryInputProtocol, TBinaryOutputProtocol, TFieldIdentifier, TInputProtocol, TListIdentifier,
    TMapIdentifier, TMessageIdentifier, TMessageType, TOutputProtocol, TStructIdentifier, TType,
};

/// One field of a call's arguments (or of a struct), with its id.
#[derive(Clone)]
pub(crate) enum Arg {
    Str(i16, &'static str),
    Bool(i16, bool),
    I64(i16, i64),
    Struct(i16, Vec<Arg>),
    /// `list<map<string, list<ConditionCheck>>>`: per condition, per variable, its checks as
    /// (variable, JSON value, the operator struct's fields).
    Conditions(i16, Vec<Vec<Check>>),
}

/// A map entry of a condition: the key and its checks.
pub(crate) type Check = (&'static str, Vec<(&'static str, &'static str, Vec<Arg>)>);

/// What a reply held.
#[derive(Debug, Default)]
pub(crate) struct Reply {
    /// The `FlipperException`: its code and message.
    pub(crate) flipper_exception: Option<(Option<i32>, String)>,
    /// The message of a `TApplicationException` reply.
    pub(crate) application_error: Option<String>,
    /// The length of a list result.
    pub(crate) list_len: Option<i32>,
}

/// A plain connection to a server.
pub(crate) struct Raw {
    stream: TcpStream,
    sequence: i32,
    /// Whether calls start with the protocol version (Python's default); older clients do not.
    strict: bool,
}

impl Raw {
    pub(crate) fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Self {
            stream,
            sequence: 0,
            strict: true,
        }
    }

    /// A connection whose calls leave out the protocol version (`strictWrite=False`).
    pub(crate) fn connect_non_strict(addr: SocketAddr) -> Self {
        Self {
            strict: false,
            ..Self::connect(addr)
        }
    }

    /// Calls `method`; `None` when the connection closed without a reply.
    pub(crate) fn call(&mut self, method: &str, args: &[Arg]) -> Option<Reply> {
        let mut body = Vec::new();
        {
            let mut o = TBinaryOutputProtocol::new(&mut body, self.strict);
            write_struct(&mut o, args);
        }
        self.call_bytes(method, &body)
    }

    /// Calls `method` with its arguments struct already encoded.
    pub(crate) fn call_bytes(&mut self, method: &str, args: &[u8]) -> Option<Reply> {
        self.sequence += 1;
        let mut message = Vec::new();
        {
            let mut o = TBinaryOutputProtocol::new(&mut message, self.strict);
            o.write_message_begin(&TMessageIdentifier::new(
                method,
                TMessageType::Call,
                self.sequence,
            ))
            .unwrap();
        }
        message.extend_from_slice(args);
        self.stream.write_all(&message).ok()?;
        read_reply(&mut self.stream).ok()
    }

    /// Sends `bytes` (then, with `half_close`, ends its side) and tells whether the server
    /// closed the connection, reading anything it sent first.
    pub(crate) fn send_and_expect_close(&mut self, bytes: &[u8]) -> bool {
        self.send_then_close(bytes, false)
    }

    /// [`Raw::send_and_expect_close`], ending this side after sending.
    pub(crate) fn send_end_and_expect_close(&mut self, bytes: &[u8]) -> bool {
        self.send_then_close(bytes, true)
    }

    fn send_then_close(&mut self, bytes: &[u8], half_close: bool) -> bool {
        if self.stream.write_all(bytes).is_err() {
            return true;
        }
        if half_close {
            let _ = self.stream.shutdown(Shutdown::Write);
        }
        let mut sink = [0u8; 4096];
        loop {
            match self.stream.read(&mut sink) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

fn write_struct(o: &mut dyn TOutputProtocol, fields: &[Arg]) {
    o.write_struct_begin(&TStructIdentifier::new("args"))
        .unwrap();
    for field in fields {
        write_field(o, field);
    }
    o.write_field_stop().unwrap();
    o.write_struct_end().unwrap();
}

fn write_field(o: &mut dyn TOutputProtocol, field: &Arg) {
    let begin = |o: &mut dyn TOutputProtocol, ty, id| {
        o.write_field_begin(&TFieldIdentifier::new("f", ty, id))
            .unwrap();
    };
    match field {
        Arg::Str(id, s) => {
            begin(o, TType::String, *id);
            o.write_string(s).unwrap();
        }
        Arg::Bool(id, b) => {
            begin(o, TType::Bool, *id);
            o.write_bool(*b).unwrap();
        }
        Arg::I64(id, n) => {
            begin(o, TType::I64, *id);
            o.write_i64(*n).unwrap();
        }
        Arg::Struct(id, fields) => {
            begin(o, TType::Struct, *id);
            write_struct(o, fields);
        }
        Arg::Conditions(id, conditions) => {
            begin(o, TType::List, *id);
            o.write_list_begin(&TListIdentifier::new(TType::Map, len(conditions.len())))
                .unwrap();
            for condition in conditions {
                o.write_map_begin(&TMapIdentifier::new(
                    TType::String,
                    TType::List,
                    len(condition.len()),
                ))
                .unwrap();
                for (key, checks) in condition {
                    o.write_string(key).unwrap();
                    o.write_list_begin(&TListIdentifier::new(TType::Struct, len(checks.len())))
                        .unwrap();
                    for (variable, value, operator) in checks {
                        write_struct(
                            o,
                            &[
                                Arg::Str(1, variable),
                                Arg::Str(2, value),
                                Arg::Struct(3, operator.clone()),
                            ],
                        );
                    }
                    o.write_list_end().unwrap();
                }
                o.write_map_end().unwrap();
            }
            o.write_list_end().unwrap();
        }
    }
    o.write_field_end().unwrap();
}

fn len(n: usize) -> i32 {
    i32::try_from(n).unwrap()
}

/// `SetMeta(name, meta)` arguments whose conditions list claims 2^31 - 1 elements.
pub(crate) fn huge_condition_list(name: &'static str) -> Vec<u8> {
    let mut body = Vec::new();
    {
        let mut o = TBinaryOutputProtocol::new(&mut body, true);
        o.write_struct_begin(&TStructIdentifier::new("args"))
            .unwrap();
        write_field(&mut o, &Arg::Str(1, name));
        o.write_field_begin(&TFieldIdentifier::new("meta", TType::Struct, 2))
            .unwrap();
        o.write_struct_begin(&TStructIdentifier::new("meta"))
            .unwrap();
        o.write_field_begin(&TFieldIdentifier::new("conditions", TType::List, 3))
            .unwrap();
        o.write_list_begin(&TListIdentifier::new(TType::Map, i32::MAX))
            .unwrap();
    }
    body
}

fn read_reply(stream: &mut TcpStream) -> thrift::Result<Reply> {
    let mut i = TBinaryInputProtocol::new(stream, true);
    let header = i.read_message_begin()?;
    let mut reply = Reply::default();
    if header.message_type == TMessageType::Exception {
        let e = thrift::Error::read_application_error_from_in_protocol(&mut i)?;
        reply.application_error = Some(e.message);
        return Ok(reply);
    }
    i.read_struct_begin()?;
    loop {
        let field = i.read_field_begin()?;
        match (field.field_type, field.id) {
            (TType::Stop, _) => break,
            (TType::List, Some(0)) => {
                let list = i.read_list_begin()?;
                reply.list_len = Some(list.size);
                for _ in 0..list.size {
                    i.skip(list.element_type)?;
                }
                i.read_list_end()?;
            }
            (TType::Struct, Some(1)) => reply.flipper_exception = Some(read_exception(&mut i)?),
            (other, _) => i.skip(other)?,
        }
        i.read_field_end()?;
    }
    i.read_struct_end()?;
    i.read_message_end()?;
    Ok(reply)
}

fn read_exception(i: &mut dyn TInputProtocol) -> thrift::Result<(Option<i32>, String)> {
    let (mut code, mut message) = (None, String::new());
    i.read_struct_begin()?;
    loop {
        let field = i.read_field_begin()?;
        match (field.field_type, field.id) {
            (TType::Stop, _) => break,
            (TType::I32, Some(1)) => code = Some(i.read_i32()?),
            (TType::String, Some(2)) => message = i.read_string()?,
            (other, _) => i.skip(other)?,
        }
        i.read_field_end()?;
    }
    i.read_struct_end()?;
    Ok((code, message))
}
