"""Evaluates boolean flags against a flipper server with OpenFeature's own OFREP provider.

    python3 evaluate.py BASE_URL TOKEN < cases.json

`cases.json` is a JSON array of `{"flag", "default", "targeting_key"?, "attributes"?}`. Prints
one JSON object per case: `{"flag", "value", "reason", "variant", "error_code",
"error_message"}`, as the OpenFeature SDK reports them (`openfeature-sdk` with
`openfeature-provider-ofrep` from PyPI; nothing here is flipper's code).
"""

import json
import sys

from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext


def text(v):
    """An enum's value (`Reason.STATIC` -> "STATIC"), a string as is, None as None."""
    return None if v is None else getattr(v, "value", v)


def main():
    base_url, token = sys.argv[1], sys.argv[2]
    cases = json.load(sys.stdin)
    api.set_provider(
        OFREPProvider(base_url, headers_factory=lambda: {"Authorization": f"Bearer {token}"})
    )
    client = api.get_client("flipper-ofrep-test")
    for case in cases:
        context = EvaluationContext(
            targeting_key=case.get("targeting_key"), attributes=case.get("attributes", {})
        )
        details = client.get_boolean_details(case["flag"], case["default"], context)
        print(
            json.dumps(
                {
                    "flag": case["flag"],
                    "value": details.value,
                    "reason": text(details.reason),
                    "variant": details.variant,
                    "error_code": text(details.error_code),
                    "error_message": details.error_message,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
