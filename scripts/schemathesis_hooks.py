"""schemathesis hooks for `scripts/schemathesis` (loaded through SCHEMATHESIS_HOOKS).

`PUT /api/v1/flags/{name}` takes a stored flag whose `feature_name` must be the name in the path
(the server answers 400 `invalid_value` otherwise, which `crates/flipper-server/tests/put_stored.rs`
tests). OpenAPI cannot say that two values must be equal, so nearly every body schemathesis draws
names another flag and is refused before the write: the run warned that the operation "mostly
rejected generated data", and the write itself was hardly exercised. This hook gives each drawn
body the path's name, so that the drawn flags reach the store.
"""
import schemathesis


@schemathesis.hook
def map_case(ctx, case):
    if (
        case.method.upper() == "PUT"
        and case.path.endswith("/flags/{name}")
        and isinstance(case.body, dict)
        and "name" in (case.path_parameters or {})
    ):
        case.body["feature_name"] = case.path_parameters["name"]
    return case
