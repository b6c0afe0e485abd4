"""Builds libusock with cargo and ships it inside the package.

`pip install ./bindings/python`, `pip install usock-<version>.tar.gz` and `pip wheel` all compile
the crate in `crate/` (in the repository, links to its sources; in an sdist, the files) with
Rust's cargo, and put the library in the package as libusock.so.0 (libusock.0.dylib on macOS),
where `usock._lib` loads it. Without cargo the build stops and says how to get it.

The wheel is a platform wheel (`py3-none-<platform>`: the library is native code, but no Python
extension). With USOCK_MANYLINUX=2_17 (as `make wheel` sets it) the library is linked with
cargo-zigbuild against glibc 2.17 and the wheel is tagged manylinux_2_17, which RHEL 7+ and
Ubuntu 14.04+ accept; `auditwheel show` checks it.
"""

import os
import platform
import re
import shutil
import subprocess
import sys

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools before 70.1
    from wheel.bdist_wheel import bdist_wheel

HERE = os.path.dirname(os.path.abspath(__file__))
CRATE = os.path.join(HERE, "crate")
if sys.platform == "darwin":
    BUILT_NAME, SONAME = "libusock.dylib", "libusock.0.dylib"
else:
    BUILT_NAME, SONAME = "libusock.so", "libusock.so.0"
MANYLINUX = os.environ.get("USOCK_MANYLINUX", "")


def crate_version():
    """The crate's version, which is the package's: one number for both."""
    with open(os.path.join(CRATE, "Cargo.toml"), encoding="utf-8") as f:
        return re.search(r'^version = "([^"]+)"', f.read(), re.M).group(1)


def cargo_command():
    if MANYLINUX:
        zigbuild = shutil.which("cargo-zigbuild")
        if not zigbuild:
            sys.exit("usock: USOCK_MANYLINUX is set, but cargo-zigbuild is not on PATH: "
                     "pip install cargo-zigbuild ziglang")
        machine = platform.machine()
        glibc = MANYLINUX.replace("_", ".")
        return [zigbuild, "build", "--target", f"{machine}-unknown-linux-gnu.{glibc}"], machine
    cargo = shutil.which(os.environ.get("CARGO", "cargo"))
    if not cargo:
        sys.exit("usock: building this package compiles libusock with Rust's cargo, which is not "
                 "on PATH. Install Rust (https://rustup.rs, or: apt-get install cargo) and try again.")
    return [cargo, "build"], None


class BuildWithLibrary(build_py):
    """build_py, then cargo: the library goes into the built package."""

    def run(self):
        super().run()
        command, machine = cargo_command()
        target_dir = os.path.abspath(os.path.join(self.build_lib, "..", "cargo-target"))
        # --locked: the carried Cargo.lock as it is (make crate-manifest writes it); never rewritten.
        subprocess.run(command + ["--release", "--lib", "--locked", "--manifest-path",
                                  os.path.join(CRATE, "Cargo.toml"), "--target-dir", target_dir],
                       check=True)
        release = os.path.join(target_dir, f"{machine}-unknown-linux-gnu" if machine else "", "release")
        target = os.path.join(self.build_lib, "usock", SONAME)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(release, BUILT_NAME), target)


class NativeDistribution(Distribution):
    """Native code inside: built and installed as platform-specific (Root-Is-Purelib: false)."""

    def has_ext_modules(self):
        return True


class PlatformWheel(bdist_wheel):
    """A wheel for this platform, not tied to a Python version or ABI (no Python extension)."""

    def get_tag(self):
        _, _, plat = super().get_tag()
        if MANYLINUX and plat.startswith("linux_"):
            arch = plat[len("linux_"):]
            plat = f"manylinux_{MANYLINUX}_{arch}"
            if MANYLINUX == "2_17":
                plat += f".manylinux2014_{arch}"
        return "py3", "none", plat


setup(
    distclass=NativeDistribution,
    version=crate_version(),
    cmdclass={"build_py": BuildWithLibrary, "bdist_wheel": PlatformWheel},
)
