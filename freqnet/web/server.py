"""`freqnet serve`: a local web page to drop images, pick a model and a detail level, compare before/after and
download. Flask (mature, small, synchronous like our inference) served by waitress (a production WSGI server in
pure Python: no compiler, no development-server warning). The page is static files in this package: no build step,
nothing fetched from the network.
"""

from __future__ import annotations

import io
import signal
import sys
import zipfile
from pathlib import Path

import numpy as np
from flask import Flask, abort, jsonify, request, send_file
from PIL import Image

from ..data.image_io import ImageTooLarge, UnreadableImage, check_size, quantise, read_image
from ..models import read_metadata, shipped_models
from .jobs import JobQueue, QueueFull

STATIC = Path(__file__).resolve().parent / "static"
ACCEPTED = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}


def model_choices() -> list[dict]:
    """The shipped models, the photo default first, with what each is for."""
    import json

    shipped = shipped_models()
    choices = []
    for name, path in shipped.items():
        if name == "default":
            continue
        metadata = read_metadata(path)
        record = json.loads(metadata.get("openmodeldb", "{}"))
        config = json.loads(metadata["config"])
        choices.append({"name": name, "scale": config["scale"], "description": record.get("description", "")})
    default = shipped.get("default")
    choices.sort(key=lambda c: (shipped[c["name"]] != default, c["scale"] == 1, c["name"]))
    return choices


def create_app(max_upload_mb: float = 50, max_pixels: int | None = 40_000_000, max_waiting: int = 8,
               start_worker: bool = True) -> Flask:
    app = Flask(__name__, static_folder=str(STATIC), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = int(max_upload_mb * 1024 * 1024)  # Werkzeug answers 413 past this
    queue = JobQueue(max_waiting, max_pixels, start=start_worker)
    app.extensions["freqnet_jobs"] = queue
    models = {c["name"]: c for c in model_choices()}

    def error(status: int, message: str):
        response = jsonify(error=message)
        response.status_code = status
        return response

    @app.errorhandler(413)
    def too_large(_):
        return error(413, f"upload over {max_upload_mb:g} MB")

    @app.get("/")
    def index():
        return send_file(STATIC / "index.html")

    @app.get("/api/models")
    def list_models():
        return jsonify(models=list(models.values()), detail={"min": 0.0, "max": 2.0, "default": 1.0})

    @app.post("/api/jobs")
    def submit():
        upload = request.files.get("image")
        if upload is None or not upload.filename:
            return error(400, "no image in the upload (form field 'image')")
        name = Path(upload.filename).name
        model = request.form.get("model") or next(iter(models))
        if model not in models:
            return error(400, f"unknown model {model!r}: choose one of {', '.join(models)}")
        try:
            detail = float(request.form.get("detail", 1.0))
        except ValueError:
            return error(400, "detail must be a number from 0 to 2")
        if not 0.0 <= detail <= 2.0:
            return error(400, "detail must be a number from 0 to 2")
        suffix = Path(name).suffix.lower()
        path = queue.new_upload_path(suffix if suffix in ACCEPTED else ".bin")
        upload.save(path)
        try:
            with Image.open(path) as image:  # header only: size and a real image format, nothing decoded yet
                size = image.size
            check_size(Path(name), *size, max_pixels)  # the CLI's limit and message, named after the upload
        except ImageTooLarge as problem:
            path.unlink(missing_ok=True)
            return error(413, str(problem))
        except (UnreadableImage, OSError, ValueError, Image.DecompressionBombError):
            path.unlink(missing_ok=True)
            return error(400, f"{name}: not an image this app can read (PNG, JPEG, WebP, BMP, TIFF, GIF)")
        try:
            job = queue.add(name, path, model, detail, size, models[model]["scale"])
        except QueueFull as busy:
            path.unlink(missing_ok=True)
            return error(429, str(busy))
        return jsonify(job.public()), 202

    def job_or_404(job_id: str):
        job = queue.get(job_id)
        if job is None:
            abort(404)
        return job

    @app.get("/api/jobs/<job_id>")
    def status(job_id: str):
        return jsonify(job_or_404(job_id).public())

    @app.delete("/api/jobs/<job_id>")
    def cancel(job_id: str):
        job_or_404(job_id)
        return jsonify(queue.cancel(job_id).public())

    @app.get("/api/jobs/<job_id>/input")
    def before(job_id: str):
        """The upload as the model sees it (EXIF-rotated, CMYK converted), as an 8-bit PNG any browser shows."""
        job = job_or_404(job_id)
        loaded = read_image(job.source, None)
        pixels = loaded.pixels if loaded.alpha is None else np.concatenate([loaded.pixels, loaded.alpha[..., None]], 2)
        eight_bit = quantise(pixels, 8)
        preview = Image.fromarray(eight_bit[..., 0] if eight_bit.shape[2] == 1 else eight_bit)
        buffer = io.BytesIO()
        preview.save(buffer, format="PNG", compress_level=1)
        buffer.seek(0)
        return send_file(buffer, mimetype="image/png")

    @app.get("/api/jobs/<job_id>/result")
    def result(job_id: str):
        job = job_or_404(job_id)
        if job.state != "done":
            return error(409, f"job is {job.state}")
        return send_file(job.result, mimetype="image/png", as_attachment=request.args.get("download") == "1",
                         download_name=job.download_name())

    @app.get("/api/results.zip")
    def results_zip():
        ids = [i for i in request.args.get("ids", "").split(",") if i]
        jobs = [queue.get(i) for i in ids]
        done = [job for job in jobs if job is not None and job.state == "done"]
        if not done:
            return error(404, "no finished results among the given ids")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:  # PNGs are compressed already
            names: set[str] = set()
            for job in done:
                name, n = job.download_name(), 1
                while name in names:  # two uploads of the same name keep both results
                    n += 1
                    name = f"{Path(job.download_name()).stem}_{n}.png"
                names.add(name)
                archive.write(job.result, name)
        buffer.seek(0)
        return send_file(buffer, mimetype="application/zip", as_attachment=True, download_name="freqnet_results.zip")

    return app


def serve(host: str = "127.0.0.1", port: int = 8765, **options) -> None:
    """Run until interrupted; uploads and results are deleted on the way out."""
    from waitress import serve as waitress_serve

    app = create_app(**options)
    # SIGTERM (service managers, `timeout`, `kill`) must clean up like Ctrl-C does, not end the process on the spot.
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        waitress_serve(app, host=host, port=port, threads=4)
    finally:
        signal.signal(signal.SIGTERM, previous)
        app.extensions["freqnet_jobs"].close()
