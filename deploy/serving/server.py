"""HTTP classification service on waitress (a production WSGI server; Flask only routes).

python deploy/serving/server.py --model_dir DIR [--port 8866] [--host 127.0.0.1] [--workers 1]
    [--max_bytes 10485760] [--max_pixels 50000000] [--max_queue 64] [--threads 16]
    [--connection_limit 200] [--read_timeout 30] [--drain_timeout 30] [--max_batch 1] [--batch_timeout_ms 5]
    [-c deploy/configs/inference_cls.yaml] [-o Global.cpu_num_threads=2]

POST /predict   multipart/form-data with the file in the field ``image``, or
                application/json ``{"image": "<base64 of the image file>"}``
                → the predictor's top-k JSON: {"class_ids", "scores", "label_names", "file_name"}
GET  /health    → {"status": "ok", "model": ..., "backend": ..., "workers": ...}
GET  /metrics   → Prometheus text: requests by status, latency histogram, images, images/s,
                  queue depth, requests in flight, model and backend; one JSON log line per request

Bad requests get a 4xx JSON ``{"error": "..."}`` naming what was wrong. Concurrency: waitress
reads requests in its event loop (a stalled client holds no thread and is dropped after
``--read_timeout`` s of silence; at most ``--connection_limit`` connections are accepted) and
answers them on ``--threads`` threads, each decoding and preprocessing its own image; ``--workers``
predictors (clones sharing the weights, one thread each) run the waiting images, one at a time or,
with ``--max_batch`` > 1, batched across requests (deploy/serving/batching.py). At most
``--max_queue`` images wait for a predictor, up to ``--queue_timeout`` s; beyond that, 503 with
``Retry-After``. SIGTERM/SIGINT: new requests get
503, those in flight finish (``--drain_timeout``), exit status 0. ``app_from_env()`` is the WSGI
app for another server (gunicorn; deploy/README.md).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

if not __package__:  # run by path, not imported: "Scripts" in deploy/python/__init__.py says why
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [os.path.dirname(os.path.dirname(_here)), *(p for p in sys.path if os.path.abspath(p or ".") != _here)]

from deploy.python.errors import DeployConfigError, DeployUserError, bounded, run_cli, short  # noqa: E402
from deploy.python.predictor import ClsPredictor  # noqa: E402
from deploy.python.preprocess import ImageDecodeError  # noqa: E402
from deploy.python.utils import load_config  # noqa: E402
from deploy.serving.batching import Batcher, QueueFull  # noqa: E402
from deploy.serving.metrics import ServiceMetrics  # noqa: E402

logger = logging.getLogger("deploy.serving")
access = logging.getLogger("deploy.serving.access")  # one JSON line per request
DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "inference_cls.yaml")
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_PIXELS = 50_000_000
FIELD = "image"


RETRY_AFTER_S = 1  # what a 503 (busy, queue full, stopping) tells the client to wait


class _Counts:
    """Requests being answered (under ``lock``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0


class RequestError(Exception):
    """A client error: HTTP ``status`` and a sentence for the JSON body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _image_from_multipart(request: Any, max_bytes: int) -> tuple[bytes, str | None]:
    if FIELD in request.files:
        uploads = request.files.getlist(FIELD)
        if len(uploads) > 1:
            raise RequestError(400, f"the multipart field '{FIELD}' holds {len(uploads)} files: send one image per "
                                    "request")
        upload = uploads[0]
        data = upload.stream.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise RequestError(413, f"the image is larger than the limit of {max_bytes} bytes")
        if not data:
            raise RequestError(400, f"the multipart field '{FIELD}' holds an empty file")
        return data, upload.filename or None
    if FIELD in request.form:
        raise RequestError(400, f"the multipart field '{FIELD}' must be a file upload, not a text field")
    fields = sorted(set(request.files) | set(request.form))
    got = f"got the field(s): {', '.join(fields)}" if fields else "the form is empty"
    raise RequestError(400, f"no image: expected the multipart file field '{FIELD}', {got}")


def _image_from_json(request: Any, max_bytes: int) -> tuple[bytes, str | None]:
    try:  # parsed here: Flask's get_json lets a RecursionError (``[`` x 100000) through as a 500
        body = json.loads(request.get_data(cache=False))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        body = None
    if body is None:
        raise RequestError(400, "the body is not valid JSON: send {\"image\": \"<base64 of the image file>\"}")
    if not isinstance(body, dict) or FIELD not in body:
        keys = ", ".join(sorted(map(str, body))) if isinstance(body, dict) else type(body).__name__
        raise RequestError(400, f"no image: expected a JSON object with the key '{FIELD}' (base64), got {keys or 'no keys'}")
    text = body[FIELD]
    if not isinstance(text, str) or not text:
        raise RequestError(400, f"'{FIELD}' must be a non-empty base64 string, got {type(text).__name__}")
    if text.startswith("data:") and "," in text:  # a data URL: data:image/jpeg;base64,....
        text = text.split(",", 1)[1]
    text = "".join(text.split())  # line breaks of wrapped base64 (the `base64` tool wraps at 76)
    if len(text) > (max_bytes * 4) // 3 + 8:
        raise RequestError(413, f"the image is larger than the limit of {max_bytes} bytes")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, f"'{FIELD}' is not valid base64") from None
    if len(data) > max_bytes:
        raise RequestError(413, f"the image is larger than the limit of {max_bytes} bytes")
    if not data:
        raise RequestError(400, f"'{FIELD}' decodes to zero bytes")
    name = body.get("file_name") if isinstance(body.get("file_name"), str) else None
    return data, name


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (they carry the size); C4, C8 and CC are other segments
JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) a PNG's IHDR or a JPEG's frame header declares, read from the bytes alone; else None."""
    if data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if not data.startswith(b"\xff\xd8"):
        return None
    pos = 2
    while pos + 9 <= len(data) and data[pos] == 0xFF:  # segments: FF marker, 2-byte length, payload
        marker = data[pos + 1]
        if marker in JPEG_SOF:
            return int.from_bytes(data[pos + 7:pos + 9], "big"), int.from_bytes(data[pos + 5:pos + 7], "big")
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return None


def check_pixels(data: bytes, max_pixels: int) -> None:
    """Refuse images whose header announces more than ``max_pixels``, before any decoder sees them.

    A small file can declare a huge image (a 688-byte JPEG of 30000x30000). PIL reads the size from the
    header alone; its own "decompression bomb" limit is lifted by :func:`create_app` (the limit here is
    ``max_pixels``: PIL's error used to be swallowed, and OpenCV then decoded the whole image). Bytes
    whose header PIL cannot read are refused too: every format the service accepts has one PIL reads,
    so no decoder (PIL, OpenCV, libjpeg-turbo) ever gets an image of unknown size.
    """
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:  # the header only: nothing is decoded here
            w, h = img.size
    except Image.DecompressionBombError as e:  # only when PIL's own limit was not lifted (create_app lifts it)
        raise RequestError(413, f"the image is larger than the limit of {max_pixels} pixels ({bounded(str(e), 200, 1)})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        declared = declared_size(data)  # PIL wants more than the header of a truncated PNG or JPEG
        if declared is not None and declared[0] * declared[1] > max_pixels:
            w, h = declared
            raise RequestError(413, f"the image is {w}x{h} pixels, more than the limit of {max_pixels} pixels") from None
        raise RequestError(400, "not an image (or not a format the service reads: JPEG, PNG, BMP, TIFF, WebP, "
                                f"PPM/PGM): {bounded(str(e) or type(e).__name__, 200, 1)}") from None
    if w * h > max_pixels:
        raise RequestError(413, f"the image is {w}x{h} pixels, more than the limit of {max_pixels} pixels")


def create_app(predictors: Sequence[ClsPredictor], max_bytes: int = DEFAULT_MAX_BYTES,
               queue_timeout: float = 30.0, max_pixels: int = DEFAULT_MAX_PIXELS, max_queue: int = 64,
               stopping: threading.Event | None = None, max_batch: int = 1, batch_timeout_ms: float = 0.0) -> Any:
    """The Flask app serving ``predictors`` (one thread each; deploy/serving/batching.py).

    Each request preprocesses its image on its own thread; a predictor runs up to ``max_batch`` waiting
    images at once, waiting at most ``batch_timeout_ms`` for requests still preprocessing. At most ``max_queue`` images wait for a
    predictor; more, or a wait longer than ``queue_timeout``, or a request while ``stopping`` is set, get 503
    with ``Retry-After``. ``app.in_flight`` counts the requests being answered (the graceful stop waits for
    it to reach 0); ``app.batcher`` is closed by the stop.
    """
    from flask import Flask, Response, g, jsonify, request
    from werkzeug.exceptions import HTTPException

    if not predictors:
        raise DeployConfigError("create_app: give at least one predictor")
    if max_batch < 1:
        raise DeployConfigError(f"max_batch (--max_batch, DEPLOY_MAX_BATCH): expected a positive integer, got {max_batch}")
    from PIL import Image

    # this process's pixel limit is max_pixels, checked on every header before any decode (check_pixels);
    # PIL's own, lower "decompression bomb" limit would otherwise turn big headers into unreadable ones
    Image.MAX_IMAGE_PIXELS = None
    first = predictors[0]
    info = {"model": first.config["Global"]["model_name"], "backend": first.backend.name,
            "workers": len(predictors), "max_batch": max_batch, "max_bytes": max_bytes}

    # root_path given: deploy/serving is a namespace package, where Flask cannot find it by the import name
    app = Flask("deploy.serving", root_path=os.path.dirname(os.path.abspath(__file__)))
    # the whole body: the image, its base64 overhead and the multipart headers
    app.config["MAX_CONTENT_LENGTH"] = (max_bytes * 4) // 3 + 64 * 1024

    def error(status: int, message: str) -> Any:
        response = jsonify({"error": message, "status": status})
        if status == 503:
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
        response.status_code = status
        return response

    @app.errorhandler(RequestError)
    def _request_error(e: RequestError) -> Any:
        return error(e.status, e.message)

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException) -> Any:
        if e.code == 413:
            return error(413, f"the request is larger than the limit ({max_bytes} bytes of image)")
        return error(e.code or 400, f"{e.name}: {e.description}")

    @app.errorhandler(Exception)
    def _unexpected(e: Exception) -> Any:  # a bug, not the client's fault: logged, the server keeps running
        logger.exception("unexpected error while serving a request (a bug: please report it with this traceback)")
        return error(500, f"internal error: {type(e).__name__} (a bug in the service, logged on the server)")

    counts = _Counts()
    app.in_flight = counts
    metrics = ServiceMetrics(info["model"], info["backend"])
    batcher = Batcher(predictors, max_batch, batch_timeout_ms / 1000.0, max_queue, on_batch=metrics.observe_batch)
    app.batcher = batcher

    @app.before_request
    def _count_in() -> Any:
        g.started = time.perf_counter()
        g.images = 0
        with counts.lock:
            counts.in_flight += 1
        if stopping is not None and stopping.is_set():
            raise RequestError(503, "the service is stopping; retry on another instance or after the restart")

    @app.after_request
    def _record(response: Any) -> Any:
        """Metrics, and one structured access-log line per request."""
        seconds = time.perf_counter() - g.get("started", time.perf_counter())
        if request.path != "/metrics":
            metrics.observe(response.status_code, seconds, g.get("images", 0))
        access.info(json.dumps({"method": request.method, "path": request.path, "status": response.status_code,
                                "bytes_in": request.content_length or 0,
                                "bytes_out": response.calculate_content_length() or 0,
                                "ms": round(seconds * 1000, 2), "client": request.remote_addr}))
        return response

    @app.teardown_request
    def _count_out(_exc: BaseException | None) -> None:
        with counts.lock:
            counts.in_flight -= 1

    @app.get("/metrics")
    def prometheus() -> Any:
        with counts.lock:
            in_flight = counts.in_flight
        return Response(metrics.render(batcher.waiting(), in_flight), mimetype="text/plain; version=0.0.4")

    @app.get("/health")
    def health() -> Any:
        return jsonify({"status": "ok", **info, "idle_workers": batcher.idle})

    @app.post("/predict")
    def predict() -> Any:
        ctype = (request.mimetype or "").lower()
        if ctype == "multipart/form-data":
            data, name = _image_from_multipart(request, max_bytes)
        elif ctype == "application/json":
            data, name = _image_from_json(request, max_bytes)
        elif not request.content_length:
            raise RequestError(400, f"no image: send multipart/form-data with the file field '{FIELD}' or "
                                    f"application/json {{\"{FIELD}\": \"<base64>\"}}")
        else:
            raise RequestError(415, f"unsupported content type '{ctype or 'none'}': send multipart/form-data with "
                                    f"the file field '{FIELD}' or application/json {{\"{FIELD}\": \"<base64>\"}}")
        check_pixels(data, max_pixels)
        if batcher.full():  # refused before any decoding work
            raise RequestError(503, f"{batcher.waiting()} request(s) already wait for the {len(predictors)} "
                                    f"predictor(s) (--max_queue {max_queue}); retry later")
        batcher.announce()  # a batch being collected may wait for this image
        try:
            array = first.prepare_one(data)  # on this request's thread, in parallel with the predictors
        except BaseException as e:
            batcher.withdraw()
            if isinstance(e, ImageDecodeError):
                raise RequestError(400, f"not an image: {e}") from None
            if isinstance(e, DeployUserError):  # e.g. smaller than the crop; anything else is a bug (500, logged)
                raise RequestError(422, f"the image cannot be processed: {bounded(str(e), 500, 2)}") from None
            raise
        try:
            result = batcher.submit(array, name, queue_timeout, announced=True)
        except QueueFull as e:
            raise RequestError(503, f"{e}; retry later") from None
        g.images = 1
        if result.get("file_name") is None:
            result.pop("file_name", None)
        return jsonify(result)

    return app


def build_predictors(model_dir: str, config: str | None, overrides: Sequence[str], workers: int) -> list[ClsPredictor]:
    """``workers`` predictors sharing one model: the first is built, the rest are clones."""
    if workers < 1:
        raise DeployConfigError(f"--workers: expected a positive integer, got {workers}")
    cfg = load_config(config, overrides)
    g = cfg.setdefault("Global", {})
    g["inference_model_dir"] = model_dir
    g["enable_benchmark"] = False
    g["workers"] = workers  # predictors run at once: OpenVINO compiles that many streams for them
    first = ClsPredictor(cfg)
    # one run at start-up: a label list that does not fit the model's output, or preprocessing that does not
    # fit its input, stops the service here (one line) instead of failing every request
    shape = first.input_shape or [3, 224, 224]
    side = max(256, *shape[1:])
    first.predict([np.full((side, side, 3), 128, np.uint8)])
    return [first] + [first.clone() for _ in range(workers - 1)]


def app_from_env() -> Any:
    """WSGI factory for waitress/gunicorn: DEPLOY_MODEL_DIR, DEPLOY_CONFIG, DEPLOY_WORKERS, DEPLOY_MAX_BYTES,
    DEPLOY_MAX_PIXELS, DEPLOY_MAX_BATCH, DEPLOY_BATCH_TIMEOUT_MS."""
    model_dir = os.environ.get("DEPLOY_MODEL_DIR")
    if not model_dir:
        raise DeployConfigError("app_from_env: set DEPLOY_MODEL_DIR to the exported model folder")
    predictors = build_predictors(model_dir, os.environ.get("DEPLOY_CONFIG", DEFAULT_CONFIG), [],
                                  _env_int("DEPLOY_WORKERS", 1))
    return create_app(predictors, _env_int("DEPLOY_MAX_BYTES", DEFAULT_MAX_BYTES),
                      max_pixels=_env_int("DEPLOY_MAX_PIXELS", DEFAULT_MAX_PIXELS),
                      max_batch=_env_int("DEPLOY_MAX_BATCH", 1), batch_timeout_ms=_env_int("DEPLOY_BATCH_TIMEOUT_MS", 5))


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise DeployConfigError(f"{name}: expected an integer, got {short(text)}") from None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_dir", required=True, help="exported model folder")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8866)
    p.add_argument("--workers", type=int, default=1, help="predictors in the pool (requests served at once)")
    p.add_argument("--max_bytes", type=int, default=DEFAULT_MAX_BYTES, help="largest accepted image file")
    p.add_argument("--max_pixels", type=int, default=DEFAULT_MAX_PIXELS, help="largest accepted width x height")
    p.add_argument("--queue_timeout", type=float, default=30.0, help="seconds a request waits for a predictor")
    p.add_argument("--max_queue", type=int, default=64,
                   help="requests that may wait for a predictor; more get 503 with Retry-After")
    p.add_argument("--max_batch", type=int, default=1,
                   help="images a predictor runs at once, collected across concurrent requests (1: no batching)")
    p.add_argument("--batch_timeout_ms", type=float, default=5.0,
                   help="with --max_batch > 1: how long a predictor waits for requests still being preprocessed "
                        "to fill its batch (a lone request never waits)")
    p.add_argument("--threads", type=int, default=16, help="HTTP worker threads (waitress)")
    p.add_argument("--connection_limit", type=int, default=200, help="open connections at most; more wait unaccepted")
    p.add_argument("--read_timeout", type=float, default=30.0,
                   help="seconds a connection may stay silent (a slow or stalled client is dropped)")
    p.add_argument("--drain_timeout", type=float, default=30.0,
                   help="on SIGTERM/SIGINT: seconds to finish the requests in flight before exiting")
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="deploy config (default: %(default)s)")
    p.add_argument("-o", "--override", action="append", default=[], help="-o Global.cpu_num_threads=2 (repeatable)")
    return p.parse_args(argv)


