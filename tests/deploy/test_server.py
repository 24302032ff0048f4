"""The HTTP service in a subprocess on a loopback port: good, bad and concurrent requests."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from tests.deploy.common import EVAL_OPS, SIZE

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAX_BYTES = 300_000
MAX_PIXELS = 300_000  # the photos have at most 512x512 = 262,144


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url: str, body: bytes | None = None, content_type: str | None = None, method: str = "POST",
            timeout: float = 60) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def multipart(field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real 8x8 JPEG whose frame header (SOF0) is patched to declare ``width`` x ``height``."""
    ok, buf = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
    data = bytearray(buf.tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def png_header_only(width: int, height: int) -> bytes:
    """The signature and IHDR chunk of a ``width`` x ``height`` grey PNG, and nothing else."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))


def two_files(data: bytes) -> tuple[bytes, str]:
    """A multipart body with two files in the field 'image' (the second was ignored silently)."""
    body, ctype = multipart("image", "a.jpg", data)
    boundary = ctype.split("boundary=")[1]
    second = (b"Content-Disposition: form-data; name=\"image\"; filename=\"b.jpg\"\r\n"
              b"Content-Type: application/octet-stream\r\n\r\n") + data + f"\r\n--{boundary}--\r\n".encode()
    return body[: -len("--\r\n")] + b"\r\n" + second, ctype


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    from skimage import data

    out = {}
    for name in ("astronaut", "chelsea", "coffee"):
        ok, buf = cv2.imencode(".jpg", getattr(data, name)()[:, :, ::-1])
        assert ok
        out[f"{name}.jpg"] = buf.tobytes()
    return out


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    from ppcls.arch import build_model
    from ppcls.engine.export import export_model

    root = tmp_path_factory.mktemp("served")
    labels = root / "labels.txt"
    labels.write_text("".join(f"{i} class {i}\n" for i in range(4)))
    model = build_model({"name": "PPLCNet_x0_25", "class_num": 4})
    return export_model(model, str(root / "model"), [3, SIZE, SIZE], "PPLCNet_x0_25", 4, transform_ops=EVAL_OPS,
                        topk=2, label_list_file=str(labels))


@pytest.fixture(scope="module")
def slow_model_dir(tmp_path_factory) -> str:
    """PPLCNet_x1_0 at 448x448 (Paddle and ONNX files): about 30 ms per image on one thread, so concurrent
    requests really queue."""
    from ppcls.arch import build_model
    from ppcls.engine.export import export_model

    ops = [{"ResizeImage": {"size": 448}}, *EVAL_OPS[-2:]]
    model = build_model({"name": "PPLCNet_x1_0", "class_num": 4})
    return export_model(model, str(tmp_path_factory.mktemp("slow") / "model"), [3, 448, 448], "PPLCNet_x1_0", 4,
                        transform_ops=ops, topk=2, export_type="onnx")


@contextlib.contextmanager
def running_server(model_dir: str, log_dir, *extra: str):
    """``deploy/serving/server.py`` on a free port, answering /health; stopped (SIGTERM) afterwards."""
    port = free_port()
    log = log_dir / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, os.path.join(REPO, "deploy", "serving", "server.py"), "--model_dir", model_dir,
             "--host", "127.0.0.1", "--port", str(port), "--workers", "2", "--max_bytes", str(MAX_BYTES),
             "--max_pixels", str(MAX_PIXELS), "-o", "Global.cpu_num_threads=1", *extra],
            stdout=out, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                status, body = request(base + "/health", method="GET", timeout=2)
                if status == 200:
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.time() > deadline:
                pytest.fail(f"server did not answer /health in time:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield base, proc, log
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    with running_server(model_dir, tmp_path_factory.mktemp("server_log")) as (base, proc, _log):
        yield base, proc


def expected_results(model_dir: str, photos: dict[str, bytes]) -> dict[str, dict]:
    from deploy.python.predictor import ClsPredictor

    pred = ClsPredictor({"Global": {"inference_model_dir": model_dir, "cpu_num_threads": 1}})
    return {name: pred.predict([data], file_names=[name])[0] for name, data in photos.items()}


def test_health_and_good_requests(server, model_dir, photos):
    base, _ = server
    status, body = request(base + "/health", method="GET")
    assert status == 200 and body["status"] == "ok" and body["model"] == "PPLCNet_x0_25" and body["workers"] == 2
    expected = expected_results(model_dir, photos)
    name = "chelsea.jpg"
    status, body = request(base + "/predict", *multipart("image", name, photos[name]))
    assert status == 200, body
    assert body["class_ids"] == expected[name]["class_ids"] and body["file_name"] == name
    assert np.allclose(body["scores"], expected[name]["scores"], atol=1e-4)
    assert body["label_names"] == [f"class {i}" for i in body["class_ids"]] and len(body["class_ids"]) == 2
    payload = json.dumps({"image": base64.b64encode(photos[name]).decode()}).encode()
    status, body64 = request(base + "/predict", payload, "application/json")
    assert status == 200 and body64["class_ids"] == body["class_ids"] and "file_name" not in body64
    wrapped = base64.encodebytes(photos[name]).decode()  # 76-character lines, as the `base64` tool writes
    data_url = json.dumps({"image": "data:image/jpeg;base64," + wrapped}).encode()
    status, body_url = request(base + "/predict", data_url, "application/json")
    assert status == 200 and body_url["class_ids"] == body["class_ids"]


def test_bad_requests_get_4xx_json(server, photos):
    base, proc = server
    jpeg = photos["coffee.jpg"]
    ok, png = cv2.imencode(".png", np.zeros((1000, 1000), np.uint8))  # a few kB that decode to 1 megapixel
    assert ok and len(png) < MAX_BYTES
    cases = [
        (request(base + "/predict", *multipart("file", "a.jpg", jpeg)), 400, "expected the multipart file field 'image'"),
        (request(base + "/predict", *multipart("image", "a.jpg", b"")), 400, "empty"),
        (request(base + "/predict", *multipart("image", "a.txt", b"hello, not an image")), 400, "not an image"),
        (request(base + "/predict", b"", None), 400, "no image"),
        (request(base + "/predict", b"x=1", "application/x-www-form-urlencoded"), 415, "unsupported content type"),
        (request(base + "/predict", b"{not json", "application/json"), 400, "not valid JSON"),
        (request(base + "/predict", b'{"img": "abc"}', "application/json"), 400, "key 'image'"),
        (request(base + "/predict", b"[" * 100_000, "application/json"), 400, "not valid JSON"),  # was a 500
        (request(base + "/predict", b'{"image": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json"), 400,
         "not valid JSON"),
        (request(base + "/predict", *two_files(jpeg)), 400, "the multipart field 'image' holds 2 files"),
        # decompression bombs as crafted headers (nothing this large is ever decoded): above PIL's own limit
        (request(base + "/predict", *multipart("image", "bomb.jpg", jpeg_declaring(30000, 30000))), 413,
         "30000x30000 pixels"),
        (request(base + "/predict", *multipart("image", "bomb.png", png_header_only(14000, 14000))), 413,
         "14000x14000 pixels"),
        (request(base + "/predict", *multipart("image", "cut.jpg", jpeg_declaring(20000, 15000)[:200])), 413,
         "20000x15000 pixels"),  # cut after its frame header: PIL cannot open it, the header still counts
        (request(base + "/predict", b'{"image": "@@@"}', "application/json"), 400, "not valid base64"),
        (request(base + "/predict", json.dumps({"image": 5}).encode(), "application/json"), 400, "base64 string"),
        (request(base + "/predict", *multipart("image", "big.bin", b"\xff" * (MAX_BYTES + 10))), 413,
         f"limit of {MAX_BYTES} bytes"),
        (request(base + "/predict", json.dumps({"image": base64.b64encode(b"\xff" * (MAX_BYTES + 10)).decode()}).encode(),
                 "application/json"), 413, "limit"),
        (request(base + "/predict", *multipart("image", "huge.bin", b"\xff" * (2 * MAX_BYTES))), 413, "limit"),
        (request(base + "/predict", *multipart("image", "bomb.png", png.tobytes())), 413, "1000x1000 pixels"),
        (request(base + "/predict", method="GET"), 405, "Method Not Allowed"),
        (request(base + "/nothing", method="GET"), 404, "Not Found"),
    ]
    for (status, body), want_status, want_text in cases:
        assert status == want_status, (want_text, status, body)
        assert want_text in body["error"], body
    assert proc.poll() is None  # still serving
    assert request(base + "/health", method="GET")[0] == 200


def test_concurrent_requests(server, model_dir, photos):
    base, proc = server
    expected = expected_results(model_dir, photos)
    names = sorted(photos) * 3  # 9 requests over 4 threads, the two kinds of body mixed
    jobs = []
    for i, name in enumerate(names[:8]):
        if i % 2:
            jobs.append((name, *multipart("image", name, photos[name])))
        else:
            jobs.append((name, json.dumps({"image": base64.b64encode(photos[name]).decode()}).encode(), "application/json"))
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda job: (job[0], request(base + "/predict", job[1], job[2])), jobs))
    assert len(answers) == 8
    for name, (status, body) in answers:
        assert status == 200, body
        assert body["class_ids"] == expected[name]["class_ids"]
        assert np.allclose(body["scores"], expected[name]["scores"], atol=1e-4)
    assert proc.poll() is None


def test_slow_clients_are_dropped_and_do_not_hold_the_service(model_dir, tmp_path, photos):
    """Sockets that send headers announcing a large body and stall: served around, then closed by the server."""
    with running_server(model_dir, tmp_path, "--read_timeout", "2", "--threads", "4") as (base, proc, _log):
        port = int(base.rsplit(":", 1)[1])
        stalled = []
        for _ in range(40):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000000\r\n\r\n{\"image\": \"")
            stalled.append(s)
        status, body = request(base + "/predict", *multipart("image", "a.jpg", photos["coffee.jpg"]), timeout=30)
        assert status == 200, body  # 40 stalled clients and only 4 threads: the request is still answered
        time.sleep(6)  # past --read_timeout (and the cleanup interval)
        closed = 0
        for s in stalled:
            s.settimeout(5)
            try:
                closed += s.recv(1024) == b""  # the server closed the connection
            except (ConnectionResetError, TimeoutError):
                closed += 0
            s.close()
        assert closed == len(stalled)
        assert proc.poll() is None


def _post_with_headers(url: str, body: bytes, content_type: str) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, method="POST")
    req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers)


def test_a_full_queue_answers_503_with_retry_after(slow_model_dir, tmp_path, photos):
    """One busy predictor and no room to wait (--max_queue 0): concurrent requests beyond it get 503."""
    body, ctype = multipart("image", "a.jpg", photos["astronaut.jpg"])
    with running_server(slow_model_dir, tmp_path, "--workers", "1", "--max_queue", "0", "--threads", "24") \
            as (base, _proc, _log):
        with ThreadPoolExecutor(24) as ex:
            results = list(ex.map(lambda _: _post_with_headers(base + "/predict", body, ctype), range(48)))
        statuses = [s for s, _ in results]
        assert set(statuses) == {200, 503}, statuses
        assert all(h.get("Retry-After") == "1" for s, h in results if s == 503)
        assert _metric_values(base)['ppcls_requests_total{code="503"}'] == statuses.count(503)


def test_sigterm_finishes_and_exits_0_without_paddles_fatal_error(model_dir, tmp_path):
    with running_server(model_dir, tmp_path) as (base, proc, log):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    text = log.read_text()
    assert "SIGTERM: answering new requests with 503" in text and "stopped" in text
    assert "FatalError" not in text and "Traceback" not in text


def test_metrics_in_prometheus_format_and_one_log_line_per_request(model_dir, tmp_path, photos):
    with running_server(model_dir, tmp_path) as (base, _proc, log):
        for name in ("astronaut.jpg", "coffee.jpg"):
            assert request(base + "/predict", *multipart("image", name, photos[name]))[0] == 200
        assert request(base + "/predict", b"{not json", "application/json")[0] == 400
        with urllib.request.urlopen(base + "/metrics", timeout=30) as r:
            assert r.headers["Content-Type"].startswith("text/plain")
            text = r.read().decode()
    values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
              for line in text.splitlines() if line and not line.startswith("#")}
    assert values['ppcls_model_info{model="PPLCNet_x0_25",backend="paddle"}'] == 1
    assert values['ppcls_requests_total{code="200"}'] >= 3  # 2 predictions and the start-up /health checks
    assert values['ppcls_requests_total{code="400"}'] == 1
    assert values["ppcls_images_total"] == 2 and values["ppcls_images_per_second"] > 0
    assert values['ppcls_request_seconds_bucket{le="+Inf"}'] == values["ppcls_request_seconds_count"]
    assert values["ppcls_queue_depth"] == 0 and values["ppcls_requests_in_flight"] == 1  # this /metrics request
    lines = [json.loads(line.split("deploy.serving.access: ", 1)[1]) for line in log.read_text().splitlines()
             if "deploy.serving.access: " in line]
    predicts = [entry for entry in lines if entry["path"] == "/predict"]
    assert [e["status"] for e in predicts] == [200, 200, 400]
    assert all(e["method"] == "POST" and e["client"] == "127.0.0.1" and e["bytes_in"] > 0 and e["ms"] > 0
               for e in predicts)


def test_load_test_tool_measures_a_running_server(model_dir, tmp_path, photos):
    image = tmp_path / "a.jpg"
    image.write_bytes(photos["coffee.jpg"])
    with running_server(model_dir, tmp_path) as (base, _proc, _log):
        done = subprocess.run([sys.executable, os.path.join(REPO, "tools", "load_test.py"), "--url", base,
                               "--image", str(image), "--clients", "1,4", "--duration", "1", "--warmup", "0.2"],
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split("|")[1:-1] for line in done.stdout.splitlines() if line.startswith("| 1 ") or line.startswith("| 4 ")]
    assert [int(r[0]) for r in rows] == [1, 4]
    for r in rows:
        assert int(r[1]) > 0 and float(r[2]) > 0 and "{200:" in r[5]


def _metric_values(base: str) -> dict[str, float]:
    with urllib.request.urlopen(base + "/metrics", timeout=30) as r:
        text = r.read().decode()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line and not line.startswith("#")}


def test_batching_across_requests_answers_each_client_its_own_result(model_dir, tmp_path, photos):
    expected = expected_results(model_dir, photos)
    names = sorted(photos) * 3
    with running_server(model_dir, tmp_path, "--workers", "1", "--max_batch", "4", "--batch_timeout_ms", "300") \
            as (base, _proc, _log):
        with ThreadPoolExecutor(max_workers=len(names) + 1) as pool:
            bad = pool.submit(request, base + "/predict", *multipart("image", "bad.jpg", b"not an image at all"))
            answers = list(pool.map(lambda n: (n, request(base + "/predict", *multipart("image", n, photos[n]))),
                                    names))
        values = _metric_values(base)
    assert bad.result()[0] == 400  # refused on its own thread; the others are unaffected
    for name, (status, body) in answers:
        assert status == 200, body
        assert body["file_name"] == name and body["class_ids"] == expected[name]["class_ids"]
        assert np.allclose(body["scores"], expected[name]["scores"], atol=1e-4)
    assert values["ppcls_images_total"] == len(names)
    # fewer runs than images: requests were batched (start-up's blank image runs outside the service)
    assert values["ppcls_batches_total"] < len(names)
    assert values["ppcls_batch_size_sum"] == len(names) and values["ppcls_batch_size_count"] == values["ppcls_batches_total"]
    assert values['ppcls_batch_size_bucket{le="1"}'] < values['ppcls_batch_size_bucket{le="+Inf"}']  # some ran >1


@pytest.mark.parametrize("backend", ["paddle", "onnxruntime", "openvino"])
def test_sigterm_lets_requests_in_flight_finish_and_answers_new_ones_503(backend, slow_model_dir, tmp_path, photos):
    """40 requests sent at once (about 1 s of work for one predictor); SIGTERM after the first answer: those in
    flight are answered, a new one gets 503, the process exits 0."""
    import re

    body, ctype = multipart("image", "a.jpg", photos["coffee.jpg"])
    with running_server(slow_model_dir, tmp_path, "--workers", "1", "--threads", "48", "-o",
                        f"Global.backend={backend}") as (base, proc, log):
        with ThreadPoolExecutor(40) as pool:
            sent = [pool.submit(_post_with_headers, base + "/predict", body, ctype) for _ in range(40)]
            while not any(f.done() for f in sent):
                time.sleep(0.005)
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            status, headers = _post_with_headers(base + "/predict", body, ctype)
            statuses = [f.result(timeout=60)[0] for f in sent]
        assert status == 503 and headers.get("Retry-After") == "1"
        assert proc.wait(timeout=30) == 0
    text = log.read_text()
    in_flight = int(re.search(r"SIGTERM: answering new requests with 503, finishing the (\d+) in flight", text)[1])
    assert in_flight > 1  # the predictor was busy with a queue behind it
    assert set(statuses) <= {200, 503} and statuses.count(200) >= in_flight, (in_flight, statuses)
    assert "every request in flight was answered" in text and "Traceback" not in text and "FatalError" not in text
    assert f"({backend}, 1 worker(s))" in text


@pytest.mark.parametrize("fmt", ["png", "jpeg", "bmp", "pgm", "tiff"])
def test_every_format_is_sized_from_its_header_before_any_decoder(fmt, monkeypatch):
    """A 20000x20000 header in each format the service reads → 413, the pixels never decoded."""
    import io
    import struct

    from PIL import Image

    from deploy.serving.server import RequestError, check_pixels

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # as create_app sets it: the limit is max_pixels

    w = h = 20000
    if fmt == "png":
        data = png_header_only(w, h)
    elif fmt == "jpeg":
        data = jpeg_declaring(w, h)
    elif fmt == "pgm":
        data = f"P5\n{w} {h}\n255\n".encode() + b"\0" * 64
    else:  # a real 8x8 file with its size fields patched
        buf = io.BytesIO()
        Image.new("L", (8, 8)).save(buf, format=fmt.upper())
        data = bytearray(buf.getvalue())
        if fmt == "bmp":
            data[18:26] = struct.pack("<ii", w, h)
        else:  # TIFF (little-endian): tags 256/257 hold width/height, SHORT or LONG
            ifd = struct.unpack_from("<I", data, 4)[0]
            for i in range(struct.unpack_from("<H", data, ifd)[0]):
                entry = ifd + 2 + 12 * i
                tag, kind = struct.unpack_from("<HH", data, entry)
                if tag in (256, 257):
                    struct.pack_into("<HHII", data, entry, tag, 4, 1, w if tag == 256 else h)
        data = bytes(data)
    with pytest.raises(RequestError) as e:
        check_pixels(data, 50_000_000)
    assert e.value.status == 413 and "20000x20000 pixels" in e.value.message
    try:  # the same header within the limit is not "too large" (a header-only PNG is then not an image: 400)
        check_pixels(data, w * h)
    except RequestError as within:
        assert within.status == 400, within.message


def test_app_from_env_runs_under_another_wsgi_server(model_dir, tmp_path, photos):
    """The documented factory for gunicorn, here under waitress-serve: env settings reach the app."""
    port = free_port()
    env = {**os.environ, "DEPLOY_MODEL_DIR": model_dir, "DEPLOY_MAX_BATCH": "4", "DEPLOY_MAX_PIXELS": str(MAX_PIXELS),
           "PYTHONPATH": REPO}
    log = tmp_path / "waitress.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "waitress", "--host", "127.0.0.1", "--port", str(port),
                                 "--call", "deploy.serving.server:app_from_env"], stdout=out, stderr=subprocess.STDOUT,
                                env=env, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                status, health = request(base + "/health", method="GET", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                assert time.time() < deadline, log.read_text()[-3000:]
                time.sleep(0.3)
        assert status == 200 and health["max_batch"] == 4 and health["model"] == "PPLCNet_x0_25"
        assert request(base + "/predict", *multipart("image", "a.jpg", photos["coffee.jpg"]))[0] == 200
        png = cv2.imencode(".png", np.zeros((1000, 1000), np.uint8))[1].tobytes()
        assert request(base + "/predict", *multipart("image", "big.png", png))[0] == 413  # DEPLOY_MAX_PIXELS
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_openvino_backend_serves_batched_requests(slow_model_dir, tmp_path, photos):
    """The service on OpenVINO (the ONNX export), batching across requests: each answer equals Paddle Inference's."""
    from deploy.python.predictor import ClsPredictor

    pred = ClsPredictor({"Global": {"inference_model_dir": slow_model_dir, "cpu_num_threads": 1}})
    expected = {name: pred.predict([data], file_names=[name])[0] for name, data in photos.items()}
    names = sorted(photos) * 3
    with running_server(slow_model_dir, tmp_path, "--workers", "1", "--max_batch", "4", "-o",
                        "Global.backend=openvino") as (base, _proc, _log):
        status, health = request(base + "/health", method="GET")
        assert status == 200 and health["backend"] == "openvino"
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            answers = list(pool.map(lambda n: (n, request(base + "/predict", *multipart("image", n, photos[n]))),
                                    names))
    for name, (status, body) in answers:
        assert status == 200, body
        assert body["class_ids"] == expected[name]["class_ids"]
        assert np.allclose(body["scores"], expected[name]["scores"], atol=1e-4)
