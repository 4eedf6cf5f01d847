// flipper-client's FeatureFlagStore service, as its Python package (flipper-client 1.3.2,
// module flipper_thrift.python.feature_flag_store) speaks it: the same namespace, structs,
// field ids and types, exception and error code, so that a Python ThriftRPCFeatureFlagStore
// and this crate's Thrift store and server understand each other.
//
// The Rust module crates/flipper/src/store/thrift/generated.rs is generated from this file by
// scripts/gen-thrift (Debian's thrift-compiler 0.17.0); `scripts/gen-thrift --check` (run by
// .ci/run) fails when it is out of date.
//
// Notes for readers of the generated code (see store/thrift/mod.rs for the whole mapping):
// - Every struct field is optional: a reader must cope with any of them missing.
// - JSON fields hold Python's json.dumps text (NaN, Infinity and big integers included).
// - A Condition maps each variable to its checks; the generated Rust keeps maps in a BTreeMap,
//   so variables come back in name order (checks on one variable keep theirs).
// - flipper-client calls List(None, offset) for "no limit": the limit field is then absent
//   from the message, which the generated server code would refuse; store/thrift/list.rs reads
//   and writes List calls by hand for that reason.

namespace java com.carta.flipper

exception FlipperException {
    1: optional ErrorCode code;
    2: optional string message = "";
}

enum ErrorCode {
    NOT_FOUND
}

typedef string JSON

typedef map<string, list<ConditionCheck>> Condition

struct ConditionCheck {
    1: optional string variable;
    2: optional JSON value;
    3: optional ConditionOperator operator;
}

struct ConditionOperator {
    1: optional string symbol;
}

struct FeatureFlagStoreItem {
    1: optional string feature_name;
    2: optional bool is_enabled;
    3: optional FeatureFlagStoreMeta meta;
}

struct FeatureFlagStoreMeta {
    1: optional i64 created_date;
    2: optional JSON client_data;
    3: optional list<Condition> conditions;
    4: optional JSON bucketer;
}

service FeatureFlagStore {
    FeatureFlagStoreItem Create(1: string feature_name, 2: bool is_enabled, 3: JSON client_data) throws (1: FlipperException error),

    FeatureFlagStoreItem Get(1: string feature_name) throws (1: FlipperException error),

    void Set(1: string feature_name, 2: bool is_enabled) throws (1: FlipperException error),

    void Delete(1: string feature_name) throws (1: FlipperException error),

    list<FeatureFlagStoreItem> List(1: i64 limit, 2: i64 offset) throws (1: FlipperException error),

    void SetMeta(1: string feature_name, 2: FeatureFlagStoreMeta meta) throws (1: FlipperException error)
}
