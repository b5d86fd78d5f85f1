# setup.py: declares the one C extension (cuframes._atomics); metadata lives in pyproject.toml.
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "cuframes._atomics",
            sources=["cuframes/_atomics.c"],
            extra_compile_args=["-std=c11", "-O2", "-Wall", "-Werror"],
        ),
        Extension(
            "cuframes._checksum",
            sources=["cuframes/_checksum.c"],
            extra_compile_args=["-std=c11", "-O2", "-Wall", "-Werror"],
        ),
    ]
)
