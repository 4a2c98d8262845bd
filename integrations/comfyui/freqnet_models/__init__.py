"""ComfyUI custom node package: makes the stock "Load Upscale Model" node load freqnet .safetensors files.

ComfyUI loads upscale models through spandrel; importing freqnet's spandrel bridge registers the architecture.
Install: pip install freqnet into ComfyUI's Python, then copy (or link) this folder into ComfyUI/custom_nodes/.
"""

import freqnet.integrations.spandrel  # noqa: F401  (registers the architecture with spandrel's main registry)

NODE_CLASS_MAPPINGS: dict = {}  # no new nodes: the stock ones now understand freqnet files
NODE_DISPLAY_NAME_MAPPINGS: dict = {}
