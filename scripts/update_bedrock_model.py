"""Refresh the vendored Bedrock Runtime service model (app/bedrock/botocore_data/) from a botocore wheel.

Why: aioboto3 pins aiobotocore, which pins an older botocore whose ``bedrock-runtime`` model lacks
fields the proxy sends (``CachePointBlock.ttl``) or reads (``TokenUsage.cacheDetails``). The proxy's
Bedrock clients put app/bedrock/botocore_data/ first on their botocore loader's search path
(app/bedrock/clients.py), so this one file overrides the installed one for them only.

Usage:  python scripts/update_bedrock_model.py 1.44.8
Downloads ``botocore==VERSION`` (``pip download --no-deps``, PyPI or the configured index), extracts
``botocore/data/bedrock-runtime/<api version>/service-2.json.gz`` and writes it plus SOURCE.json
(the botocore version, the file's SHA-256 and the api version). Then run the Bedrock tests
(tests/bedrock, tests/proxy/test_bedrock_*.py) and commit both files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

SERVICE = "bedrock-runtime"
TARGET = Path(__file__).resolve().parents[1] / "app" / "bedrock" / "botocore_data"


def extract(wheel: Path, target: Path, version: str) -> Path:
    """Copy the newest ``service-2.json.gz`` of bedrock-runtime out of ``wheel`` into ``target``;
    returns the written path. Raises SystemExit when the wheel has no such file."""
    prefix = f"botocore/data/{SERVICE}/"
    with zipfile.ZipFile(wheel) as archive:
        names = sorted(n for n in archive.namelist() if n.startswith(prefix) and n.endswith("/service-2.json.gz"))
        if not names:
            raise SystemExit(f"{wheel.name}: no {prefix}*/service-2.json.gz")
        name = names[-1]  # api versions are dates: the last sorts newest
        data = archive.read(name)
    api_version = name.split("/")[-2]
    out = target / SERVICE / api_version / "service-2.json.gz"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    source = {"botocore": version, "service": SERVICE, "api_version": api_version,
              "file": f"{SERVICE}/{api_version}/service-2.json.gz", "sha256": hashlib.sha256(data).hexdigest()}
    (target / "SOURCE.json").write_text(json.dumps(source, indent=2) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version", help="botocore version to take the model from, e.g. 1.44.8")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
                        "--dest", tmp, f"botocore=={args.version}"], check=True)
        wheel = next(Path(tmp).glob("botocore-*.whl"))
        out = extract(wheel, TARGET, args.version)
    print(f"wrote {out.relative_to(TARGET.parents[2])} from botocore {args.version}")


if __name__ == "__main__":
    main()
