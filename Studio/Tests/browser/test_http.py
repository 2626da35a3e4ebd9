"""The studio's HTTP API on loopback: refusals with messages (path traversal, 413, 400), one
training at a time while the server keeps answering, Ctrl-C during a training, and 1,000 prediction
requests from 8 concurrent clients."""
import http.client
import json
import os
import random
import re
import socket
import statistics
import threading
import time

import pytest

from conftest import OUT, Server


def raw_get(server, path):
    """Sends the path exactly as written (no client-side normalisation of .. or %2e)."""
    with socket.create_connection((server.host, server.port), timeout=30) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {server.host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    return status, body


def request(server, method, path, body=b"", headers=None):
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    connection.request(method, path, body=body, headers=headers or {"Content-Type": "application/json"})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, data


@pytest.fixture(scope="module")
def escape_link(server):
    link = server.runs / "base" / "escape"
    if not link.exists():
        os.symlink("/etc", link)
    yield link


@pytest.mark.parametrize("path", [
    "/runs/base/../../../../etc/passwd",
    "/runs/base/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/runs/base/..%2f..%2f..%2fetc%2fpasswd",
    "/runs/base/escape/passwd",
    "/runs/base//etc/passwd",
    "/runs/..%2f..%2fetc/passwd",
    "/../../etc/passwd",
    "/assets/..%2fstudio.js",
    "/assets/../../Package.swift",
])
def test_path_traversal_is_refused_with_a_message(server, escape_link, path):
    status, body = raw_get(server, path)
    assert status in (403, 404), (path, status, body)
    assert b"root:" not in body
    assert json.loads(body)["error"], body


def test_run_files_are_served(server):
    status, body = raw_get(server, "/runs/base/metrics.csv")
    assert status == 200 and body.startswith(b"type,epoch,iteration,loss")
    status, body = raw_get(server, "/runs/base/report.html")
    assert status == 200 and b"<html" in body.lower()


def test_oversized_bodies_get_413(server):
    big = json.dumps({"pixels": [255] * 784, "padding": "x" * 100_000}).encode()
    for path in ("/api/predict", "/api/maps", "/api/train"):
        status, body = request(server, "POST", path, big)
        assert status == 413, (path, status)
        assert "larger than" in json.loads(body)["error"]


@pytest.mark.parametrize("body, message", [
    (b"{not json", "not valid JSON"),
    (b'{"pixels": [1, 2, 3]}', "has 3 values"),
    (b'{"pixels": "ink"}', "whole numbers"),
    (json.dumps({"pixels": [300] * 784}).encode(), "gray level 0-255"),
])
def test_malformed_predictions_get_400(server, body, message):
    status, data = request(server, "POST", "/api/predict", body)
    assert status == 400
    assert message in json.loads(data)["error"]


def test_malformed_training_requests_get_400(server):
    for body, message in ((b"[1,", "not valid JSON"), (b'{"epochs": "two"}', "wrong type"), (b'{"model": "nope"}', "unknown network"),
                          (b'{"recipe": "nope"}', "unknown recipe 'nope'"), (b'{"optimizer": "rmsprop"}', "unknown optimizer")):
        status, data = request(server, "POST", "/api/train", body)
        assert status == 400 and message in json.loads(data)["error"], data


def test_unknown_pages_get_404_with_a_message(server):
    status, body = request(server, "GET", "/api/nothing")
    assert status == 404 and "no such page" in json.loads(body)["error"]


def events(server, until, timeout=300):
    """Reads the training event stream until `until(event)` holds; returns the events seen."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    connection.request("GET", "/api/train/events")
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Content-Type").startswith("text/event-stream")
    seen = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = response.fp.readline().decode()
        if not line:
            break
        if line.startswith("data: "):
            seen.append(json.loads(line[6:]))
            if until(seen[-1]):
                break
    connection.close()
    return seen


def test_one_training_at_a_time_and_stop_keeps_the_checkpoint(runs, binaries):
    """On its own server, so that the stopped run's checkpoint does not become the shared server's model."""
    server = Server(runs)
    try:
        _one_at_a_time(server)
        assert server.interrupt() == 0
    finally:
        server.close()


def _one_at_a_time(server):
    status, started = server.post("/api/train", {"model": "two-conv", "dataset": "mnist-sample", "epochs": 20})
    assert status == 202
    run = started["run"]
    status, body = request(server, "POST", "/api/train", json.dumps({"model": "mlp", "epochs": 1}).encode())
    assert status == 409 and "already running" in json.loads(body)["error"]
    # The server keeps answering while the training runs.
    assert server.get("/api/model")["loaded"]
    status, data = request(server, "POST", "/api/predict", json.dumps({"pixels": [0] * 784}).encode())
    assert status == 200 and len(json.loads(data)["probabilities"]) == 10
    seen = events(server, lambda e: e.get("type") == "epoch" and e.get("run", run) == run)
    assert any(e["type"] == "iteration" for e in seen)
    status, answer = server.post("/api/train/stop", {})
    assert answer["stopping"] == run
    finished = events(server, lambda e: e.get("type") == "finished" and e["run"] == run)[-1]
    assert finished["status"] == "stopped", finished
    assert (server.runs / run / "checkpoint.npz").exists()
    assert server.get("/api/train")["running"] is False


def test_ctrl_c_during_a_training_stops_it_and_exits_cleanly(runs, binaries):
    s = Server(runs)
    try:
        status, started = s.post("/api/train", {"model": "two-conv", "epochs": 20})
        events(s, lambda e: e.get("type") == "epoch")
        assert s.interrupt(timeout=120) == 0, "".join(s.stderr)
        folder = runs / started["run"]
        assert (folder / "checkpoint.npz").exists() and (folder / "metrics.csv").exists()
        # No convnet train is left running for that folder.
        leftover = [p for p in os.listdir("/proc") if p.isdigit() and started["run"].encode() in open(f"/proc/{p}/cmdline", "rb").read()] \
            if os.path.isdir("/proc") else []
        assert leftover == []
    finally:
        s.close()


def test_a_thousand_predictions_from_eight_clients(server):
    clients, total = 8, 1000
    latencies, failures = [], []
    lock = threading.Lock()
    rng = random.Random(5)
    bodies = [json.dumps({"pixels": [rng.choice((0, 0, 0, 128, 255)) for _ in range(784)]}).encode() for _ in range(16)]

    def client(index):
        connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
        for k in range(index, total, clients):
            start = time.perf_counter()
            try:
                connection.request("POST", "/api/predict", body=bodies[k % len(bodies)], headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                data = response.read()
                ok = response.status == 200 and len(json.loads(data)["probabilities"]) == 10
            except Exception as error:  # counted and reported below
                ok, data = False, repr(error).encode()
                connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
            elapsed = time.perf_counter() - start
            with lock:
                (latencies if ok else failures).append(elapsed if ok else data[:200])
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    wall = time.perf_counter() - started
    assert not any(t.is_alive() for t in threads), "clients still running after 300 s"
    assert failures == [] and len(latencies) == total
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(0.99 * total) - 1] * 1000
    figures = {"requests": total, "clients": clients, "p50_ms": round(p50, 2), "p99_ms": round(p99, 2),
               "max_ms": round(latencies[-1] * 1000, 2), "seconds": round(wall, 2), "requests_per_second": round(total / wall, 1)}
    (OUT / "latency.json").write_text(json.dumps(figures) + "\n")
    print("\nprediction latency, 1000 requests from 8 clients on loopback:", json.dumps(figures))


def test_without_a_model_the_page_offers_to_train(binaries, tmp_path):
    s = Server(tmp_path / "empty-runs")
    try:
        info = s.get("/api/model")
        assert info["loaded"] is False and "train the default one" in info["note"]
        status, body = request(s, "POST", "/api/predict", json.dumps({"pixels": [0] * 784}).encode())
        assert status == 409 and "no model is loaded" in json.loads(body)["error"]
        assert s.interrupt() == 0
    finally:
        s.close()


def test_the_server_binds_loopback_by_default(server):
    assert server.host == "127.0.0.1"


def test_convnet_studio_starts_the_server(binaries, tmp_path):
    convnet, studio = binaries
    import subprocess
    bad = subprocess.run([str(convnet), "studio", "--port", "70000"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 64 and "--port" in bad.stderr
    process = subprocess.Popen([str(convnet), "studio", "--port", "0", "--runs", str(tmp_path)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "CONVNET_STUDIO": str(studio)})
    try:
        line = process.stdout.readline()
        assert line.startswith("convnet studio: http://127.0.0.1:"), line + process.stderr.read()
        url = line.split(": ", 1)[1].strip()
        import urllib.request
        with urllib.request.urlopen(url + "api/model", timeout=30) as r:
            assert json.loads(r.read())["loaded"] is False
        process.send_signal(2)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_a_recipe_trains_with_its_overrides(binaries, tmp_path):
    """A recipe and two overrides from the API reach convnet train as --recipe NAME and those options only,
    and the run names the recipe. On its own server, so that its model does not become the shared one's."""
    s = Server(tmp_path)
    try:
        status, started = s.post("/api/train", {"recipe": "plain", "epochs": 1, "train_limit": 256})
        assert status == 202
        run = started["run"]
        seen = events(s, lambda e: e.get("type") == "finished" and e["run"] == run)
        start = next(e for e in seen if e["type"] == "started")
        assert start["arguments"].startswith("train --recipe plain --epochs 1 --train-limit 256 --out "), start
        assert start["network"] == "two-conv" and run.startswith("studio-two-conv-")
        assert seen[-1]["status"] == "done", seen[-1]
        epochs = [e for e in seen if e["type"] == "epoch"]
        assert [e["epoch"] for e in epochs] == [1]
        report = (tmp_path / run / "report.html").read_text()
        assert re.search(r"<td>recipe</td>\s*<td>plain</td>", report), "the report's settings do not name the recipe"
        assert s.get("/api/model")["run"] == run
        assert s.interrupt() == 0
    finally:
        s.close()