def _check_args(args: argparse.Namespace) -> None:
    for name in ("max_bytes", "threads", "connection_limit", "max_batch"):
        if getattr(args, name) < 1:
            raise DeployConfigError(f"--{name}: expected a positive integer, got {getattr(args, name)}")
    for name in ("max_queue", "batch_timeout_ms"):
        if getattr(args, name) < 0:
            raise DeployConfigError(f"--{name}: expected 0 or more, got {getattr(args, name)}")
    for name in ("read_timeout", "drain_timeout", "queue_timeout"):
        if getattr(args, name) <= 0:
            raise DeployConfigError(f"--{name}: expected a positive number of seconds, got {getattr(args, name)}")


def serve(app: Any, args: argparse.Namespace, stopping: threading.Event) -> int:
    """Run ``app`` on waitress until SIGTERM/SIGINT, then drain: new requests get 503, those in flight finish
    (at most ``--drain_timeout`` s), and the process exits 0."""
    from waitress.server import create_server

    server = create_server(app, host=args.host, port=args.port, threads=args.threads,
                           connection_limit=args.connection_limit, channel_timeout=args.read_timeout,
                           cleanup_interval=max(1, int(args.read_timeout // 2)), ident="ppcls-lite")

    def close_everything() -> None:  # runs in the server's loop thread (waitress's trigger)
        for channel in list(server._map.values()):
            channel.close()

    def drain() -> None:
        deadline = time.monotonic() + args.drain_timeout
        while time.monotonic() < deadline:
            with app.in_flight.lock:
                if app.in_flight.in_flight == 0:
                    break
            time.sleep(0.05)
        with app.in_flight.lock:
            left = app.in_flight.in_flight
        (logger.warning if left else logger.info)(
            "stopping: %s", f"{left} request(s) still in flight after {args.drain_timeout} s" if left else
            "every request in flight was answered")
        app.batcher.close()
        server.trigger.pull_trigger(close_everything)

    def on_signal(signum: int, _frame: Any) -> None:
        if stopping.is_set():
            return
        stopping.set()
        logger.info("%s: answering new requests with 503, finishing the %d in flight", signal.Signals(signum).name,
                    app.in_flight.in_flight)  # read without the lock: a signal handler must not wait
        threading.Thread(target=drain, name="drain", daemon=True).start()

    # installed after the predictors were built: Paddle's own SIGTERM handler (a C++ "FatalError" dump) is replaced
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    logger.info("listening on http://%s:%d (waitress: %d threads, at most %d connections, read timeout %g s)",
                args.host, args.port, args.threads, args.connection_limit, args.read_timeout)
    server.run()
    server.task_dispatcher.shutdown(timeout=1)
    logger.info("stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    _check_args(args)
    predictors = build_predictors(args.model_dir, args.config, args.override, args.workers)
    stopping = threading.Event()
    app = create_app(predictors, args.max_bytes, args.queue_timeout, args.max_pixels, args.max_queue, stopping,
                     args.max_batch, args.batch_timeout_ms)
    logger.info("serving %s (%s, %d worker(s)%s)", args.model_dir, predictors[0].backend.name, args.workers,
                f", batches of up to {args.max_batch} within {args.batch_timeout_ms:g} ms" if args.max_batch > 1 else "")
    return serve(app, args, stopping)


if __name__ == "__main__":
    # user errors (config, model folder, packages) as one line with exit status 2; a bug keeps its traceback (3)
    run_cli(main, tool="server.py")
