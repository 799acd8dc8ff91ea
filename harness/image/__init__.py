"""The docker node image and a run's own image, built on this machine with no registry.

`ensure_image()` returns the node image's reference, such as
"leader-harness-node:<16 hex>", building only the layers whose inputs changed;
`expected_image()` computes it without building. Inside: bookworm's python3 with the
harness in a venv (`IMAGE_PYTHON`), iproute2, iptables, procps. `ensure_run_image(packages,
requirements)` adds, only when a run has them, a layer with its target's server packages
(trees under `IMAGE_SERVERS_ROOT`, /opt/servers/<name>/, or packages installed with their
dependencies) and one with its program's requirements. Modules: servers (server
packages), apt (private signed apt config), rootfs (debootstrap), wheels (Python
inputs), build (layers and docker), cli (`harness image ...`).
"""

from harness.image.build import IMAGE_PYTHON, ensure_image, ensure_run_image, expected_image
from harness.image.errors import ImageError
from harness.image.servers import (
    DEFAULT_CACHE,
    IMAGE_SERVERS_ROOT,
    SERVERS,
    ServerPackage,
    ensure_servers,
    image_program,
    server_program,
)

__all__ = [
    "DEFAULT_CACHE",
    "IMAGE_PYTHON",
    "IMAGE_SERVERS_ROOT",
    "SERVERS",
    "ImageError",
    "ServerPackage",
    "ensure_image",
    "ensure_run_image",
    "ensure_servers",
    "expected_image",
    "image_program",
    "server_program",
]
