"""Ships a copy of libusock inside the package when the repository has built one.

`pip install ./bindings/python` after `make build` (or `cargo build --release`) copies
target/release/libusock.so into the installed package as libusock.so.0, so the package works
wherever it is installed. Without a build, the package looks for the system's libusock (or
$USOCK_LIBRARY) at import time.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

BUILT = Path(__file__).resolve().parent.parent.parent / "target" / "release" / "libusock.so"


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        if BUILT.exists():
            target = Path(self.build_lib) / "usock" / "libusock.so.0"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(BUILT, target)


setup(cmdclass={"build_py": BuildWithLibrary})
