"""Evaluates flags with the real flipper-client, for the Rust differential test.

Reads JSON lines {"item": "<stored bytes>", "checks": "<JSON object text>"} on stdin and writes,
per line, {"result": true | false | "TypeError" | "<other exception name>", "reserialized":
"<item.serialize()>"} on stdout. Ramps are pinned to the instant given as argv[1].
"""
import json
import sys
from datetime import datetime
from unittest import mock

from flipper.contrib.storage import FeatureFlagStoreItem

NOW = float(sys.argv[1])


def main():
    out = sys.stdout
    with mock.patch("flipper.bucketing.percentage.linear_ramp_percentage.datetime") as dt:
        dt.now.return_value = datetime.fromtimestamp(NOW)
        dt.fromtimestamp = datetime.fromtimestamp
        for line in sys.stdin:
            case = json.loads(line)
            item = FeatureFlagStoreItem.deserialize(case["item"].encode("utf-8"))
            checks = json.loads(case["checks"])
            # Before evaluating: evaluation adds empty check lists to conditions (a Python bug).
            reserialized = item.serialize().decode("utf-8")
            try:
                result = item.is_enabled(**checks)
            except Exception as e:  # noqa: BLE001 - the class name is the answer
                result = type(e).__name__
            out.write(json.dumps({"result": result, "reserialized": reserialized}) + "\n")


if __name__ == "__main__":
    main()
