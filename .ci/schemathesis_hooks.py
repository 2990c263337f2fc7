"""Schemathesis hooks for `.ci/schemathesis`.

JSON Schema states each field on its own; some rules of the API relate a request to another
field, to the clock or to an earlier request, which no schema can say. A schema-valid request
that breaks one of them is rightly refused, so such a refusal is not counted as "valid data
rejected" (ST202) -- but only when the problem document names exactly that rule; any other
refusal of schema-valid data still fails the run.
"""

import json
import re
from datetime import datetime, timedelta
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
    # POST /admin/webhooks: the address must be a whole http(s) URL (the pattern states only its
    # start) whose name resolves, and only to public addresses (no loopback or private ones
    # unless allowed, never link-local or metadata ones): decided by URL parsing and name
    # resolution, which no schema states.
    "POST /api/v1/admin/webhooks": (400, "VALIDATION_FAILED", "webhook address"),
    # POST /orders: lines of one product are merged, and the merged quantity is bounded too.
    "POST /api/v1/orders": (400, "INVALID_ORDER", "across its lines"),
}

# Every operation: a timestamp's year must be 0001..=9999 once converted to UTC (API.md,
# Conventions). The schema's pattern states the shape; whether `0001-01-01T00:00:20+00:34` falls
# into year 0 depends on the offset against the time of day, which no pattern states legibly. The
# refusal must name the rule and the request must hold such a timestamp (`_outside_utc_years`).
UTC_YEARS = (400, "VALIDATION_FAILED", "timestamps must be in 0001..=9999")

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


TIMESTAMP = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))$"
)


def _utc_year(raw):
    """The UTC year of an RFC 3339 timestamp, or None if `raw` is not one. Python's datetime has
    no year 0 or 10000, so the instant is shifted by 400 years (one whole Gregorian cycle: the
    same calendar) into its range and back."""
    found = TIMESTAMP.match(raw) if isinstance(raw, str) else None
    if found is None:
        return None
    year, month, day, hour, minute, second, sign, off_h, off_m = found.groups()
    shift = 400 if int(year) < 5000 else -400
    try:
        local = datetime(int(year) + shift, int(month), int(day), int(hour), int(minute), min(int(second), 59))
    except ValueError:
        return None
    offset = timedelta(hours=int(off_h or 0), minutes=int(off_m or 0))
    utc = local - offset if sign == "+" else local + offset
    return utc.year - shift


def _outside_utc_years(case):
    """Whether the request's body holds a timestamp whose UTC year is not 0001..=9999."""
    body = case.body if isinstance(case.body, dict) else {}
    years = (_utc_year(value) for value in body.values())
    return any(year is not None and not 1 <= year <= 9999 for year in years)


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
    if _outside_utc_years(case):
        return not _names(response, problem, UTC_YEARS)
    rule = RULES.get(operation)
    return rule is None or not _names(response, problem, rule)


def _names(response, problem, rule):
    """Whether the refusal is the one `rule` describes: its status, code and words of detail."""
    status, code, detail = rule
    return (
        response.status_code == status
        and problem.get("code") == code
        and detail in str(problem.get("detail", ""))
    )
