"""The web app's work queue: uploads become jobs, one worker thread runs them in order through `Upscaler`.

Bounded (a full queue is refused, never grown), cancellable (queued jobs at once, a running job at its next tile),
and every file lives in one temporary folder that `close()` removes.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from ..data.image_io import read_image
from ..inference import Upscaler


class QueueFull(Exception):
    """More jobs waiting than the queue holds: the client should retry later (HTTP 429)."""


class Cancelled(Exception):
    """Raised inside a running job's progress callback to stop it between tiles."""


@dataclass
class Job:
    id: str
    name: str  # the uploaded file's name, for the download's name
    source: Path
    model: str
    detail: float
    state: str = "queued"  # queued | running | done | failed | cancelled
    progress: float = 0.0
    error: str | None = None
    size: tuple[int, int] = (0, 0)  # input (width, height)
    scale: int = 1
    result: Path | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def public(self) -> dict:
        w, h = self.size
        return {"id": self.id, "name": self.name, "state": self.state, "progress": round(self.progress, 3),
                "error": self.error, "model": self.model, "detail": self.detail, "width": w, "height": h,
                "scale": self.scale, "out_width": w * self.scale, "out_height": h * self.scale,
                "download_name": self.download_name()}

    def download_name(self) -> str:
        return f"{Path(self.name).stem}_{self.model}.png"


class JobQueue:
    def __init__(self, max_waiting: int = 8, max_pixels: int | None = None, start: bool = True) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="freqnet-serve-"))
        self.max_waiting, self.max_pixels = max_waiting, max_pixels
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self.upscalers: dict[tuple[str, float], Upscaler] = {}
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.closed = False
        self.worker = threading.Thread(target=self.work, name="freqnet-jobs", daemon=True)
        if start:
            self.worker.start()

    # -- called by the request handlers --------------------------------------------------------------------
    def add(self, name: str, source: Path, model: str, detail: float, size: tuple[int, int], scale: int) -> Job:
        with self.lock:
            waiting = sum(job.state == "queued" for job in self.jobs.values())
            if waiting >= self.max_waiting:
                raise QueueFull(f"busy: {waiting} images are waiting; try again when some are done")
            job = Job(uuid.uuid4().hex, name, source, model, detail, size=size, scale=scale)
            self.jobs[job.id] = job
            self.wake.notify()
            return job

    def get(self, job_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(job_id)

    def cancel(self, job_id: str) -> Job | None:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is not None and job.state in ("queued", "running"):
                job.cancel.set()
                if job.state == "queued":
                    job.state = "cancelled"
            return job

    def new_upload_path(self, suffix: str) -> Path:
        return self.folder / f"in-{uuid.uuid4().hex}{suffix}"

    def upscaler(self, model: str, detail: float) -> Upscaler:
        """One loaded model per (name, detail), reused across jobs."""
        key = (model, detail)
        if key not in self.upscalers:
            self.upscalers[key] = Upscaler(model, tile="auto", detail=detail, precision="auto")  # as the CLI
        return self.upscalers[key]

    # -- the worker ------------------------------------------------------------------------------------------
    def next_job(self) -> Job | None:
        with self.lock:
            while not self.closed:
                job = next((j for j in self.jobs.values() if j.state == "queued"), None)
                if job is not None:
                    job.state = "running"
                    return job
                self.wake.wait()
            return None

    def work(self) -> None:
        while (job := self.next_job()) is not None:
            self.run(job)

    def run(self, job: Job) -> None:
        try:
            upscaler = self.upscaler(job.model, job.detail)
            image = read_image(job.source, self.max_pixels)
            total = upscaler.tiles_for(*image.pixels.shape[:2]) * (2 if image.alpha is not None else 1)
            done = 0

            def progress(tiles: int) -> None:
                nonlocal done
                if job.cancel.is_set():
                    raise Cancelled
                done += tiles
                job.progress = min(done / max(total, 1), 0.99)

            result = self.folder / f"out-{job.id}.png"
            upscaler.upscale_to_png(image, result, progress)
            job.result, job.progress, job.state = result, 1.0, "done"
        except Cancelled:
            job.state = "cancelled"
        except Exception as error:  # one bad image must not stop the queue; the page shows the reason
            job.state, job.error = "failed", f"{type(error).__name__}: {error}"

    def close(self) -> None:
        """Stop the worker after its current job and delete every upload and result."""
        with self.lock:
            self.closed = True
            for job in self.jobs.values():
                job.cancel.set()
            self.wake.notify_all()
        if self.worker.is_alive():
            self.worker.join(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)
