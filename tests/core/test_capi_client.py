"""The Conversion API client, whole exports, and the sandbox's Conversion API endpoint."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pytest_httpx import HTTPXMock

from core.capi import ExportOptions, ExportSummary, export_file
from core.capi_client import (
    SANDBOX_BASE,
    CapiClient,
    Outcome,
    RetryPolicy,
    classify,
    sandbox_transport,
)
from core.errors import InputError
from core.sandbox.app import SandboxState, create_app
from core.sandbox.faults import Fault, SandboxSpec

BASE = "https://conversion-api.tr.line.me"
TAG = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
URL = f"{BASE}/v1/{TAG}/events"
TOKEN_ENV = "ACME_CAPI_TOKEN"
SECRET = "tag-access-token-s3cr3t"
BODY = b'[{"event":{},"user":{}}]'
NOW = datetime.now(UTC).replace(microsecond=0)
TS = int(NOW.timestamp())
HASHED = "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"


class FakeSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(TOKEN_ENV, SECRET)
    return SECRET


@pytest.fixture
async def client(token: str) -> AsyncIterator[CapiClient]:
    capi = CapiClient(
        BASE,
        TAG,
        token_env=TOKEN_ENV,
        channel_id="1657000000",
        transport=httpx.AsyncHTTPTransport(),
    )
    yield capi
    await capi.aclose()


# --- one request ------------------------------------------------------------------------------


async def test_headers_body_and_length(client: CapiClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=URL, method="POST", status_code=202)
    response = await client.post_events(BODY, line_uid=False)
    assert response.accepted and response.status == 202
    request = httpx_mock.get_requests()[0]
    assert request.headers["x-line-tagaccesstoken"] == SECRET
    assert request.headers["content-type"] == "application/json"
    assert request.headers["content-length"] == str(len(BODY))
    assert "transfer-encoding" not in request.headers
    assert "authorization" not in request.headers
    assert "x-line-channelid" not in request.headers
    assert request.content == BODY


async def test_channel_id_only_with_line_uid(client: CapiClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=URL, status_code=202)
    await client.post_events(BODY, line_uid=True)
    assert httpx_mock.get_requests()[0].headers["x-line-channelid"] == "1657000000"


async def test_token_is_read_at_the_moment_of_use(
    client: CapiClient, httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    httpx_mock.add_response(url=URL, status_code=202, is_reusable=True)
    await client.post_events(BODY, line_uid=False)
    monkeypatch.setenv(TOKEN_ENV, "rotated-token")
    await client.post_events(BODY, line_uid=False)
    tokens = [r.headers["x-line-tagaccesstoken"] for r in httpx_mock.get_requests()]
    assert tokens == [SECRET, "rotated-token"]
    monkeypatch.delenv(TOKEN_ENV)
    missing = await client.post_events(BODY, line_uid=False)
    assert missing.outcome is Outcome.FATAL and TOKEN_ENV in (missing.message or "")
    assert len(httpx_mock.get_requests()) == 2


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (202, Outcome.ACCEPTED),
        (400, Outcome.REFUSED),
        (413, Outcome.REFUSED),
        (401, Outcome.FATAL),
        (403, Outcome.FATAL),
        (404, Outcome.FATAL),
        (408, Outcome.TRANSIENT),
        (429, Outcome.TRANSIENT),
        (500, Outcome.TRANSIENT),
        (503, Outcome.TRANSIENT),
    ],
)
def test_status_classes(status: int, expected: Outcome) -> None:
    assert classify(status) is expected


async def test_error_bodies_are_read_and_the_token_scrubbed(
    client: CapiClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        url=URL,
        status_code=400,
        json={
            "message": f"bad token {SECRET}",
            "details": [{"property": "[0].user.email", "message": "invalid"}],
        },
    )
    response = await client.post_events(BODY, line_uid=False)
    assert response.outcome is Outcome.REFUSED
    assert response.message == "bad token *** ([0].user.email: invalid)"


# --- retries ----------------------------------------------------------------------------------


def test_retry_waits_double_from_the_initial_wait_and_are_capped() -> None:
    policy = RetryPolicy(max_retry=6, initial_wait=15, max_wait=100)
    assert [policy.wait(n) for n in range(1, 7)] == [15, 30, 60, 100, 100, 100]


async def test_5xx_and_timeouts_are_retried_until_accepted(
    client: CapiClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=URL, status_code=500)
    httpx_mock.add_exception(httpx.ReadTimeout("slow"), url=URL)
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=URL)
    httpx_mock.add_response(url=URL, status_code=202)
    sleep = FakeSleep()
    retried: list[tuple[int, float]] = []
    result = await client.send_batch(
        BODY,
        line_uid=False,
        retry=RetryPolicy(8, 15, 3600),
        sleep=sleep,
        on_retry=lambda response, attempt, wait: retried.append((attempt, wait)),
    )
    assert result.response.accepted and result.attempts == 4
    assert sleep.waits == [15, 30, 60]
    assert retried == [(1, 15), (2, 30), (3, 60)]
    bodies = {r.content for r in httpx_mock.get_requests()}
    assert bodies == {BODY}, "every attempt sends the same batch"


async def test_retries_run_out_after_max_retry(client: CapiClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=URL, status_code=503, is_reusable=True)
    sleep = FakeSleep()
    result = await client.send_batch(
        BODY, line_uid=False, retry=RetryPolicy(3, 1, 100), sleep=sleep
    )
    assert result.response.outcome is Outcome.TRANSIENT and result.attempts == 4
    assert sleep.waits == [1, 2, 4]
    assert len(httpx_mock.get_requests()) == 4


@pytest.mark.parametrize("status", [400, 401])
async def test_400_and_401_are_never_retried(
    client: CapiClient, httpx_mock: HTTPXMock, status: int
) -> None:
    httpx_mock.add_response(url=URL, status_code=status)
    sleep = FakeSleep()
    result = await client.send_batch(BODY, line_uid=False, retry=RetryPolicy(), sleep=sleep)
    assert result.attempts == 1 and sleep.waits == []
    assert len(httpx_mock.get_requests()) == 1


# --- whole exports ----------------------------------------------------------------------------


COLUMNS = ["deduplication_key", "event_type", "source_type", "event_timestamp", "email", "line_uid"]


def conversions(
    path: Path, count: int, *, bad_rows: tuple[int, ...] = (), uid_rows: tuple[int, ...] = ()
) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for row in range(1, count + 1):
            email = "not-an-email" if row in bad_rows else f"user{row}@example.com"
            uid = f"U{row:032x}" if row in uid_rows else ""
            writer.writerow([f"key-{row}", "conversion", "web", TS, email, uid])
    return path


async def export(
    path: Path, *, transport: Any = None, sandbox: SandboxState | None = None, **options: Any
) -> tuple[ExportSummary, FakeSleep]:
    sleep = FakeSleep()
    base = options.pop("capi_base", BASE if sandbox is None else "sandbox")
    summary = await export_file(
        path,
        ExportOptions(tag_id=TAG, token_env=TOKEN_ENV, **options),
        capi_base=base,
        now=NOW,
        transport=transport,
        sandbox=sandbox,
        sleep=sleep,
    )
    return summary, sleep


async def test_export_batches_in_order_with_the_batch_size(
    tmp_path: Path, token: str, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=URL, status_code=202, is_reusable=True)
    summary, _ = await export(
        conversions(tmp_path / "c.csv", 2500),
        transport=httpx.AsyncHTTPTransport(),
        batch_size=1000,
    )
    assert summary.document() == {
        "sent": 2500,
        "skipped_invalid": 0,
        "failed": 0,
        "batches": 3,
        "invalid": [],
    }
    assert summary.exit_code == 0
    requests = httpx_mock.get_requests()
    sizes = [len(orjson.loads(r.content)) for r in requests]
    assert sizes == [1000, 1000, 500]
    first = orjson.loads(requests[0].content)[0]
    assert first["event"]["deduplication_key"] == "key-1"
    assert len(first["user"]["email"]) == 64


async def test_ignore_invalid_on_skips_and_reports(
    tmp_path: Path, token: str, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=URL, status_code=202)
    summary, _ = await export(
        conversions(tmp_path / "c.csv", 10, bad_rows=(3, 7)), transport=httpx.AsyncHTTPTransport()
    )
    document = summary.document()
    assert (document["sent"], document["skipped_invalid"], document["batches"]) == (8, 2, 1)
    assert [(p["row"], p["column"]) for p in document["invalid"]] == [(3, "email"), (7, "email")]
    assert summary.exit_code == 0
    assert len(orjson.loads(httpx_mock.get_requests()[0].content)) == 8


async def test_ignore_invalid_off_sends_nothing_when_one_row_is_bad(
    tmp_path: Path, token: str, httpx_mock: HTTPXMock
) -> None:
    summary, _ = await export(
        conversions(tmp_path / "c.csv", 3000, bad_rows=(2999,)),
        transport=httpx.AsyncHTTPTransport(),
        ignore_invalid_records=False,
    )
    assert httpx_mock.get_requests() == []
    assert summary.refused_input and summary.exit_code == 2
    assert summary.document()["invalid"][0]["row"] == 2999
    assert summary.sent == 0


async def test_ignore_invalid_off_sends_everything_when_all_rows_are_good(
    tmp_path: Path, token: str, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=URL, status_code=202, is_reusable=True)
    summary, _ = await export(
        conversions(tmp_path / "c.csv", 1500),
        transport=httpx.AsyncHTTPTransport(),
        ignore_invalid_records=False,
    )
    assert (summary.sent, summary.batches, summary.exit_code) == (1500, 2, 0)


async def test_a_refused_batch_is_reported_and_the_rest_still_sent(
    tmp_path: Path, token: str, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=URL, status_code=202)
    httpx_mock.add_response(url=URL, status_code=400)
    httpx_mock.add_response(url=URL, status_code=202)
    summary, sleep = await export(
        conversions(tmp_path / "c.csv", 2100), transport=httpx.AsyncHTTPTransport()
    )
    assert (summary.sent, summary.failed, summary.batches) == (1100, 1000, 3)
    assert summary.exit_code == 1 and sleep.waits == []
    [problem] = summary.problems
    assert problem.number == 2 and problem.outcome == "refused"
    assert "batch 2 (1000 events, rows 1001-2000)" in problem.describe()
    assert "every event in it was discarded" in problem.describe()


async def test_401_stops_the_export_and_never_shows_the_token(
    tmp_path: Path, token: str, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=URL, status_code=401, text=f"token {SECRET} is not valid")
    summary, _ = await export(
        conversions(tmp_path / "c.csv", 3500), transport=httpx.AsyncHTTPTransport()
    )
    assert len(httpx_mock.get_requests()) == 1
    assert (summary.sent, summary.failed, summary.batches) == (0, 3500, 4)
    assert summary.exit_code == 1
    assert summary.stopped is not None and "401" in summary.stopped
    everything = repr(summary.problems) + summary.stopped
    assert SECRET not in everything


async def test_retries_in_an_export_follow_the_seed_settings(
    tmp_path: Path, token: str, httpx_mock: HTTPXMock
) -> None:
    for _ in range(3):
        httpx_mock.add_response(url=URL, status_code=500)
    summary, sleep = await export(
        conversions(tmp_path / "c.csv", 5),
        transport=httpx.AsyncHTTPTransport(),
        max_retry=2,
        initial_retry_wait=10,
        max_retry_wait=100,
    )
    assert sleep.waits == [10, 20]
    assert (summary.sent, summary.failed, summary.exit_code) == (0, 5, 1)
    assert summary.problems[0].outcome == "failed" and summary.problems[0].attempts == 3


async def test_channel_id_header_follows_the_batch(
    tmp_path: Path, token: str, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=URL, status_code=202, is_reusable=True)
    await export(
        conversions(tmp_path / "c.csv", 2000, uid_rows=(1500,)),
        transport=httpx.AsyncHTTPTransport(),
        channel_id="1657000000",
    )
    first, second = httpx_mock.get_requests()
    assert "x-line-channelid" not in first.headers
    assert second.headers["x-line-channelid"] == "1657000000"


async def test_dry_run_sends_nothing_and_shows_no_token(tmp_path: Path, token: str) -> None:
    printed: list[bytes] = []
    summary = await export_file(
        conversions(tmp_path / "c.csv", 1200),
        ExportOptions(tag_id=TAG, token_env=TOKEN_ENV),
        capi_base=BASE,
        now=NOW,
        dry_run=True,
        on_request=printed.append,
        transport=httpx.MockTransport(lambda request: pytest.fail("sent during a dry run")),
    )
    assert summary.batches == 2 and summary.sent == 0 and summary.exit_code == 0
    first = orjson.loads(printed[0])
    assert first["url"] == URL and first["method"] == "POST"
    assert first["headers"]["X-Line-TagAccessToken"] == f"<not shown: read from ${TOKEN_ENV}>"
    assert len(first["body"]) == 1000 and len(first["body"][0]["user"]["email"]) == 64
    assert all(SECRET.encode() not in line for line in printed)


async def test_dry_run_needs_no_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    summary = await export_file(
        conversions(tmp_path / "c.csv", 3),
        ExportOptions(tag_id=TAG, token_env=TOKEN_ENV),
        capi_base=BASE,
        now=NOW,
        dry_run=True,
    )
    assert summary.batches == 1


async def test_unknown_jsonl_columns_stop_the_export_before_sending(
    tmp_path: Path, token: str, httpx_mock: HTTPXMock
) -> None:
    path = tmp_path / "c.jsonl"
    good = {"deduplication_key": "k", "event_type": "conversion", "source_type": "web"}
    lines = [orjson.dumps({**good, "event_timestamp": TS, "email": "a@b.co"})] * 3
    lines.append(orjson.dumps({**good, "event_timestamp": TS, "emial": "a@b.co"}))
    path.write_bytes(b"\n".join(lines) + b"\n")
    for ignore in (True, False):
        with pytest.raises(
            InputError, match="'emial' \\(did you mean 'email'\\?\\) first in row 4"
        ):
            await export(path, transport=httpx.AsyncHTTPTransport(), ignore_invalid_records=ignore)
    assert httpx_mock.get_requests() == []


async def test_export_to_the_in_process_sandbox(tmp_path: Path) -> None:
    state = SandboxState()
    path = conversions(tmp_path / "c.csv", 1500, uid_rows=(2,))
    summary = await export_file(
        path,
        ExportOptions(tag_id=TAG, channel_id="1657000000"),
        capi_base="sandbox",
        now=NOW,
        sandbox=state,
    )
    assert (summary.sent, summary.batches, summary.exit_code) == (1500, 2, 0)
    assert state.capi.accepted_events == 1500
    assert state.capi.events[1]["user"]["line_uid"] == f"U{2:032x}"
    assert [b["channel_id"] for b in state.capi.batches] == ["1657000000", None]
    again = await export_file(
        path,
        ExportOptions(tag_id=TAG, channel_id="1657000000"),
        capi_base="sandbox",
        now=NOW,
        sandbox=state,
    )
    assert again.sent == 1500
    assert state.capi.accepted_events == 1500 and state.capi.duplicates == 1500


async def test_sandbox_faults_are_retried_and_deduplicated(tmp_path: Path) -> None:
    spec = SandboxSpec(
        faults=[
            Fault(kind="fail_first", count=2, endpoint="capi"),
            Fault(kind="lost_answer", rate=0.5, endpoint="capi", seed=3),
        ]
    )
    state = SandboxState(spec=spec)
    sleep = FakeSleep()
    summary = await export_file(
        conversions(tmp_path / "c.csv", 6000),
        ExportOptions(tag_id=TAG),
        capi_base="sandbox",
        now=NOW,
        sandbox=state,
        sleep=sleep,
    )
    assert (summary.sent, summary.failed, summary.exit_code) == (6000, 0, 0)
    assert sleep.waits[:2] == [15, 30]
    assert state.capi.accepted_events == 6000, "a lost answer's retry is deduplicated"
    assert state.capi.duplicates > 0


# --- the sandbox endpoint ---------------------------------------------------------------------


def event(key: str = "k1", **user: Any) -> dict[str, Any]:
    return {
        "event": {
            "deduplication_key": key,
            "event_type": "conversion",
            "source_type": "web",
            "event_timestamp": TS,
            "event_name": "Conversion",
        },
        "user": user or {"email": HASHED},
    }


@pytest.fixture
async def sandbox() -> AsyncIterator[tuple[httpx.AsyncClient, SandboxState]]:
    state = SandboxState()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(state)), base_url=SANDBOX_BASE
    ) as http:
        yield http, state


PATH = f"/v1/{TAG}/events"
AUTH = {"X-Line-TagAccessToken": "any"}


async def test_sandbox_accepts_and_deduplicates_by_name_and_key(
    sandbox: tuple[httpx.AsyncClient, SandboxState],
) -> None:
    http, state = sandbox
    purchase = event("k1")
    purchase["event"]["event_name"] = "Purchase"
    purchase["custom"] = {"value": 100}
    response = await http.post(PATH, content=orjson.dumps([event("k1"), event("k2")]), headers=AUTH)
    assert response.status_code == 202
    response = await http.post(PATH, content=orjson.dumps([event("k1"), purchase]), headers=AUTH)
    assert response.status_code == 202
    assert (state.capi.accepted_events, state.capi.duplicates) == (3, 1)
    seen = await http.get("/_sandbox/capi")
    document = seen.json()
    assert document["accepted_events"] == 3 and len(document["batches"]) == 2
    assert document["batches"][1] == {**document["batches"][1], "new": 1, "duplicates": 1}


async def test_sandbox_refuses_the_whole_batch_for_one_bad_event(
    sandbox: tuple[httpx.AsyncClient, SandboxState],
) -> None:
    http, state = sandbox
    body = [event("k1"), event("k2", email="John@Example.com")]
    response = await http.post(PATH, content=orjson.dumps(body), headers=AUTH)
    assert response.status_code == 400
    assert response.json()["details"][0]["property"] == "[1].user.email"
    assert state.capi.accepted_events == 0 and state.capi.refused_batches == 1


async def test_sandbox_needs_a_token_and_a_fixed_length(
    sandbox: tuple[httpx.AsyncClient, SandboxState],
) -> None:
    http, _ = sandbox
    body = orjson.dumps([event()])
    assert (await http.post(PATH, content=body)).status_code == 401

    async def chunks() -> AsyncIterator[bytes]:
        yield body

    response = await http.post(PATH, content=chunks(), headers=AUTH)
    assert response.status_code == 400 and "chunked" in response.json()["message"]


async def test_sandbox_limits_the_batch_and_checks_the_channel(
    sandbox: tuple[httpx.AsyncClient, SandboxState],
) -> None:
    http, _ = sandbox
    assert (await http.post(PATH, content=b"[]", headers=AUTH)).status_code == 400
    assert (await http.post(PATH, content=b"{}", headers=AUTH)).status_code == 400
    assert (await http.post(PATH, content=b"not json", headers=AUTH)).status_code == 400
    too_many = b"[" + b",".join([orjson.dumps(event(f"k{i}")) for i in range(100_001)]) + b"]"
    assert (await http.post(PATH, content=too_many, headers=AUTH)).status_code == 400
    uid = event("k", line_uid="U" + "a" * 32)
    no_channel = await http.post(PATH, content=orjson.dumps([uid]), headers=AUTH)
    assert no_channel.status_code == 400
    with_channel = await http.post(
        PATH, content=orjson.dumps([uid]), headers={**AUTH, "X-Line-ChannelID": "1657000000"}
    )
    assert with_channel.status_code == 202


async def test_sandbox_checks_the_timestamp_window_against_its_clock(
    sandbox: tuple[httpx.AsyncClient, SandboxState],
) -> None:
    http, state = sandbox
    old = event("k")
    old["event"]["event_timestamp"] = TS - 91 * 86400
    response = await http.post(PATH, content=orjson.dumps([old]), headers=AUTH)
    assert response.status_code == 400
    state.capi.clock = lambda: NOW.replace(year=NOW.year - 1)
    future = event("k")
    response = await http.post(PATH, content=orjson.dumps([future]), headers=AUTH)
    assert response.status_code == 400 and "24 hours after" in response.text


async def test_sandbox_transport_for_the_client(tmp_path: Path) -> None:
    state = SandboxState(spec=SandboxSpec(faults=[Fault(kind="unauthorized", endpoint="capi")]))
    capi = CapiClient(
        SANDBOX_BASE, TAG, token_env=None, sandbox=True, transport=sandbox_transport(state)
    )
    response = await capi.post_events(orjson.dumps([event()]), line_uid=False)
    await capi.aclose()
    assert response.outcome is Outcome.FATAL and response.status == 401
