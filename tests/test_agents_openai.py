"""The OpenAI-compatible policy against a real HTTP server on loopback (no internet)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from latent_env.agents import PolicyError, make_policy
from latent_env.agents.openai import OpenAIPolicy

from latent_env.cli import main
from tests.test_agents import one_torch_thread  # noqa: F401 (autouse: one torch thread)
from tests.test_bench import bench_args

SLOW_SECONDS = 2.0


class FakeChatServer(ThreadingHTTPServer):
    """``/v1/chat/completions``; the request's ``model`` picks the behaviour."""

    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ChatHandler)
        self.hits: Counter[str] = Counter()
        self.bodies: list[dict] = []
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class ChatHandler(BaseHTTPRequestHandler):
    server: FakeChatServer

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        if self.path != "/v1/chat/completions":
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        model = body["model"]
        with self.server.lock:
            self.server.hits[model] += 1
            self.server.bodies.append(body)
            attempt = self.server.hits[model]
        if model == "broken" or (model == "flaky" and attempt == 1):
            return self._send(500, {"error": {"message": "the GPU caught fire"}})
        if model == "forbidden":
            return self._send(403, {"error": {"message": "bad key"}})
        if model == "slow":
            time.sleep(SLOW_SECONDS)
        if model == "garbage":
            return self._send(200, {"unexpected": True})
        text = body["messages"][0]["content"]
        answer = f"<calc>{len(text) % 97} + 1</calc>"
        self._send(200, {"choices": [{"message": {"role": "assistant", "content": answer}}]})

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)


@pytest.fixture(scope="module")
def server():
    srv = FakeChatServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_normal_answer(server):
    policy = make_policy(f"openai:{server.base_url}#echo?timeout=5")
    policy.reset(3)
    actions = policy.act_batch(["abc", "abcd", "x"])
    assert actions == ["<calc>3 + 1</calc>", "<calc>4 + 1</calc>", "<calc>1 + 1</calc>"]
    sent = [b for b in server.bodies if b["model"] == "echo"]
    assert sorted(b["messages"][0]["content"] for b in sent) == ["abc", "abcd", "x"]
    assert all(
        b["seed"] == 3 and b["stop"] == ["<done/>"] and b["temperature"] == 0.0 for b in sent
    )


def test_slow_answer_times_out_with_a_clear_error(server):
    policy = OpenAIPolicy(server.base_url, "slow", timeout=0.5, retries=1, backoff=0.0)
    start = time.perf_counter()
    with pytest.raises(PolicyError) as info:
        policy.act_batch(["hello"])
    elapsed = time.perf_counter() - start
    message = str(info.value)
    assert f"POST {server.base_url}/chat/completions" in message
    assert "0.5 s timeout" in message and "2 attempts" in message
    assert elapsed < 2 * SLOW_SECONDS  # the client gave up; it did not wait for the server


def test_server_error_is_retried_a_bounded_number_of_times(server):
    policy = OpenAIPolicy(server.base_url, "broken", timeout=5, retries=2, backoff=0.01)
    with pytest.raises(PolicyError) as info:
        policy.complete("hello")
    assert server.hits["broken"] == 3
    message = str(info.value)
    assert "HTTP 500" in message and "the GPU caught fire" in message
    assert server.base_url in message and "3 attempts" in message


def test_a_transient_error_is_retried_then_succeeds(server):
    policy = OpenAIPolicy(server.base_url, "flaky", timeout=5, retries=2, backoff=0.01)
    assert policy.complete("abc") == "<calc>3 + 1</calc>"
    assert server.hits["flaky"] == 2


def test_client_errors_are_not_retried(server):
    policy = OpenAIPolicy(server.base_url, "forbidden", timeout=5, retries=3, backoff=0.01)
    with pytest.raises(PolicyError, match="HTTP 403"):
        policy.complete("hello")
    assert server.hits["forbidden"] == 1


def test_a_malformed_answer_is_reported(server):
    policy = OpenAIPolicy(server.base_url, "garbage", timeout=5)
    with pytest.raises(PolicyError, match="not a chat completion"):
        policy.complete("hello")


def test_nobody_listening_is_a_connection_error():
    policy = OpenAIPolicy("http://127.0.0.1:9/v1", "m", timeout=1, retries=0)
    with pytest.raises(PolicyError, match="could not connect"):
        policy.complete("hello")


def test_bench_marks_the_failed_server_and_runs_the_others(server, tmp_path, capsys):
    out = tmp_path / "bench"
    broken = f"openai:{server.base_url}#broken?retries=1&backoff=0"
    working = f"openai:{server.base_url}#echo"
    code = main(bench_args(out, "none", broken, working, extra=("--tools", "calc")))
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    failed = results["policies"][broken]
    assert failed["failed"] is True and failed["episodes"] == 0
    assert "HTTP 500" in failed["error"] and server.base_url in failed["error"]
    ok = results["policies"][working]
    assert ok["failed"] is False and ok["error"] is None and ok["episodes"] == 7
    assert ok["tool_error_rate"] == 0.0  # the fake server's calc blocks all run
    assert results["policies"]["none"]["mean_gain_nats"] == 0.0
    assert "FAILED" in capsys.readouterr().out


def test_bench_exits_1_when_every_policy_fails(server, tmp_path):
    broken = f"openai:{server.base_url}#broken?retries=0"
    code = main(bench_args(tmp_path, broken, extra=("--jobs", "1", "--tools", "calc")))
    assert code == 1
    assert json.loads((tmp_path / "results.json").read_text())["policies"][broken]["failed"]
