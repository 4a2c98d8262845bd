"""Any exported super-resolution network (ours or a peer's) run in ONNX Runtime, with the `Upscaler.run` interface,
so `freqnet eval` scores a peer's ONNX file and our model in one table.

The file must take float32 NCHW RGB in [0, 1] with dynamic height and width (the convention of the field's ONNX
exports and of `freqnet export --dynamic`); the scale is read from the output shape of a probe run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PROBE_SIDE = 16


def session_options(threads: int | None = None):
    """ONNX Runtime's session options as freqnet runs every ONNX model (ours and the anchors alike)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # ORT's intra-op threads spin-wait after each run by default; on a 2-core laptop they then steal the cores
    # from whatever runs next (the next tile's numpy work, or PyTorch timed beside it in standard.py).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options


class OnnxModel:
    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        try:
            import onnxruntime
        except ImportError as error:
            raise ValueError(f"{path}: running ONNX models needs onnxruntime (pip install 'freqnet[export]')") from error
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no ONNX file {self.path}")
        self.session = onnxruntime.InferenceSession(str(self.path), session_options(threads),
                                                    providers=["CPUExecutionProvider"])
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or (isinstance(inputs[0].shape[1], int) and inputs[0].shape[1] != 3):
            raise ValueError(f"{self.path}: expected one NCHW RGB input, found {[(i.name, i.shape) for i in inputs]}")
        self.input_name = inputs[0].name
        probe = self.forward(np.zeros((1, 3, PROBE_SIDE, PROBE_SIDE), np.float32))
        if probe.shape[2] % PROBE_SIDE or probe.shape[2] != probe.shape[3]:
            raise ValueError(f"{self.path}: a {PROBE_SIDE}x{PROBE_SIDE} input gave {tuple(probe.shape)}; "
                             "not a fixed-scale image-to-image network")
        self.scale = probe.shape[2] // PROBE_SIDE

    @property
    def name(self) -> str:
        return self.path.stem

    def parameters(self) -> int:
        """Weights stored in the graph (initialisers), the count papers report for an exported network."""
        import onnx

        graph = onnx.load(str(self.path), load_external_data=False).graph
        return sum(int(np.prod(t.dims)) for t in graph.initializer)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, np.float32)})[0]

    def run(self, pixels: np.ndarray) -> np.ndarray:
        """float32 (H, W, C) in [0, 1] -> (sH, sW, C), clamped; grey goes through as RGB and comes back grey."""
        grey = pixels.shape[2] == 1
        x = np.repeat(pixels, 3, axis=2) if grey else pixels
        y = np.clip(self.forward(x.transpose(2, 0, 1)[None])[0], 0, 1).transpose(1, 2, 0)
        return y.mean(axis=2, keepdims=True) if grey else y
