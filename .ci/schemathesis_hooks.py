"""Schemathesis hooks for `.ci/schemathesis`.

JSON Schema states each field on its own; some rules of the API relate a request to another
field, to the clock or to an earlier request, which no schema can say. A schema-valid request
that breaks one of them is rightly refused, so such a refusal is not counted as "valid data
rejected" (ST202) -- but only when the problem document names exactly that rule; any other
refusal of schema-valid data still fails the run.
"""

import json
from urllib.parse import urlsplit

import schemathesis

RULES = {
    # POST /admin/coupons: the issue window must not be empty.
    "POST /api/v1/admin/coupons": (400, "VALIDATION_FAILED", "issue_starts_at must be before issue_ends_at"),
    # POST and PATCH /admin/products: the sale window must not be empty (PATCH: as it leaves it).
    "POST /api/v1/admin/products": (400, "VALIDATION_FAILED", "must be before sale_ends_at"),
    "PATCH /api/v1/admin/products/{id}": (400, "VALIDATION_FAILED", "must be before sale_ends_at"),
    # POST /admin/jobs/daily-sales: only a day that is over in the shop's time zone.
    "POST /api/v1/admin/jobs/daily-sales": (400, "VALIDATION_FAILED", "is not over yet"),
    # POST /orders: lines of one product are merged, and the merged quantity is bounded too.
    "POST /api/v1/orders": (400, "INVALID_ORDER", "across its lines"),
}

# Reusing an Idempotency-Key with another request is a client error by design (API.md); the
# generator cannot know which keys an earlier case used. Every operation that takes the header.
KEY_REUSE = {
    "POST /api/v1/orders",
    "POST /api/v1/me/balance/charges",
    "POST /api/v1/orders/{id}/cancel",
    "POST /api/v1/admin/orders/{id}/cancel",
}

# Every distinct request sent with each key, by (Authorization, Idempotency-Key): the server
# keeps one request per user and key, and refuses the key with any other.
SENT = {}


def _problem(response):
    try:
        return response.json()
    except Exception:
        return {}


def _key_of(request):
    key = request.headers.get("Idempotency-Key")
    return None if key is None else (request.headers.get("Authorization"), key)


def _request_of(request):
    """What makes two requests the same one: method, path and query, and the parsed body."""
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode()
    try:
        body = json.dumps(json.loads(body), sort_keys=True) if body else None
    except ValueError:
        pass
    url = urlsplit(request.url)
    return (request.method, url.path, url.query, body)


def _reused_with_another_request(response):
    """Whether a request other than this one was sent with its key before it."""
    key = _key_of(response.request)
    this = _request_of(response.request)
    return any(earlier != this for earlier in SENT.get(key, ()))


@schemathesis.hook
def after_call(ctx, case, response):
    key = _key_of(response.request)
    if key is not None:
        SENT.setdefault(key, []).append(_request_of(response.request))


@schemathesis.hook
def filter_failure(ctx, failure, case, response):
    """Keep every failure except a positive case refused by one of the rules above."""
    if type(failure).__name__ != "RejectedPositiveData":
        return True
    problem = _problem(response)
    # The stateful phase infers links from field names, so a null `order_id` of a balance history
    # row becomes the path `/orders/None/cancel`. That request is not schema-valid (ids are
    # positive integers); a 400 VALIDATION_FAILED is right, any other answer is not.
    if any(value is None for value in (case.path_parameters or {}).values()):
        return not (response.status_code == 400 and problem.get("code") == "VALIDATION_FAILED")
    operation = f"{case.method.upper()} {case.operation.path}"
    if operation in KEY_REUSE and response.status_code == 422:
        if problem.get("code") != "IDEMPOTENCY_KEY_REUSED":
            return True
        # Right only if this key went with another request before.
        return not _reused_with_another_request(response)
    rule = RULES.get(operation)
    if rule is None:
        return True
    status, code, detail = rule
    known = (
        response.status_code == status
        and problem.get("code") == code
        and detail in str(problem.get("detail", ""))
    )
    return not known
