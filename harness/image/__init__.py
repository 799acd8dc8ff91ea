"""The docker node image, built on this machine with no container registry.

`ensure_image()` returns a reference such as "leader-harness-node:<16 hex>", building
only the layers whose inputs changed; `expected_image()` computes it without building.
Inside the image: bookworm's python3 with the harness in a venv (`IMAGE_PYTHON`), iproute2,
iptables, procps, and the servers under `IMAGE_SERVERS_ROOT` (/opt/servers/<name>/).
Modules: servers (pinned .debs), apt (private signed apt config), rootfs (debootstrap),
wheels (Python inputs), build (layers and docker), cli (`harness image ...`).
"""

from harness.image.build import IMAGE_PYTHON, ensure_image, expected_image
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
    "ensure_servers",
    "expected_image",
    "image_program",
    "server_program",
]
