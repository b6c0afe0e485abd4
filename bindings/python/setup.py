"""Ships a copy of libusock inside the package when the repository has built one.

`pip install ./bindings/python` after `make build` (or `cargo build --release`) copies
target/release/libusock.so (libusock.dylib on macOS) into the installed package as
libusock.so.0 (libusock.0.dylib), so the package works
wherever it is installed. Without a build, the package looks for the system's libusock (or
$USOCK_LIBRARY) at import time.
"""

import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

if sys.platform == "darwin":
    BUILT_NAME, SONAME = "libusock.dylib", "libusock.0.dylib"
else:
    BUILT_NAME, SONAME = "libusock.so", "libusock.so.0"
BUILT = Path(__file__).resolve().parent.parent.parent / "target" / "release" / BUILT_NAME


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        if BUILT.exists():
            target = Path(self.build_lib) / "usock" / SONAME
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(BUILT, target)


setup(cmdclass={"build_py": BuildWithLibrary})
