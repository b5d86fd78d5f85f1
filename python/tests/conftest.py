"""pytest setup for cuframes for Python: run this checkout's package when its C extensions are
built in place (pip install -e python, as ci/setup.sh does), else the installed one."""
import glob
import os
import sys

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if glob.glob(os.path.join(SRC, "cuframes", "_atomics*.so")):
    sys.path.insert(0, SRC)
