"""API keys: stored hashed, the CLI, the access rule, per-key job isolation and the form's session.

The HTTP tests run the app over the fake analyzer, so jobs really finish (no model needed)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.auth.keys import authenticate_key, create_key, list_keys, revoke_key
from serving.http.access import SESSION_COOKIE
from serving.jobs.store import JobStore
from tests.support import mediagen
from tests.support.servicekit import FakeService, error_of, fake_service, make_settings, open_store, poll_job

pytestmark = pytest.mark.usefixtures("database_url")  # SQLite, then PostgreSQL


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("clip") / "c.mp4"
    return mediagen.write_face_clip(path, n_frames=10, size=(64, 48)).read_bytes()


def test_keys_are_stored_hashed_and_checked(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.sqlite3")
    new = create_key(store, "newsroom")
    assert new.token.startswith(f"tfk_{new.key.id}_")
    assert len(new.token) > 40
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert new.token.split("_", 2)[2].encode() not in raw  # only its sha256 is kept
    store = JobStore(tmp_path / "s.sqlite3")
    found = authenticate_key(store, new.token)
    assert found is not None
    assert found.owner == f"key:{new.key.id}"
    assert found.webhook_secret == new.webhook_secret
    assert authenticate_key(store, new.token[:-1] + ("A" if new.token[-1] != "A" else "B")) is None
    assert authenticate_key(store, "not-a-key") is None
    assert revoke_key(store, new.key.id)
    assert not revoke_key(store, new.key.id)
    assert authenticate_key(store, new.token) is None
    assert [k.revoked_at is not None for k in list_keys(store)] == [True]


def _cli(argv: list[str]) -> int:
    from detector.settings import get_settings
    from serving.cli import main

    get_settings.cache_clear()  # the CLI reads the environment: this test's backend
    return main(argv)


def test_cli_creates_lists_and_revokes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["keys", "--data-dir", str(tmp_path)]
    assert _cli([*base, "create", "--name", "desk"]) == 0
    printed = capsys.readouterr().out
    token = next(line.split()[-1] for line in printed.splitlines() if line.startswith("key:"))
    key_id = next(line.split()[-1] for line in printed.splitlines() if line.startswith("id:"))
    assert "whsec_" in printed
    assert _cli([*base, "list"]) == 0
    listing = capsys.readouterr().out
    assert key_id in listing
    assert "desk" in listing
    assert "active" in listing
    assert token not in listing
    assert _cli([*base, "revoke", key_id]) == 0
    capsys.readouterr()
    for gone in ("ffffffff", key_id):  # unknown, and already revoked: the commands' error line, exit 2
        assert _cli([*base, "revoke", gone]) == 2
        assert capsys.readouterr().err.startswith(f"error: key_not_found: no active key '{gone}'")
    assert _cli([*base, "list"]) == 0
    assert "revoked" in capsys.readouterr().out
    store = open_store(make_settings(tmp_path, tmp_path))
    assert authenticate_key(store, token) is None


@dataclass
class Keyed:
    """A service over the fake analyzer (its worker runs jobs) and two keys."""

    service: FakeService
    first: str
    second: str

    @property
    def client(self) -> TestClient:
        return self.service.client


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[Keyed]:
    settings = make_settings(tmp_path / "data", tmp_path / "weights")
    store = open_store(settings)
    first, second = create_key(store, "a").token, create_key(store, "b").token
    store.close()
    with fake_service(settings) as service:
        yield Keyed(service, first, second)


def test_each_job_is_visible_only_to_the_key_that_made_it(keyed: Keyed, clip: bytes) -> None:
    client, first, second = keyed.client, keyed.first, keyed.second
    posted = client.post("/v1/analyze?name=c.mp4", content=clip, headers={"Authorization": f"Bearer {first}"})
    assert posted.status_code == 202, posted.text
    job_id = posted.json()["job_id"]
    mine = poll_job(client, job_id, timeout=30, headers={"X-API-Key": first})
    assert mine["status"] == "succeeded"
    assert mine["report"]["media"]["name"] == "c.mp4"
    for method in ("GET", "DELETE"):
        theirs = client.request(method, f"/v1/jobs/{job_id}", headers={"X-API-Key": second})
        assert theirs.status_code == 404
        assert error_of(theirs)["code"] == "job_not_found"
        assert "report" not in theirs.text
    assert client.get(f"/v1/jobs/{job_id}").status_code == 401  # anonymous is nobody's owner
    assert client.delete(f"/v1/jobs/{job_id}", headers={"X-API-Key": first}).status_code == 204
    assert client.get(f"/v1/jobs/{job_id}", headers={"X-API-Key": first}).status_code == 404


def test_the_result_cache_never_answers_one_key_with_another_keys_report(keyed: Keyed) -> None:
    from tests.support.hostile import jpeg

    image = jpeg(mediagen.face_photo()[::4, ::4])
    client, first, second = keyed.client, keyed.first, keyed.second
    mine = client.post("/v1/analyze?name=leak-source.jpg", content=image, headers={"X-API-Key": first})
    again = client.post("/v1/analyze", content=image, headers={"X-API-Key": first})
    theirs = client.post("/v1/analyze?name=b.jpg", content=image, headers={"X-API-Key": second})
    assert [r.headers["x-trueframe-cache"] for r in (mine, again, theirs)] == ["miss", "hit", "miss"]
    assert theirs.json()["media"]["name"] == "b.jpg", "another key's file name must not show"


def test_keys_are_required_once_one_exists(tmp_path: Path, clip: bytes) -> None:
    settings = make_settings(tmp_path / "data", tmp_path / "weights")
    with fake_service(settings) as service:
        client = service.client
        open_job = client.post("/v1/analyze?frames=2", content=clip)  # open: no key exists yet
        assert open_job.status_code == 202
        assert poll_job(client, open_job.json()["job_id"], timeout=30)["status"] == "succeeded"
        token = create_key(service.store, "late").token
        for headers in ({}, {"Authorization": "Bearer tfk_00000000_wrong"}, {"X-API-Key": token + "x"}):
            answer = client.post("/v1/analyze?frames=3", content=clip, headers=headers)
            assert answer.status_code == 401
            assert error_of(answer)["code"] == "unauthorized"
        assert client.get("/v1/jobs/job_whatever").status_code == 401
        assert client.get("/healthz").status_code == 200  # operations endpoints stay open
        accepted = client.post("/v1/analyze?frames=3", content=clip, headers={"X-API-Key": token})
        assert accepted.status_code == 202
        job = poll_job(client, accepted.json()["job_id"], timeout=30, headers={"X-API-Key": token})
        assert job["status"] == "succeeded"
        assert [c.options.frames for c in service.analyzer.calls] == [2, 3], "401s never reach it"


def test_keys_are_required_when_configured_even_before_one_exists(tmp_path: Path, clip: bytes) -> None:
    settings = make_settings(tmp_path / "data", tmp_path / "weights", api_keys_required=True)
    with fake_service(settings) as service:
        answer = service.client.post("/v1/analyze", content=clip)
        assert answer.status_code == 401
        assert service.client.post("/v1/session").status_code == 401


def test_the_form_session_is_bound_to_a_key_given_once(keyed: Keyed, clip: bytes) -> None:
    client, first, second = keyed.client, keyed.first, keyed.second
    assert client.post("/v1/session").status_code == 401  # no free session while keys exist
    started = client.post("/v1/session", headers={"Authorization": f"Bearer {first}"})
    assert started.status_code == 204
    cookie = started.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    posted = client.post("/v1/analyze?name=c.mp4", content=clip)  # the cookie alone authorises
    assert posted.status_code == 202, posted.text
    job_id = posted.json()["job_id"]
    assert poll_job(client, job_id, timeout=30)["status"] == "succeeded"
    assert client.get(f"/v1/jobs/{job_id}", headers={"X-API-Key": first}).status_code == 200
    assert client.get(f"/v1/jobs/{job_id}", headers={"X-API-Key": second}).status_code == 404
    cross_site = client.delete(f"/v1/jobs/{job_id}", headers={"Origin": "https://evil.example"})
    assert cross_site.status_code == 401
    assert client.delete("/v1/session").status_code == 204
    client.cookies.clear()
    assert client.get(f"/v1/jobs/{job_id}").status_code == 401


def test_a_revoked_key_loses_access_to_its_jobs(keyed: Keyed, clip: bytes) -> None:
    client, first = keyed.client, keyed.first
    job_id = client.post("/v1/analyze", content=clip, headers={"X-API-Key": first}).json()["job_id"]
    assert revoke_key(keyed.service.store, first.split("_")[1])
    answer = client.get(f"/v1/jobs/{job_id}", headers={"X-API-Key": first})
    assert answer.status_code == 401
    assert error_of(answer)["code"] == "unauthorized"


def test_a_revoked_key_ends_the_sessions_opened_with_it(keyed: Keyed, clip: bytes) -> None:
    client, first = keyed.client, keyed.first
    assert client.post("/v1/session", headers={"X-API-Key": first}).status_code == 204
    job_id = client.post("/v1/analyze", content=clip).json()["job_id"]
    assert revoke_key(keyed.service.store, first.split("_")[1])
    assert client.get(f"/v1/jobs/{job_id}").status_code == 401


def test_open_service_gives_each_visitor_an_anonymous_session(tmp_path: Path, clip: bytes) -> None:
    settings = make_settings(tmp_path / "data", tmp_path / "weights")
    with fake_service(settings) as service:
        client = service.client
        sessions = []
        for _ in range(2):
            client.cookies.clear()
            assert client.post("/v1/session").status_code == 204
            sessions.append({SESSION_COOKIE: client.cookies[SESSION_COOKIE]})
        client.cookies.clear()
        alice, bob = sessions
        job_id = client.post("/v1/analyze?name=c.mp4", content=clip, cookies=alice).json()["job_id"]
        assert poll_job(client, job_id, timeout=30, cookies=alice)["status"] == "succeeded"
        assert client.get(f"/v1/jobs/{job_id}", cookies=bob).status_code == 404
        assert client.get(f"/v1/jobs/{job_id}").status_code == 404  # anonymous is not alice either
        create_key(service.store, "late")  # from now on the service is keyed: anonymous sessions stop
        assert client.get(f"/v1/jobs/{job_id}", cookies=alice).status_code == 401


def test_cli_creates_keys_with_a_role_and_a_webhook_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from detector.settings import get_settings

    monkeypatch.setenv("TRUEFRAME_SERVE__CALLBACK_ALLOW_PRIVATE", "true")
    try:
        base = ["keys", "--data-dir", str(tmp_path)]
        assert _cli([*base, "create", "--role", "reviewer", "--webhook-url", "http://127.0.0.1:9/hook"]) == 0
        printed = capsys.readouterr().out
        assert "role:           reviewer" in printed
        assert "webhook url:    http://127.0.0.1:9/hook" in printed
        assert _cli([*base, "create", "--webhook-url", "ftp://example.org/x"]) == 2
        assert capsys.readouterr().err.startswith("error: invalid_request: --webhook-url must be an absolute")
    finally:
        get_settings.cache_clear()
    (key,) = list_keys(open_store(make_settings(tmp_path, tmp_path)))
    assert (key.role, key.webhook_url) == ("reviewer", "http://127.0.0.1:9/hook")
