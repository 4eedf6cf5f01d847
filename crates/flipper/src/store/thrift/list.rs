//! The `List` call, read and written by hand on both sides.
//!
//! flipper-client calls `List(None, offset)` to list without a limit: the `limit` field is then
//! absent from the message. The IDL declares the arguments with default requiredness, and the
//! Rust code thrift-compiler 0.17 generates refuses a message without them, so the server reads
//! `List` itself (a missing limit is no limit, a missing offset 0) and the client sends no limit
//! when it has none, as flipper-client does. The reply is the generated `List_result` shape:
//! field 0 `success` (the flags), field 1 `error` (a `FlipperException`).

use thrift::protocol::{
    TFieldIdentifier, TInputProtocol, TListIdentifier, TMessageIdentifier, TMessageType,
    TOutputProtocol, TSerializable, TStructIdentifier, TType, verify_expected_message_type,
    verify_expected_sequence_number, verify_expected_service_call,
};
use thrift::{ApplicationError, ApplicationErrorKind, TThriftClient};

use super::generated as t;

/// The method's name on the wire.
pub(super) const METHOD: &str = "List";

/// The arguments of a `List` call whose message header was read: `(limit, offset)`.
pub(super) fn read_args(i: &mut dyn TInputProtocol) -> thrift::Result<(Option<i64>, Option<i64>)> {
    i.read_struct_begin()?;
    let (mut limit, mut offset) = (None, None);
    loop {
        let field = i.read_field_begin()?;
        match (field.field_type, field.id) {
            (TType::Stop, _) => break,
            (TType::I64, Some(1)) => limit = Some(i.read_i64()?),
            (TType::I64, Some(2)) => offset = Some(i.read_i64()?),
            (other, _) => i.skip(other)?,
        }
        i.read_field_end()?;
    }
    i.read_struct_end()?;
    i.read_message_end()?;
    Ok((limit, offset))
}

/// Writes the reply to call `sequence`: the flags, or the service's exception.
pub(super) fn write_reply(
    o: &mut dyn TOutputProtocol,
    sequence: i32,
    result: Result<Vec<t::FeatureFlagStoreItem>, t::FlipperException>,
) -> thrift::Result<()> {
    o.write_message_begin(&TMessageIdentifier::new(
        METHOD,
        TMessageType::Reply,
        sequence,
    ))?;
    o.write_struct_begin(&TStructIdentifier::new("FeatureFlagStoreListResult"))?;
    match result {
        Ok(items) => {
            let len = i32::try_from(items.len()).map_err(|_| {
                thrift::Error::Application(ApplicationError::new(
                    ApplicationErrorKind::InternalError,
                    "too many flags for one List reply",
                ))
            })?;
            o.write_field_begin(&TFieldIdentifier::new("success", TType::List, 0))?;
            o.write_list_begin(&TListIdentifier::new(TType::Struct, len))?;
            for item in &items {
                item.write_to_out_protocol(o)?;
            }
            o.write_list_end()?;
            o.write_field_end()?;
        }
        Err(error) => {
            o.write_field_begin(&TFieldIdentifier::new("error", TType::Struct, 1))?;
            error.write_to_out_protocol(o)?;
            o.write_field_end()?;
        }
    }
    o.write_field_stop()?;
    o.write_struct_end()?;
    o.write_message_end()?;
    o.flush()
}

/// Calls `List(limit, offset)`, leaving `limit` out when it is `None`. A `FlipperException`
/// comes back as [`thrift::Error::User`].
pub(super) fn call<C: TThriftClient>(
    client: &mut C,
    limit: Option<i64>,
    offset: i64,
) -> thrift::Result<Vec<t::FeatureFlagStoreItem>> {
    let sequence = client.increment_sequence_number();
    let o = client.o_prot_mut();
    o.write_message_begin(&TMessageIdentifier::new(
        METHOD,
        TMessageType::Call,
        sequence,
    ))?;
    o.write_struct_begin(&TStructIdentifier::new("List_args"))?;
    if let Some(limit) = limit {
        o.write_field_begin(&TFieldIdentifier::new("limit", TType::I64, 1))?;
        o.write_i64(limit)?;
        o.write_field_end()?;
    }
    o.write_field_begin(&TFieldIdentifier::new("offset", TType::I64, 2))?;
    o.write_i64(offset)?;
    o.write_field_end()?;
    o.write_field_stop()?;
    o.write_struct_end()?;
    o.write_message_end()?;
    o.flush()?;

    let i = client.i_prot_mut();
    let header = i.read_message_begin()?;
    verify_expected_sequence_number(sequence, header.sequence_number)?;
    verify_expected_service_call(METHOD, &header.name)?;
    if header.message_type == TMessageType::Exception {
        let remote = thrift::Error::read_application_error_from_in_protocol(i)?;
        i.read_message_end()?;
        return Err(thrift::Error::Application(remote));
    }
    verify_expected_message_type(TMessageType::Reply, header.message_type)?;
    let (mut success, mut error) = (None, None);
    i.read_struct_begin()?;
    loop {
        let field = i.read_field_begin()?;
        match (field.field_type, field.id) {
            (TType::Stop, _) => break,
            (TType::List, Some(0)) => success = Some(read_items(i)?),
            (TType::Struct, Some(1)) => {
                error = Some(t::FlipperException::read_from_in_protocol(i)?)
            }
            (other, _) => i.skip(other)?,
        }
        i.read_field_end()?;
    }
    i.read_struct_end()?;
    i.read_message_end()?;
    match (error, success) {
        (Some(error), _) => Err(thrift::Error::User(Box::new(error))),
        (None, Some(items)) => Ok(items),
        (None, None) => Err(thrift::Error::Application(ApplicationError::new(
            ApplicationErrorKind::MissingResult,
            "List failed: unknown result",
        ))),
    }
}

fn read_items(i: &mut dyn TInputProtocol) -> thrift::Result<Vec<t::FeatureFlagStoreItem>> {
    let list = i.read_list_begin()?;
    if list.element_type != TType::Struct {
        // Nothing a flag could be: skip the elements, then refuse.
        for _ in 0..list.size {
            i.skip(list.element_type)?;
        }
        i.read_list_end()?;
        return Err(thrift::Error::Protocol(thrift::ProtocolError::new(
            thrift::ProtocolErrorKind::InvalidData,
            format!("List returned {:?} elements, not flags", list.element_type),
        )));
    }
    // The size is the peer's claim: reserve a bounded amount and let the reads prove it.
    let size = usize::try_from(list.size).unwrap_or(0);
    let mut items = Vec::with_capacity(size.min(1024));
    for _ in 0..size {
        items.push(t::FeatureFlagStoreItem::read_from_in_protocol(i)?);
    }
    i.read_list_end()?;
    Ok(items)
}
