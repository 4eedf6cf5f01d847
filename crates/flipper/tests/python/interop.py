"""Drives the real flipper-client 1.3.2 for the Rust interoperability tests and store benchmarks.

Reads one JSON command per line on stdin and writes one JSON answer per line on stdout:
{"ok": <value>} or {"error": "<ExceptionClass>: <message>"}. Commands ("op"):

  open       {"kind": "redis" | "redis-cluster", "url": ..., "base_key": ...}
             {"kind": "postgres", "conninfo": ..., "table": ..., "name_column": ..., "item_column": ...}
             {"kind": "s3", "bucket": ..., "endpoint_url": ..., "region": ..., "access_key_id": ..., "secret_access_key": ...}
             {"kind": "consul", "port": ..., "host": ..., "base_key": ..., "token": ...}
  freeze     {"now": <epoch seconds>}   created dates (store.create) use this instant from now on
  create     {"name", "is_enabled", "client_data"}
  enable / disable / destroy / exists / get_client_data / get_meta   {"name"}
  add_condition   {"name", "checks": {"age__gte": 18, ...}}   Condition(**checks)
  set_bucketer    {"name", "bucketer": <bucketer JSON as stored>}
  set_client_data {"name", "client_data": {...}}
  is_enabled      {"name", "checks": {...}, "default": false}
  raw        {"name"}   the stored item re-serialized by Python (None when missing)
  list       {"limit", "offset"}   the names flipper-client lists
  hammer     {"name", "writers", "mutations"}   writers threads x mutations on one flag, the
             same mix as the Rust lost-update test; answers how many effects survived
"""
import json
import sys
import threading
from unittest import mock

from flipper import Condition, FeatureFlagClient
from flipper.bucketing.factory import BucketerFactory

client = None
store = None
patches = []


def do_open(cmd):
    global client, store
    if cmd["kind"] == "redis":
        import redis
        from flipper.contrib.redis import RedisFeatureFlagStore

        store = RedisFeatureFlagStore(
            redis.Redis.from_url(cmd["url"]), base_key=cmd.get("base_key", "features")
        )
    elif cmd["kind"] == "redis-cluster":
        from redis.cluster import RedisCluster
        from flipper.contrib.redis import RedisFeatureFlagStore

        store = RedisFeatureFlagStore(
            RedisCluster.from_url(cmd["url"]), base_key=cmd.get("base_key", "features")
        )
    elif cmd["kind"] == "consul":
        import consul
        from flipper.contrib.consul import ConsulFeatureFlagStore

        agent = consul.Consul(
            host=cmd.get("host", "127.0.0.1"), port=cmd["port"], token=cmd.get("token")
        )
        store = ConsulFeatureFlagStore(agent, base_key=cmd.get("base_key", "features"))
    elif cmd["kind"] == "s3":
        import boto3
        from flipper.contrib.s3 import S3FeatureFlagStore

        s3 = boto3.client(
            "s3",
            endpoint_url=cmd["endpoint_url"],
            region_name=cmd["region"],
            aws_access_key_id=cmd["access_key_id"],
            aws_secret_access_key=cmd["secret_access_key"],
        )
        store = S3FeatureFlagStore(s3, cmd["bucket"])
    elif cmd["kind"] == "postgres":
        from flipper.contrib.postgresql import PostgreSQLFeatureFlagStore

        kwargs = {k: cmd[k] for k in ("table_name", "name_column", "item_column") if k in cmd}
        store = PostgreSQLFeatureFlagStore(cmd["conninfo"], **kwargs)
    else:
        raise ValueError(f"unknown store kind {cmd['kind']!r}")
    client = FeatureFlagClient(store)
    return None


def do_freeze(cmd):
    for p in patches:
        p.stop()
    patches.clear()
    for module in ("redis", "postgresql", "memory", "consul", "s3"):
        p = mock.patch(f"flipper.contrib.{module}.now", return_value=int(cmd["now"]))
        p.start()
        patches.append(p)
    return None


def hammer(cmd):
    """`writers` threads, each doing `mutations` read-modify-writes on one flag: add a
    condition, merge a distinct client_data key, or toggle; counts the effects that survived."""
    name, writers, mutations = cmd["name"], cmd["writers"], cmd["mutations"]
    client.create(name)
    errors = []

    def work(w):
        try:
            for m in range(mutations):
                kind = m % 3
                if kind == 0:
                    client.add_condition(name, Condition(**{f"w{w}_m{m}": m}))
                elif kind == 1:
                    client.set_client_data(name, {f"w{w}_m{m}": m})
                elif m % 2:
                    client.enable(name)
                else:
                    client.disable(name)
        except Exception as e:  # noqa: BLE001 - reported to the caller
            errors.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    meta = client.get_meta(name)
    conditions = len(meta["conditions"])
    data = len(meta["client_data"])
    expected_conditions = writers * len([m for m in range(mutations) if m % 3 == 0])
    expected_data = writers * len([m for m in range(mutations) if m % 3 == 1])
    return {
        "conditions": conditions,
        "client_data": data,
        "expected_conditions": expected_conditions,
        "expected_client_data": expected_data,
        "errors": errors[:3],
    }


def run(cmd):
    op = cmd["op"]
    if op == "open":
        return do_open(cmd)
    if op == "freeze":
        return do_freeze(cmd)
    if op == "hammer":
        return hammer(cmd)
    name = cmd.get("name")
    if op == "create":
        client.create(name, is_enabled=cmd.get("is_enabled", False), client_data=cmd.get("client_data"))
        return None
    if op in ("enable", "disable", "destroy"):
        getattr(client, op)(name)
        return None
    if op == "exists":
        return client.exists(name)
    if op == "get_client_data":
        return client.get_client_data(name)
    if op == "get_meta":
        return client.get_meta(name)
    if op == "add_condition":
        client.add_condition(name, Condition(**cmd["checks"]))
        return None
    if op == "set_bucketer":
        client.set_bucketer(name, BucketerFactory.create(cmd["bucketer"]))
        return None
    if op == "set_client_data":
        client.set_client_data(name, cmd["client_data"])
        return None
    if op == "is_enabled":
        return client.is_enabled(name, default=cmd.get("default", False), **cmd.get("checks", {}))
    if op == "raw":
        item = store.get(name)
        return None if item is None else item.serialize().decode("utf-8")
    if op == "list":
        return [f.name for f in client.list(limit=cmd.get("limit"), offset=cmd.get("offset", 0))]
    raise ValueError(f"unknown op {op!r}")


def main():
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            answer = {"ok": run(cmd)}
        except Exception as e:  # noqa: BLE001 - the class name is part of the answer
            answer = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
