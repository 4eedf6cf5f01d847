"""Drives the real flipper-client 1.3.2's ThriftRPCFeatureFlagStore (with its generated
flipper_thrift code and the `thrift` package from PyPI) against a Thrift server, for the Rust
tests of the Thrift server (crates/flipper/tests/thrift_python.rs).

Usage: thrift_client.py HOST PORT [buffered|framed]

Reads one JSON command per line on stdin and writes one JSON answer per line on stdout:
{"ok": <value>} or {"error": "<ExceptionClass>: <message>"}. Commands ("op"):

  store level (ThriftRPCFeatureFlagStore itself):
    create     {"name", "is_enabled", "client_data"}   the created item, as item.to_dict()
    get        {"name"}                                item.to_dict(), or None when missing
    raw        {"name"}                                item.serialize() as text, or None
    set        {"name", "is_enabled"}
    set_meta   {"name", "meta": <stored meta JSON>}    FeatureFlagStoreMeta.from_dict(meta)
    delete     {"name"}
    list       {"limit", "offset"}                     [item.to_dict(), ...]
  client level (FeatureFlagClient over the same store):
    add_condition {"name", "checks": {"age__gte": 18, ...}}   Condition(**checks)
    set_bucketer  {"name", "bucketer": <bucketer JSON as stored>}
    is_enabled    {"name", "contexts": [{...}, ...], "default": false}   one answer per context:
                  true, false, or "raises <ExceptionClass>" where Python raises
"""
import json
import sys

from flipper import Condition, FeatureFlagClient
from flipper.bucketing.factory import BucketerFactory
from flipper.contrib.storage import FeatureFlagStoreMeta
from flipper.contrib.thrift import ThriftRPCFeatureFlagStore
from flipper_thrift.python.feature_flag_store import FeatureFlagStore
from thrift.protocol import TBinaryProtocol
from thrift.transport import TSocket, TTransport


def connect(host, port, framing):
    socket = TSocket.TSocket(host, port)
    socket.setTimeout(10_000)
    if framing == "framed":
        transport = TTransport.TFramedTransport(socket)
    else:
        transport = TTransport.TBufferedTransport(socket)
    client = FeatureFlagStore.Client(TBinaryProtocol.TBinaryProtocol(transport))
    transport.open()
    return ThriftRPCFeatureFlagStore(client)


def run(store, client, cmd):
    op = cmd["op"]
    name = cmd.get("name")
    if op == "create":
        item = store.create(name, is_enabled=cmd.get("is_enabled", False), client_data=cmd.get("client_data"))
        return item.to_dict()
    if op == "get":
        item = store.get(name)
        return None if item is None else item.to_dict()
    if op == "raw":
        item = store.get(name)
        return None if item is None else item.serialize().decode("utf-8")
    if op == "set":
        store.set(name, cmd["is_enabled"])
        return None
    if op == "set_meta":
        store.set_meta(name, FeatureFlagStoreMeta.from_dict(cmd["meta"]))
        return None
    if op == "delete":
        store.delete(name)
        return None
    if op == "list":
        return [i.to_dict() for i in store.list(limit=cmd.get("limit"), offset=cmd.get("offset", 0))]
    if op == "add_condition":
        client.add_condition(name, Condition(**cmd["checks"]))
        return None
    if op == "set_bucketer":
        client.set_bucketer(name, BucketerFactory.create(cmd["bucketer"]))
        return None
    if op == "is_enabled":
        default = cmd.get("default", False)
        return [is_enabled(client, name, default, checks) for checks in cmd["contexts"]]
    raise ValueError(f"unknown op {op!r}")


def is_enabled(client, name, default, checks):
    try:
        return client.is_enabled(name, default=default, **checks)
    except Exception as e:  # noqa: BLE001 - where Python raises, flipper answers an error
        return f"raises {type(e).__name__}"


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    framing = sys.argv[3] if len(sys.argv) > 3 else "buffered"
    store = connect(host, port, framing)
    client = FeatureFlagClient(store)
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            answer = {"ok": run(store, client, cmd)}
        except Exception as e:  # noqa: BLE001 - the class name is part of the answer
            answer = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
